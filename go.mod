module github.com/band-project/band

go 1.26

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/coreos/go-iptables v0.8.0
	github.com/fsnotify/fsnotify v1.6.0
	github.com/google/nftables v0.3.0
	github.com/mdlayher/netlink v1.7.3-0.20250113171957-fbb4dce95f42
	github.com/nxadm/tail v1.4.11
	github.com/vishvananda/netns v0.0.5
	golang.org/x/sys v0.28.0
)

require (
	github.com/google/go-cmp v0.6.0 // indirect
	github.com/mdlayher/socket v0.5.0 // indirect
	golang.org/x/net v0.33.0 // indirect
	golang.org/x/sync v0.6.0 // indirect
	gopkg.in/tomb.v1 v1.0.0-20141024135613-dd632973f1e7 // indirect
)

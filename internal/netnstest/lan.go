package netnstest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"testing"
)

// Host is one machine of a LAN: a name to find it by and its addresses in
// CIDR form ("198.51.100.1/24", "2001:db8::1/64"), all on its eth0.
type Host struct {
	Name  string
	Addrs []string
}

// LAN is namespaces joined as machines on one Ethernet segment: each host's
// eth0 is a veth whose peer is a port of the bridge br0 in a namespace of
// its own (the switch). Every packet between hosts crosses a real link.
type LAN struct {
	Switch *NS
	Hosts  map[string]*NS
}

// NewLAN builds the switch and one namespace per host, with the hosts'
// addresses up (IPv6 without DAD, so usable at once). It skips the test when
// not root; everything is removed when the test ends.
func NewLAN(t testing.TB, hosts ...Host) *LAN {
	t.Helper()
	sw := New(t)
	sw.MustRun("ip", "link", "add", "br0", "type", "bridge")
	sw.MustRun("ip", "link", "set", "br0", "up")
	lan := &LAN{Switch: sw, Hosts: make(map[string]*NS, len(hosts))}
	for i, h := range hosts {
		if _, dup := lan.Hosts[h.Name]; dup {
			t.Fatalf("netnstest: two hosts named %q", h.Name)
		}
		ns := New(t)
		port := fmt.Sprintf("p%d", i)
		if out, err := exec.Command("ip", "link", "add", "eth0", "netns", ns.Name, "type", "veth",
			"peer", "name", port, "netns", sw.Name).CombinedOutput(); err != nil {
			t.Skipf("cannot create veth pair (kernel without veth?): %v: %s", err, out)
		}
		sw.MustRun("ip", "link", "set", port, "master", "br0")
		sw.MustRun("ip", "link", "set", port, "up")
		for _, a := range h.Addrs {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				t.Fatalf("netnstest: host %s: address %q: %v", h.Name, a, err)
			}
			if p.Addr().Is6() {
				ns.MustRun("ip", "-6", "addr", "add", a, "dev", "eth0", "nodad")
			} else {
				ns.MustRun("ip", "addr", "add", a, "dev", "eth0")
			}
		}
		ns.MustRun("ip", "link", "set", "eth0", "up")
		lan.Hosts[h.Name] = ns
	}
	return lan
}

// Command returns a command that runs inside the namespace (ip netns exec,
// which execs the program in place: the process's PID is the program's).
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// DialFrom opens a TCP connection from inside n to addr, with local as its
// source address (the zero Addr lets the kernel choose). The connection
// belongs to n for its whole life, so it suits http.Transport.DialContext.
func (n *NS) DialFrom(ctx context.Context, local netip.Addr, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var d net.Dialer
		if local.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
		}
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

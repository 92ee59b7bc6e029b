package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/band-project/band/firewall"
	"github.com/band-project/band/internal/cmdtest"
	"github.com/band-project/band/internal/netnstest"
)

// TestDaemonProgramsKernel runs the real band binary inside a network
// namespace with each kernel backend: a jail's ban appears in the kernel set
// (read back through the backend and through nft / ipset), with the jail's
// bantime as its kernel timeout, and the kernel removes it when that passes.
func TestDaemonProgramsKernel(t *testing.T) {
	for _, tc := range []struct {
		backend string
		tools   []string
		show    func(set string) []string // argv that prints a set
	}{
		{"nftables", []string{"nft"}, func(set string) []string { return []string{"nft", "list", "set", "inet", "band", set} }},
		{"iptables", []string{"iptables", "ip6tables", "ipset"}, func(set string) []string { return []string{"ipset", "list", set} }},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			netnstest.RequireRoot(t)
			netnstest.RequireTool(t, tc.tools...)
			ns := netnstest.New(t)
			dir := t.TempDir()
			logs := filepath.Join(dir, "logs")
			if err := os.MkdirAll(logs, 0o755); err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(dir, "band.toml")
			if err := os.WriteFile(cfg, fmt.Appendf(nil, `
[daemon]
socket = %q
state_dir = %q

[firewall]
backend = %q

[[source]]
name = "error"
path = %q
format = "error"

[jail.apache-auth]
enabled = true
maxretry = 5
bantime = "3s"
`, filepath.Join(dir, "band.sock"), dir, tc.backend, filepath.Join(logs, "error.log")), 0o644); err != nil {
				t.Fatal(err)
			}
			bin := filepath.Join(cmdtest.Build(t), "band")
			band := cmdtest.StartCommand(t, "ip", "netns", "exec", ns.Name, bin, "--config", cfg)
			band.WaitFor(t, "band started", "backend="+tc.backend)

			kernel, err := firewall.New(nil, firewall.Options{Backend: tc.backend, NetNS: ns.Path()})
			if err != nil {
				t.Fatalf("opening the namespace's %s: %v", tc.backend, err)
			}
			defer kernel.Close()
			list := func() map[netip.Prefix]time.Duration {
				t.Helper()
				es, err := kernel.List(context.Background())
				if err != nil {
					t.Fatalf("listing the kernel's bans: %v", err)
				}
				m := map[netip.Prefix]time.Duration{}
				for _, e := range es {
					m[e.Prefix] = e.TTL
				}
				return m
			}

			clients := []struct {
				addr netip.Addr
				set  string
			}{{netip.MustParseAddr("192.0.2.10"), "band4"}, {netip.MustParseAddr("2001:db8::10"), "band6"}}
			now := time.Now()
			var lines []string
			for _, c := range clients {
				for i := range 5 {
					lines = append(lines, authFailure(c.addr.String(), now.Add(time.Duration(i)*time.Millisecond)))
				}
			}
			appendLines(t, filepath.Join(logs, "error.log"), lines...)

			for _, c := range clients {
				band.WaitFor(t, "msg=ban", "addr="+c.addr.String(), "jail=apache-auth", "ttl=3s")
				p := netip.PrefixFrom(c.addr, c.addr.BitLen())
				ttl, ok := list()[p]
				if !ok {
					t.Fatalf("%s banned by band but not in the kernel (listed: %v)", p, list())
				}
				if ttl <= 0 || ttl > 3*time.Second {
					t.Errorf("%s: kernel timeout %v left, want within the bantime 3s", p, ttl)
				}
				argv := tc.show(c.set)
				if out := ns.MustRun(argv...); !strings.Contains(out, c.addr.String()) {
					t.Errorf("%s does not show %s:\n%s", strings.Join(argv, " "), c.addr, out)
				}
			}

			// The kernel's clock lifts the bans; band does not unban.
			deadline := time.Now().Add(15 * time.Second)
			for {
				left := 0
				m := list()
				for _, c := range clients {
					if _, ok := m[netip.PrefixFrom(c.addr, c.addr.BitLen())]; ok {
						left++
					}
				}
				if left == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("bans with bantime 3s still in the kernel after 15s: %v", m)
				}
				time.Sleep(200 * time.Millisecond)
			}
			for _, c := range clients {
				argv := tc.show(c.set)
				if out := ns.MustRun(argv...); strings.Contains(out, c.addr.String()) {
					t.Errorf("after expiry %s still shows %s:\n%s", strings.Join(argv, " "), c.addr, out)
				}
			}
			if code := band.Stop(t); code != 0 {
				t.Errorf("band exited with %d after SIGTERM, want 0", code)
			}
		})
	}
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/band-project/band/bans"
	"github.com/band-project/band/control"
	"github.com/band-project/band/internal/cmdtest"
	"github.com/band-project/band/internal/netnstest"
	"github.com/band-project/band/state"
)

// seedBans writes n active bans into a state directory.
func seedBans(b *testing.B, dir string, n int) {
	b.Helper()
	s, err := state.Open(slog.New(slog.DiscardHandler), dir)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for i := 0; i < n; i++ {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)})
		s.PutBan(bans.Ban{Prefix: netip.PrefixFrom(a, 128), Jail: "http-flood", Start: now, Expiry: now.Add(2 * time.Hour), Hits: 31, Origin: bans.OriginJail})
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
}

// benchRestart starts band on a state file with 100k active bans and
// measures the time until its control API answers with every ban restored.
// prefix runs band inside a network namespace (ip netns exec NAME).
func benchRestart(b *testing.B, backend string, prefix ...string) {
	dir := b.TempDir()
	seedBans(b, filepath.Join(dir, "state"), 100000)
	cfg := fmt.Sprintf("[daemon]\nsocket = %q\nstate_dir = %q\n[firewall]\nbackend = %q\n[[source]]\nname = \"access\"\npath = %q\nformat = \"combined\"\n",
		filepath.Join(dir, "band.sock"), filepath.Join(dir, "state"), backend, filepath.Join(dir, "access.log"))
	path := filepath.Join(dir, "band.toml")
	os.WriteFile(path, []byte(cfg), 0o644)
	bin := filepath.Join(cmdtest.Build(b), "band")
	c := control.NewClient(filepath.Join(dir, "band.sock"))
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		p := cmdtest.StartCommand(b, append(prefix, bin, "--config", path)...)
		for {
			if _, err := c.Status(context.Background()); err == nil {
				break
			}
			if time.Since(start) > time.Minute {
				b.Fatal("band did not answer within a minute")
			}
			time.Sleep(time.Millisecond) // polling for the socket
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/restart")
		b.StopTimer()
		if bs, err := c.List(context.Background(), "", ""); err != nil || len(bs) != 100000 {
			b.Fatalf("%d bans after restart (%v), want 100000", len(bs), err)
		}
		p.Stop(b)
		b.StartTimer()
	}
}

func BenchmarkRestart100kBansDryRun(b *testing.B) { benchRestart(b, "dryrun") }

func BenchmarkRestart100kBansNftables(b *testing.B) {
	netnstest.RequireRoot(b)
	ns := netnstest.New(b)
	benchRestart(b, "nftables", "ip", "netns", "exec", ns.Name)
}

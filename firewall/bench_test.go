package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/band-project/band/internal/netnstest"
)

// These benchmarks program real kernels inside namespaces they create (root
// only). The aims: 100k bans into an empty set in 0.3 s or less, one more
// ban into a set of 100k in 1 ms or less. Measure with
//
//	go test -run '^$' -bench 'Ban/|File|Restore' -benchtime 5x ./firewall
//	go test -run '^$' -bench BanInto ./firewall
//
// BenchmarkNftFile100k and BenchmarkIPSetRestore100k time the command-line
// tools on the same bans, for comparison.

// v6Ban is the i-th single-address ban in 2001:db8::/32 (IPv4 test ranges
// hold only 768 addresses).
func v6Ban(i int) Entry {
	a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0xbe, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
	return Entry{Prefix: netip.PrefixFrom(a, 128), TTL: time.Hour}
}

// v6Bans returns the first n of v6Ban.
func v6Bans(n int) []Entry {
	es := make([]Entry, n)
	for i := range es {
		es[i] = v6Ban(i)
	}
	return es
}

// benchBan measures one Ban call loading n fresh bans into an empty set, in a
// namespace of its own; the set is emptied, untimed, between iterations.
func benchBan(b *testing.B, kind string, n int) {
	requireBackend(b, kind)
	ns := netnstest.New(b)
	be := newInNS(b, kind, ns, Options{})
	es := v6Bans(n)
	ps := make([]netip.Prefix, n)
	for i, e := range es {
		ps[i] = e.Prefix
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := be.Ban(ctx, es); err != nil {
			b.Fatalf("Ban: %v", err)
		}
		b.StopTimer()
		got, err := be.List(ctx)
		if err != nil || len(got) != n {
			b.Fatalf("List: %d entries, %v, want %d", len(got), err, n)
		}
		if err := be.Unban(ctx, ps); err != nil {
			b.Fatalf("Unban: %v", err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "bans/s")
}

// BenchmarkBan is the time to load 10k and 100k bans into an empty set.
func BenchmarkBan(b *testing.B) {
	for _, kind := range []string{"nftables", "iptables"} {
		for _, n := range []int{10_000, 100_000} {
			b.Run(fmt.Sprintf("%s/%dk", kind, n/1000), func(b *testing.B) { benchBan(b, kind, n) })
		}
	}
}

// benchBanInto measures one more ban (a Ban call with one entry) into a set
// already holding n bans.
func benchBanInto(b *testing.B, kind string, n int) {
	requireBackend(b, kind)
	ns := netnstest.New(b)
	be := newInNS(b, kind, ns, Options{})
	ctx := context.Background()
	if err := be.Ban(ctx, v6Bans(n)); err != nil {
		b.Fatalf("loading %d bans: %v", n, err)
	}
	i := n
	for b.Loop() {
		if err := be.Ban(ctx, []Entry{v6Ban(i)}); err != nil {
			b.Fatalf("Ban: %v", err)
		}
		i++
	}
	if got, err := be.List(ctx); err != nil || len(got) != i {
		b.Fatalf("List: %d entries, %v, want %d", len(got), err, i)
	}
}

func BenchmarkNftablesBanInto100k(b *testing.B) { benchBanInto(b, "nftables", 100_000) }
func BenchmarkIPSetBanInto100k(b *testing.B)    { benchBanInto(b, "iptables", 100_000) }

// benchTool measures a command-line tool loading the same 100k bans into
// band's (empty) IPv6 set, for comparison with BenchmarkBan: the program
// runs inside the namespace (no `ip netns exec` in the time), reading script
// from a file; flush empties the set, untimed, between iterations.
func benchTool(b *testing.B, kind string, script string, load, flush []string) {
	requireBackend(b, kind)
	ns := netnstest.New(b)
	newInNS(b, kind, ns, Options{})
	path := filepath.Join(b.TempDir(), "script")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		b.Fatal(err)
	}
	run := func(argv []string) {
		if err := ns.Do(func() error {
			out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out)
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run(append(load, path))
		b.StopTimer()
		run(flush)
		b.StartTimer()
	}
}

// BenchmarkNftFile100k is `nft -f` adding 100k elements in one command.
func BenchmarkNftFile100k(b *testing.B) {
	netnstest.RequireTool(b, "nft")
	var s strings.Builder
	s.WriteString("add element inet band band6 { ")
	for i, e := range v6Bans(100_000) {
		if i > 0 {
			s.WriteString(", ")
		}
		fmt.Fprintf(&s, "%s timeout 1h", e.Prefix.Addr())
	}
	s.WriteString(" }\n")
	benchTool(b, "nftables", s.String(), []string{"nft", "-f"}, []string{"nft", "flush", "set", "inet", "band", "band6"})
}

// BenchmarkIPSetRestore100k is `ipset restore` adding 100k elements.
func BenchmarkIPSetRestore100k(b *testing.B) {
	var s strings.Builder
	for _, e := range v6Bans(100_000) {
		fmt.Fprintf(&s, "add band6 %s timeout 3600\n", e.Prefix.Addr())
	}
	benchTool(b, "iptables", s.String(), []string{"ipset", "restore", "-exist", "-f"}, []string{"ipset", "flush", "band6"})
}

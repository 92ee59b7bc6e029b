package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/band-project/band/internal/netnstest"
)

// v6Bans returns n distinct single-address bans in 2001:db8::/32 (IPv4 test
// ranges hold only 768 addresses).
func v6Bans(n int) []Entry {
	es := make([]Entry, n)
	for i := range es {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0xbe, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
		es[i] = Entry{Prefix: netip.PrefixFrom(a, 128), TTL: time.Hour}
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

func BenchmarkBan(b *testing.B) {
	for _, kind := range []string{"nftables", "iptables"} {
		for _, n := range []int{10_000, 100_000} {
			b.Run(fmt.Sprintf("%s/%dk", kind, n/1000), func(b *testing.B) { benchBan(b, kind, n) })
		}
	}
}

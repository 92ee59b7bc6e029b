package firewall

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"host", "198.51.100.7/32", "198.51.100.7/32"},
		{"host bits cleared", "198.51.100.77/24", "198.51.100.0/24"},
		{"mapped host", "::ffff:198.51.100.7/128", "198.51.100.7/32"},
		{"mapped prefix", "::ffff:198.51.100.0/120", "198.51.100.0/24"},
		{"ipv6", "2001:db8::1/64", "2001:db8::/64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := normalize(netip.MustParsePrefix(tc.in))
			if err != nil || got.String() != tc.want {
				t.Errorf("normalize(%s) = %v, %v, want %s", tc.in, got, err, tc.want)
			}
		})
	}
	if _, err := normalize(netip.Prefix{}); err == nil {
		t.Error("normalize(zero prefix): nil error, want one")
	}
}

func TestRangePrefix(t *testing.T) {
	for _, tc := range []struct{ name, first, last, want string }{
		{"host", "198.51.100.7", "198.51.100.7", "198.51.100.7/32"},
		{"/24", "192.0.2.0", "192.0.2.255", "192.0.2.0/24"},
		{"top of space", "255.255.255.0", "255.255.255.255", "255.255.255.0/24"},
		{"ipv6 /48", "2001:db8:1::", "2001:db8:1:ffff:ffff:ffff:ffff:ffff", "2001:db8:1::/48"},
		{"not a prefix", "192.0.2.1", "192.0.2.2", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := rangePrefix(netip.MustParseAddr(tc.first), netip.MustParseAddr(tc.last))
			got := ""
			if ok {
				got = p.String()
			}
			if got != tc.want {
				t.Errorf("rangePrefix(%s, %s) = %q, want %q", tc.first, tc.last, got, tc.want)
			}
		})
	}
}

func TestParseIPSetSave(t *testing.T) {
	out := []byte(`create band4 hash:net family inet hashsize 1024 maxelem 1048576 timeout 0 bucketsize 12 initval 0x1
add band4 198.51.100.7 timeout 57
add band4 192.0.2.0/24 timeout 3599
add band4 203.0.113.1 timeout 0
create other hash:ip family inet hashsize 1024 maxelem 65536
add other 198.51.100.9
create band6 hash:net family inet6 hashsize 1024 maxelem 1048576 timeout 0
add band6 2001:db8::7 timeout 5
`)
	got, err := parseIPSetSave(out, "band4", "band6")
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{netip.MustParsePrefix("198.51.100.7/32"), 57 * time.Second},
		{netip.MustParsePrefix("192.0.2.0/24"), 3599 * time.Second},
		{netip.MustParsePrefix("203.0.113.1/32"), 0},
		{netip.MustParsePrefix("2001:db8::7/128"), 5 * time.Second},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestIPSetTimeoutRoundsUp(t *testing.T) {
	for _, tc := range []struct {
		ttl  time.Duration
		want int64
	}{{0, 0}, {time.Millisecond, 1}, {time.Second, 1}, {1500 * time.Millisecond, 2}, {1000 * time.Hour, ipsetMaxTimeout}} {
		if got, err := ipsetTimeout(tc.ttl); err != nil || got != tc.want {
			t.Errorf("ipsetTimeout(%v) = %d, %v, want %d", tc.ttl, got, err, tc.want)
		}
	}
}

func TestNewOptions(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"unknown backend", Options{Backend: "pf"}},
		{"bad verdict", Options{Backend: "dryrun", Verdict: "accept"}},
		{"bad hook", Options{Backend: "dryrun", Hooks: []string{"output"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(log, tc.o)
			if err == nil {
				t.Fatal("New: nil error, want one")
			}
			if b != nil {
				t.Errorf("New returned %#v with its error, want a nil interface", b)
			}
		})
	}
	b, err := New(log, Options{Backend: "dryrun"})
	if err != nil || b.Name() != "dryrun" {
		t.Errorf("New(dryrun) = %v, %v", b, err)
	}
}

func TestReconcile(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	d := NewDryRun(slog.New(slog.DiscardHandler), func() time.Time { return now })
	ctx := context.Background()
	p := netip.MustParsePrefix
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.Ban(ctx, []Entry{
		{p("198.51.100.1/32"), time.Hour},   // kept as is
		{p("198.51.100.2/32"), time.Hour},   // stale
		{p("198.51.100.3/32"), time.Minute}, // ttl refreshed
		{p("198.51.100.4/32"), time.Hour},   // within slack: left alone
	}))
	added, removed, err := Reconcile(ctx, d, []Entry{
		{p("198.51.100.1/32"), time.Hour},
		{p("198.51.100.3/32"), 2 * time.Hour},
		{p("198.51.100.4/32"), time.Hour + 5*time.Second},
		{p("192.0.2.0/24"), time.Hour}, // missing
	})
	if err != nil {
		t.Fatal(err)
	}
	if added != 2 || removed != 1 {
		t.Errorf("added %d, removed %d, want 2, 1", added, removed)
	}
	got, _ := d.List(ctx)
	want := []Entry{
		{p("192.0.2.0/24"), time.Hour},
		{p("198.51.100.1/32"), time.Hour},
		{p("198.51.100.3/32"), 2 * time.Hour},
		{p("198.51.100.4/32"), time.Hour},
	}
	if !slices.Equal(got, want) {
		t.Errorf("after Reconcile %v, want %v", got, want)
	}
}

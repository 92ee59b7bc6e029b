package pipeline

import (
	"net/netip"
	"testing"

	"github.com/band-project/band/apachelog"
)

func TestProxyClient(t *testing.T) {
	trust := proxies{netip.MustParsePrefix("203.0.113.0/28"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	a := netip.MustParseAddr
	tests := []struct {
		name         string
		trust        proxies
		client, peer string
		xff          string
		want         string // "" = no client
	}{
		{"no proxies: the logged client", nil, "203.0.113.1", "", "198.51.100.1", "203.0.113.1"},
		{"direct client, spoofed xff", trust, "198.51.100.2", "", "198.51.100.9", "198.51.100.2"},
		{"rightmost untrusted hop", trust, "203.0.113.1", "", "192.0.2.99, 198.51.100.3", "198.51.100.3"},
		{"past trusted hops", trust, "203.0.113.1", "", "192.0.2.99,198.51.100.4 , 203.0.113.2,203.0.113.3", "198.51.100.4"},
		{"port", trust, "203.0.113.1", "", "198.51.100.5:4711", "198.51.100.5"},
		{"bracketed IPv6 with port", trust, "2001:db8:ffff::1", "", "[2001:db8:1::6]:443", "2001:db8:1::6"},
		{"bare IPv6", trust, "203.0.113.1", "", "2001:db8:1::7", "2001:db8:1::7"},
		{"mapped IPv4", trust, "203.0.113.1", "", "::ffff:198.51.100.8", "198.51.100.8"},
		{"no xff", trust, "203.0.113.1", "", "", ""},
		{"only trusted", trust, "203.0.113.1", "", "203.0.113.4", ""},
		{"garbage hop", trust, "203.0.113.1", "", "198.51.100.1, unknown", ""},
		{"empty hop", trust, "203.0.113.1", "", "198.51.100.1,,", ""},
		{"bad port", trust, "203.0.113.1", "", "198.51.100.1:http", ""},
		{"mod_remoteip behind a trusted peer", trust, "198.51.100.10", "203.0.113.5", "", "198.51.100.10"},
		{"mod_remoteip believing an untrusted peer", trust, "192.0.2.99", "198.51.100.11", "", "198.51.100.11"},
		{"mod_remoteip stopped at a trusted hop", trust, "203.0.113.6", "203.0.113.5", "198.51.100.12", "198.51.100.12"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ev apachelog.Event
			ev.Client = a(tc.client)
			if tc.peer != "" {
				ev.Peer = a(tc.peer)
			}
			if tc.xff != "" {
				ev.Set(apachelog.FieldForwardedFor, []byte(tc.xff))
			}
			got, ok := tc.trust.client(&ev)
			switch {
			case tc.want == "" && ok:
				t.Errorf("got %v, want no client", got)
			case tc.want != "" && (!ok || got != a(tc.want)):
				t.Errorf("got %v (ok %v), want %s", got, ok, tc.want)
			}
		})
	}
}

func TestProxyClientDoesNotAllocate(t *testing.T) {
	trust := proxies{netip.MustParsePrefix("203.0.113.0/28")}
	var ev apachelog.Event
	ev.Client = netip.MustParseAddr("203.0.113.1")
	ev.Set(apachelog.FieldForwardedFor, []byte("192.0.2.99, [2001:db8:1::7]:443, 203.0.113.2"))
	if n := testing.AllocsPerRun(100, func() { trust.client(&ev) }); n != 0 {
		t.Errorf("%v allocations per line, want 0", n)
	}
}

func BenchmarkProxyClient(b *testing.B) {
	trust := proxies{netip.MustParsePrefix("203.0.113.0/28"), netip.MustParsePrefix("10.0.0.0/8")}
	var ev apachelog.Event
	ev.Client = netip.MustParseAddr("203.0.113.1")
	ev.Set(apachelog.FieldForwardedFor, []byte("192.0.2.99, 198.51.100.3, 10.1.2.3"))
	for b.Loop() {
		trust.client(&ev)
	}
}

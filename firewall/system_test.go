package firewall

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/band-project/band/internal/netnstest"
)

// These tests program real kernels, inside network namespaces they create:
// the server namespace (198.51.100.1, 2001:db8::1) runs the backend and a TCP
// listener; the client namespace (198.51.100.2, 2001:db8::2) dials it.

const dialTimeout = 400 * time.Millisecond

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// requireBackend skips when the tools or kernel support a backend needs are
// missing.
func requireBackend(t testing.TB, kind string) {
	t.Helper()
	netnstest.RequireRoot(t)
	switch kind {
	case "nftables":
		ns := netnstest.New(t)
		if err := probeNftables(Options{NetNS: ns.Path()}); err != nil {
			t.Skipf("kernel without nf_tables: %v", err)
		}
	case "iptables":
		netnstest.RequireTool(t, "iptables", "ip6tables", "ipset", "iptables-restore", "ip6tables-restore")
		ns := netnstest.New(t)
		if out, err := ns.Run("ipset", "create", "probe", "hash:net", "timeout", "0"); err != nil {
			t.Skipf("kernel without ip_set hash:net: %v: %s", err, out)
		}
		if out, err := ns.Run("ip6tables", "-S"); err != nil {
			t.Skipf("ip6tables unusable: %v: %s", err, out)
		}
	}
}

func newInNS(t testing.TB, kind string, ns *netnstest.NS, o Options) Backend {
	t.Helper()
	o.Backend = kind
	o.NetNS = ns.Path()
	b, err := New(testLogger(t), o)
	if err != nil {
		t.Fatalf("New(%s): %v", kind, err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Setup(context.Background()); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	return b
}

// mustConnect dials addr from inside cli, from the source address from (the
// zero Addr lets the kernel choose), and fails the test unless it connects.
func mustConnect(t *testing.T, cli *netnstest.NS, from netip.Addr, addr string) {
	t.Helper()
	if err := cli.DialAs(from, addr, 3*time.Second); err != nil {
		t.Fatalf("dial %s from %v: %v, want a connection", addr, from, err)
	}
}

// mustNotConnect is the opposite of mustConnect.
func mustNotConnect(t *testing.T, cli *netnstest.NS, from netip.Addr, addr string) {
	t.Helper()
	if err := cli.DialAs(from, addr, dialTimeout); err == nil {
		t.Fatalf("dial %s from %v succeeded, want it blocked", addr, from)
	}
}

func listed(t *testing.T, b Backend) map[netip.Prefix]time.Duration {
	t.Helper()
	es, err := b.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	m := map[netip.Prefix]time.Duration{}
	for _, e := range es {
		m[e.Prefix] = e.TTL
	}
	return m
}

var families = []struct {
	name   string
	server string // listener address as dialed from the client
	client netip.Addr
	other  netip.Addr   // a second client address, never banned by host
	net    netip.Prefix // a prefix around both client addresses, not the server
}{
	{"ipv4", "198.51.100.1:8080", netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("198.51.100.3"), netip.MustParsePrefix("198.51.100.2/31")},
	{"ipv6", "[2001:db8::1]:8080", netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8::3"), netip.MustParsePrefix("2001:db8::/120")},
}

// newPair builds the server and client namespaces with a listener on port
// 8080 in the server and the second client addresses (198.51.100.3,
// 2001:db8::3) on the client's link.
func newPair(t *testing.T) *netnstest.Pair {
	t.Helper()
	pair := netnstest.NewPair(t)
	pair.Client.AddAddr(netnstest.ClientLink, "198.51.100.3/24", "2001:db8::3/64")
	pair.Server.Listen("[::]:8080")
	return pair
}

// TestSystemBanDropsPackets proves, for both backends and both families, on
// real TCP connections: Ban blocks the banned client while a second address
// of the same client host still connects, Unban restores at once, prefixes
// block every address inside them, and a short TTL expires in the kernel by
// itself.
func TestSystemBanDropsPackets(t *testing.T) {
	for _, kind := range []string{"nftables", "iptables"} {
		for _, verdict := range []string{"drop", "reject"} {
			t.Run(kind+"/"+verdict, func(t *testing.T) {
				requireBackend(t, kind)
				pair := newPair(t)
				b := newInNS(t, kind, pair.Server, Options{Verdict: verdict})
				ctx := context.Background()
				for _, f := range families {
					t.Run(f.name, func(t *testing.T) {
						host := netip.PrefixFrom(f.client, f.client.BitLen())
						mustConnect(t, pair.Client, f.client, f.server)
						mustConnect(t, pair.Client, f.other, f.server)

						if err := b.Ban(ctx, []Entry{{Prefix: host, TTL: time.Hour}}); err != nil {
							t.Fatalf("Ban: %v", err)
						}
						mustNotConnect(t, pair.Client, f.client, f.server)
						mustConnect(t, pair.Client, f.other, f.server)
						if ttl, ok := listed(t, b)[host]; !ok || ttl <= 59*time.Minute || ttl > time.Hour {
							t.Errorf("List: %s ttl %v (listed %v), want about 1h", host, ttl, ok)
						}
						if err := b.Unban(ctx, []netip.Prefix{host}); err != nil {
							t.Fatalf("Unban: %v", err)
						}
						mustConnect(t, pair.Client, f.client, f.server)
						if err := b.Unban(ctx, []netip.Prefix{host, f.net}); err != nil {
							t.Fatalf("Unban of what is not banned: %v, want nil", err)
						}

						if err := b.Ban(ctx, []Entry{{Prefix: f.net, TTL: time.Hour}}); err != nil {
							t.Fatalf("Ban prefix: %v", err)
						}
						mustNotConnect(t, pair.Client, f.client, f.server)
						mustNotConnect(t, pair.Client, f.other, f.server)
						if _, ok := listed(t, b)[f.net]; !ok {
							t.Errorf("List does not show %s", f.net)
						}
						if err := b.Unban(ctx, []netip.Prefix{f.net}); err != nil {
							t.Fatalf("Unban prefix: %v", err)
						}
						mustConnect(t, pair.Client, f.client, f.server)
						mustConnect(t, pair.Client, f.other, f.server)

						// The kernel's clock expires the ban: the one real wait.
						if err := b.Ban(ctx, []Entry{{Prefix: host, TTL: 2 * time.Second}}); err != nil {
							t.Fatalf("Ban with ttl: %v", err)
						}
						mustNotConnect(t, pair.Client, f.client, f.server)
						mustConnect(t, pair.Client, f.other, f.server)
						deadline := time.Now().Add(15 * time.Second)
						for {
							_, banned := listed(t, b)[host]
							if !banned && pair.Client.DialAs(f.client, f.server, dialTimeout) == nil {
								break
							}
							if time.Now().After(deadline) {
								t.Fatalf("ban of %s with ttl 2s still in force after 15s", host)
							}
							time.Sleep(200 * time.Millisecond)
						}
					})
				}
			})
		}
	}
}

// TestSystemRestartKeepsBans restarts a backend holding 1000 bans as band
// does (Close, New, Setup, Reconcile with the same entries) while goroutines
// in the client namespace dial from the banned addresses without pause: not
// one connection may get through, and afterwards every entry is still there
// with its timeout, untouched by Reconcile. With "reject" a blocked dial
// fails at once, so the probes are dense (thousands during the restart);
// with "drop" each probe waits for its short timeout. (The server namespace
// lifts the kernel's ICMP rate limits so that every rejected dial is
// answered.)
func TestSystemRestartKeepsBans(t *testing.T) {
	const n = 1000
	for _, kind := range []string{"nftables", "iptables"} {
		for _, verdict := range []string{"reject", "drop"} {
			t.Run(kind+"/"+verdict, func(t *testing.T) {
				requireBackend(t, kind)
				pair := newPair(t)
				pair.Server.MustRun("sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0",
					"net.ipv4.icmp_msgs_per_sec=1000000", "net.ipv4.icmp_msgs_burst=1000000")
				opts := Options{Verdict: verdict}
				ctx := context.Background()
				want := v6Bans(n - 2)
				for _, f := range families {
					want = append(want, Entry{Prefix: netip.PrefixFrom(f.client, f.client.BitLen()), TTL: time.Hour})
				}
				b1 := newInNS(t, kind, pair.Server, opts)
				if err := b1.Ban(ctx, want); err != nil {
					t.Fatalf("Ban: %v", err)
				}
				for _, f := range families {
					mustNotConnect(t, pair.Client, f.client, f.server)
				}

				probe := 50 * time.Millisecond
				stop := make(chan struct{})
				var restarting atomic.Bool
				type result struct{ tries, during, through int }
				results := make(chan result, 2*len(families))
				for _, f := range families {
					for range 2 {
						go func() {
							var r result
							for {
								select {
								case <-stop:
									results <- r
									return
								default:
								}
								r.tries++
								if restarting.Load() {
									r.during++
								}
								if pair.Client.DialAs(f.client, f.server, probe) == nil {
									r.through++
								}
							}
						}()
					}
				}

				restarting.Store(true)
				start := time.Now()
				if err := b1.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				b2 := newInNS(t, kind, pair.Server, opts) // New and Setup
				added, removed, err := Reconcile(ctx, b2, want)
				restart := time.Since(start)
				restarting.Store(false)
				// Keep probing a little past the restart, then stop.
				time.Sleep(4 * probe)
				close(stop)
				var total result
				for range 2 * len(families) {
					r := <-results
					total.tries += r.tries
					total.during += r.during
					total.through += r.through
				}
				if err != nil {
					t.Fatalf("Reconcile: %v", err)
				}
				t.Logf("restart took %v; %d dials from banned addresses started during it, %d in all", restart, total.during, total.tries)
				if total.through != 0 {
					t.Errorf("%d of %d dials from banned addresses got through during the restart, want 0", total.through, total.tries)
				}
				if total.during == 0 {
					t.Errorf("no dial started during the restart (%d in all), want some", total.tries)
				}
				if added != 0 || removed != 0 {
					t.Errorf("Reconcile after restart: added %d, removed %d, want 0, 0 (bans kept as they were)", added, removed)
				}
				got := listed(t, b2)
				if len(got) != n {
					t.Errorf("after restart: %d entries, want %d", len(got), n)
				}
				for _, e := range want {
					ttl, ok := got[e.Prefix]
					if !ok || ttl <= time.Hour-time.Minute || ttl > time.Hour {
						t.Errorf("after restart: %s listed %v with ttl %v, want about 1h", e.Prefix, ok, ttl)
						break
					}
				}
				for _, f := range families {
					mustNotConnect(t, pair.Client, f.client, f.server)
					mustConnect(t, pair.Client, f.other, f.server)
				}
			})
		}
	}
}

// TestSystemSetupIdempotent runs Setup twice over existing bans and checks
// that nothing is flushed and an unrelated table is left as it was.
func TestSystemSetupIdempotent(t *testing.T) {
	for _, kind := range []string{"nftables", "iptables"} {
		t.Run(kind, func(t *testing.T) {
			requireBackend(t, kind)
			netnstest.RequireTool(t, "nft")
			ns := netnstest.New(t)
			ns.MustRun("nft", "add table inet other; add chain inet other input { type filter hook input priority 0; policy accept; }; add rule inet other input tcp dport 22 accept")
			before := ns.MustRun("nft", "list", "table", "inet", "other")

			b := newInNS(t, kind, ns, Options{})
			ctx := context.Background()
			ban := []Entry{
				{Prefix: netip.MustParsePrefix("203.0.113.9/32"), TTL: time.Hour},
				{Prefix: netip.MustParsePrefix("2001:db8:5::/48"), TTL: time.Hour},
			}
			if err := b.Ban(ctx, ban); err != nil {
				t.Fatalf("Ban: %v", err)
			}
			b2 := newInNS(t, kind, ns, Options{}) // a restarted daemon
			if err := b2.Setup(ctx); err != nil {
				t.Fatalf("second Setup: %v", err)
			}
			got := listed(t, b2)
			for _, e := range ban {
				if _, ok := got[e.Prefix]; !ok {
					t.Errorf("after Setup again: %s gone, want it kept (no flush)", e.Prefix)
				}
			}
			if after := ns.MustRun("nft", "list", "table", "inet", "other"); after != before {
				t.Errorf("table inet other changed:\n%s\nwant:\n%s", after, before)
			}
			switch kind {
			case "nftables":
				rs := ns.MustRun("nft", "list", "table", "inet", "band")
				if n := strings.Count(rs, "@band4 "); n != 1 {
					t.Errorf("rules matching @band4: %d, want 1:\n%s", n, rs)
				}
			case "iptables":
				for _, cmd := range []string{"iptables", "ip6tables"} {
					rs := ns.MustRun(cmd, "-S")
					if n := strings.Count(rs, "-A INPUT -j BAND"); n != 1 {
						t.Errorf("%s: jumps to BAND: %d, want 1:\n%s", cmd, n, rs)
					}
					if n := strings.Count(rs, "--match-set"); n != 1 {
						t.Errorf("%s: set rules: %d, want 1:\n%s", cmd, n, rs)
					}
				}
			}
		})
	}
}

// TestSystemReconcile adds what is missing and removes what is stale,
// leaving what is in both in place.
func TestSystemReconcile(t *testing.T) {
	for _, kind := range []string{"nftables", "iptables"} {
		t.Run(kind, func(t *testing.T) {
			requireBackend(t, kind)
			pair := netnstest.NewPair(t)
			pair.Server.Listen("[::]:8080")
			b := newInNS(t, kind, pair.Server, Options{})
			ctx := context.Background()
			keep := Entry{Prefix: netip.MustParsePrefix("198.51.100.2/32"), TTL: time.Hour}
			stale := Entry{Prefix: netip.MustParsePrefix("203.0.113.5/32"), TTL: time.Hour}
			staleNet := Entry{Prefix: netip.MustParsePrefix("2001:db8:9::/48"), TTL: time.Hour}
			missing := Entry{Prefix: netip.MustParsePrefix("2001:db8::2/128"), TTL: time.Hour}
			missingNet := Entry{Prefix: netip.MustParsePrefix("192.0.2.0/25"), TTL: time.Hour}
			if err := b.Ban(ctx, []Entry{keep, stale, staleNet}); err != nil {
				t.Fatalf("Ban: %v", err)
			}
			added, removed, err := Reconcile(ctx, b, []Entry{keep, missing, missingNet})
			if err != nil {
				t.Fatalf("Reconcile: %v", err)
			}
			if added != 2 || removed != 2 {
				t.Errorf("Reconcile: added %d, removed %d, want 2, 2", added, removed)
			}
			var got []string
			for p := range listed(t, b) {
				got = append(got, p.String())
			}
			slices.Sort(got)
			want := []string{"192.0.2.0/25", "198.51.100.2/32", "2001:db8::2/128"}
			if !slices.Equal(got, want) {
				t.Errorf("after Reconcile: %v, want %v", got, want)
			}
			mustNotConnect(t, pair.Client, netip.Addr{}, "198.51.100.1:8080")
			mustNotConnect(t, pair.Client, netip.Addr{}, "[2001:db8::1]:8080")
			// Nothing to do the second time.
			if added, removed, err := Reconcile(ctx, b, []Entry{keep, missing, missingNet}); err != nil || added != 0 || removed != 0 {
				t.Errorf("second Reconcile: %d, %d, %v, want 0, 0, nil", added, removed, err)
			}
		})
	}
}

func TestMain(m *testing.M) {
	// iptables-nft and ipset need their binaries; report, do not fail.
	for _, tool := range []string{"nft", "iptables", "ipset", "ip"} {
		if _, err := exec.LookPath(tool); err != nil && os.Geteuid() == 0 {
			os.Stderr.WriteString("firewall tests: " + tool + " not found, some system tests will skip\n")
		}
	}
	os.Exit(m.Run())
}

// TestSystemNftablesNestedPrefixes checks that interval sets, which cannot
// hold overlapping intervals, take nested prefixes: a wider prefix replaces
// the narrower ones it covers, a narrower one inside a banned one is skipped.
func TestSystemNftablesNestedPrefixes(t *testing.T) {
	requireBackend(t, "nftables")
	pair := netnstest.NewPair(t)
	pair.Server.Listen("[::]:8080")
	b := newInNS(t, "nftables", pair.Server, Options{})
	ctx := context.Background()
	p := netip.MustParsePrefix
	steps := [][]Entry{
		{{p("198.51.100.0/30"), time.Hour}, {p("2001:db8::/126"), time.Hour}},
		{{p("198.51.100.0/24"), time.Hour}, {p("198.51.100.0/28"), time.Hour}, {p("2001:db8::/64"), time.Hour}},
		{{p("198.51.100.2/31"), time.Hour}, {p("2001:db8::2/127"), time.Hour}},
	}
	for i, s := range steps {
		if err := b.Ban(ctx, s); err != nil {
			t.Fatalf("step %d: Ban: %v", i, err)
		}
	}
	var got []string
	for q := range listed(t, b) {
		got = append(got, q.String())
	}
	slices.Sort(got)
	if want := []string{"198.51.100.0/24", "2001:db8::/64"}; !slices.Equal(got, want) {
		t.Errorf("banned %v, want %v", got, want)
	}
	mustNotConnect(t, pair.Client, netip.Addr{}, "198.51.100.1:8080")
	mustNotConnect(t, pair.Client, netip.Addr{}, "[2001:db8::1]:8080")
	if err := b.Unban(ctx, []netip.Prefix{p("198.51.100.0/24"), p("2001:db8::/64")}); err != nil {
		t.Fatalf("Unban: %v", err)
	}
	mustConnect(t, pair.Client, netip.Addr{}, "198.51.100.1:8080")
	mustConnect(t, pair.Client, netip.Addr{}, "[2001:db8::1]:8080")
}

// TestSystemIPTablesWithoutIPSet drives the fallback of one rule per ban,
// where band expires bans itself by the clock it is given.
func TestSystemIPTablesWithoutIPSet(t *testing.T) {
	requireBackend(t, "iptables")
	pair := netnstest.NewPair(t)
	pair.Server.Listen("[::]:8080")
	now := time.Now()
	o, err := Options{NetNS: pair.Server.Path(), Now: func() time.Time { return now }}.withDefaults("iptables")
	if err != nil {
		t.Fatal(err)
	}
	b, err := newIPTables(testLogger(t), o)
	if err != nil {
		t.Fatal(err)
	}
	b.noIPSet = true
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	if err := b.Setup(ctx); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			host := netip.PrefixFrom(f.client, f.client.BitLen())
			mustConnect(t, pair.Client, f.client, f.server)
			if err := b.Ban(ctx, []Entry{{Prefix: host, TTL: time.Hour}, {Prefix: f.net, TTL: time.Hour}}); err != nil {
				t.Fatalf("Ban: %v", err)
			}
			mustNotConnect(t, pair.Client, f.client, f.server)
			if err := b.Unban(ctx, []netip.Prefix{host, f.net, host}); err != nil {
				t.Fatalf("Unban: %v", err)
			}
			mustConnect(t, pair.Client, f.client, f.server)

			if err := b.Ban(ctx, []Entry{{Prefix: host, TTL: time.Minute}}); err != nil {
				t.Fatalf("Ban: %v", err)
			}
			mustNotConnect(t, pair.Client, f.client, f.server)
			if ttl := listed(t, b)[host]; ttl != time.Minute {
				t.Errorf("List: ttl %v, want 1m", ttl)
			}
			if err := b.expire(now.Add(59 * time.Second)); err != nil {
				t.Fatal(err)
			}
			mustNotConnect(t, pair.Client, f.client, f.server)
			if err := b.expire(now.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			mustConnect(t, pair.Client, f.client, f.server)
			if _, ok := listed(t, b)[host]; ok {
				t.Errorf("List still shows %s after expiry", host)
			}
		})
	}
	// A restarted band finds the rules and reports them without expiry.
	if err := b.Ban(ctx, []Entry{{Prefix: netip.MustParsePrefix("203.0.113.9/32"), TTL: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	b2, err := newIPTables(testLogger(t), o)
	if err != nil {
		t.Fatal(err)
	}
	b2.noIPSet = true
	t.Cleanup(func() { b2.Close() })
	if err := b2.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if ttl, ok := listed(t, b2)[netip.MustParsePrefix("203.0.113.9/32")]; !ok || ttl != 0 {
		t.Errorf("after restart: listed %v ttl %v, want listed with ttl 0 (unknown)", ok, ttl)
	}
}

// TestSystemAutoPicksNftables checks that auto probes the namespace's kernel
// over netlink and chooses nftables when it answers.
func TestSystemAutoPicksNftables(t *testing.T) {
	requireBackend(t, "nftables")
	ns := netnstest.New(t)
	b, err := New(testLogger(t), Options{NetNS: ns.Path()})
	if err != nil {
		t.Fatalf("New(auto): %v", err)
	}
	defer b.Close()
	if b.Name() != "nftables" {
		t.Errorf("auto chose %s, want nftables", b.Name())
	}
}

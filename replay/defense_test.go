package replay

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/band-project/band/config"
)

// writeFile writes lines to a file in a fresh directory and returns its path.
func writeFile(t *testing.T, name string, lines []string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadConfig loads band.toml text (plus the built-in jails) from a temporary
// directory.
func loadConfig(t *testing.T, text string) *config.Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), "band.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func bannedSet(rep *Report) map[string][]string {
	out := map[string][]string{}
	for _, b := range rep.Bans {
		out[b.Addr] = append(out[b.Addr], b.Jail)
	}
	return out
}

func stamp(t time.Time) string { return t.Format("02/Jan/2006:15:04:05 -0700") }

var base = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// TestSpoofedAddressesNeverBanned runs every built-in jail at once over all
// the jail testdata plus a burst of lines from real clients that write
// 192.0.2.99 (as "[client …]", "from …", "… - -" and an escaped newline
// followed by a whole forged line) into every field they control. Bans must
// land on the real clients only.
func TestSpoofedAddressesNeverBanned(t *testing.T) {
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for name := range cfg.Jails {
		all = append(all, name)
	}
	sort.Strings(all)
	files, err := filepath.Glob(filepath.Join("testdata", "jails", "*.match.log"))
	if err != nil || len(files) == 0 {
		t.Fatal("no testdata", err)
	}
	forged := func(t time.Time) string {
		return fmt.Sprintf(`192.0.2.99 - - [%s] \"GET /wp-login.php HTTP/1.1\" 404 196 \"-\" \"sqlmap\"`, stamp(t))
	}
	var burst []string
	for i := range 60 {
		at := base.Add(time.Duration(i) * 20 * time.Millisecond)
		c := fmt.Sprintf("198.51.100.%d", 100+i%3)
		burst = append(burst,
			fmt.Sprintf(`%s - 192.0.2.99 [%s] "GET /192.0.2.99%%20-%%20-/%d.php?from=192.0.2.99\n%s HTTP/1.1" 404 196 "[client 192.0.2.99] from 192.0.2.99" "192.0.2.99 - - \n%s"`,
				c, stamp(at), i, forged(at), forged(at)),
			fmt.Sprintf(`[%s] [auth_basic:error] [pid 1:tid 2] [client %s:4000] AH01618: user [client 192.0.2.99:1] from 192.0.2.99\n[%s] [auth_basic:error] [pid 1:tid 2] [client 192.0.2.99:1] AH01618: user x not found: /private`,
				at.Format("Mon Jan 02 15:04:05.000000 2006"), c, at.Format("Mon Jan 02 15:04:05.000000 2006")))
	}
	files = append(files, writeFile(t, "burst.log", burst))
	rep, err := Run(context.Background(), cfg, files, Options{Jails: all, Matches: true, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ParseErrors != 0 {
		t.Errorf("%d parse errors", rep.ParseErrors)
	}
	if len(rep.Bans) == 0 || len(rep.Matches) == 0 {
		t.Fatalf("%d matches and %d bans: the test proves nothing", len(rep.Matches), len(rep.Bans))
	}
	jails := map[string]bool{}
	for _, m := range rep.Matches {
		jails[m.Jail] = true
		if a := netip.MustParseAddr(m.Addr); spoofNet.Contains(a) {
			t.Errorf("jail %s counted the spoofed %s (%s:%d)", m.Jail, m.Addr, m.File, m.Line)
		}
	}
	for _, b := range rep.Bans {
		if a, err := netip.ParseAddr(b.Addr); err != nil || spoofNet.Contains(a) {
			t.Errorf("jail %s banned %s", b.Jail, b.Addr)
		}
	}
	for _, name := range all {
		if !jails[name] {
			t.Errorf("jail %s matched nothing", name)
		}
	}
	for _, c := range []string{"198.51.100.100", "198.51.100.101", "198.51.100.102"} {
		if bannedSet(rep)[c] == nil {
			t.Errorf("the burst's real client %s was not banned", c)
		}
	}
}

const proxyFormat = `%a %{c}a %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" "%{X-Forwarded-For}i"`

// TestTrustedProxies checks where the client comes from behind reverse
// proxies: X-Forwarded-For read from the right past trusted hops when the
// connection came from a trusted proxy, mod_remoteip's %a when %{c}a is
// one, and never a header sent by anyone else.
func TestTrustedProxies(t *testing.T) {
	const conf = `
[defaults]
trusted_proxies = ["203.0.113.1"]

[[source]]
name = "access"
path = "/var/log/apache2/access.log"
format = "combined"
trusted_proxies = ["203.0.113.16/28", "2001:db8:ffff::/48"]
`
	at := stamp(base)
	line := func(a, peer, xff string) string {
		return fmt.Sprintf(`%s %s - - [%s] "GET / HTTP/1.1" 200 512 "-" "sqlmap/1.7" "%s"`, a, peer, at, xff)
	}
	tests := []struct {
		name string
		line string
		want string // banned by apache-badbots, "" for nobody
	}{
		{"xff from a trusted proxy, spoofed entry on the left", line("203.0.113.1", "203.0.113.1", "192.0.2.99, 198.51.100.60"), "198.51.100.60"},
		{"a chain of trusted proxies", line("203.0.113.1", "203.0.113.1", "192.0.2.99, 198.51.100.61:5123, 203.0.113.17"), "198.51.100.61"},
		{"IPv6 hops with ports", line("2001:db8:ffff::1", "2001:db8:ffff::1", "[2001:db8:1::62]:443, [2001:db8:ffff::2]"), "2001:db8:1::62"},
		{"xff from an untrusted client is ignored", line("198.51.100.63", "198.51.100.63", "198.51.100.99"), "198.51.100.63"},
		{"spoofed xff naming a trusted proxy is ignored", line("198.51.100.64", "198.51.100.64", "203.0.113.1"), "198.51.100.64"},
		{"mod_remoteip behind a trusted proxy", line("198.51.100.65", "203.0.113.18", "-"), "198.51.100.65"},
		{"mod_remoteip believing an untrusted peer", line("192.0.2.99", "198.51.100.66", "-"), "198.51.100.66"},
		{"a trusted proxy without xff is never banned", line("203.0.113.1", "203.0.113.1", "-"), ""},
		{"only trusted hops", line("203.0.113.1", "203.0.113.1", "203.0.113.17"), ""},
		{"garbage xff", line("203.0.113.1", "203.0.113.1", "unknown, 198.51.100.67 x"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := loadConfig(t, conf)
			rep, err := Run(context.Background(), cfg, []string{writeFile(t, "access.log", []string{tc.line})},
				Options{Jails: []string{"apache-badbots"}, Format: proxyFormat, Location: time.UTC})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range rep.Bans {
				got = append(got, b.Addr)
			}
			var want []string
			if tc.want != "" {
				want = []string{tc.want}
			}
			if !slices.Equal(got, want) {
				t.Errorf("banned %v, want %v", got, want)
			}
		})
	}
}

func TestTrustedProxiesValidated(t *testing.T) {
	p := filepath.Join(t.TempDir(), "band.toml")
	os.WriteFile(p, []byte("[defaults]\ntrusted_proxies = [\"10.0.0.0/33\"]\n"), 0o644)
	_, err := config.Load(p)
	if err == nil || !strings.Contains(err.Error(), "band.toml:2: defaults.trusted_proxies: \"10.0.0.0/33\" is not an address or CIDR") {
		t.Errorf("got %v, want an error naming the bad entry", err)
	}
}

// TestIPv6Prefix: one attacker rotating addresses inside a /64 is one
// offender when the jail sets ipv6_prefix = 64, and the ban is the /64.
func TestIPv6Prefix(t *testing.T) {
	var text []string
	for i := range 5 {
		text = append(text, fmt.Sprintf(`[%s] [auth_basic:error] [pid 1:tid 2] [client 2001:db8:bad:1::%x:4000] AH01618: user admin not found: /private`,
			base.Add(time.Duration(i)*time.Second).Format("Mon Jan 02 15:04:05.000000 2006"), 0x1000+i))
		text = append(text, fmt.Sprintf(`[%s] [auth_basic:error] [pid 1:tid 2] [client 2001:db8:bad:%x::1:4000] AH01618: user admin not found: /private`,
			base.Add(time.Duration(i)*time.Second).Format("Mon Jan 02 15:04:05.000000 2006"), 2+i))
		text = append(text, fmt.Sprintf(`[%s] [auth_basic:error] [pid 1:tid 2] [client 198.51.100.%d:4000] AH01618: user admin not found: /private`,
			base.Add(time.Duration(i)*time.Second).Format("Mon Jan 02 15:04:05.000000 2006"), 70+i))
	}
	file := writeFile(t, "error.log", text)
	for _, tc := range []struct {
		name, jail string
		want       []string
	}{
		{"per address", "", nil},
		{"per /64", "ipv6_prefix = 64", []string{"2001:db8:bad:1::/64"}},
		{"per /48", "ipv6_prefix = 48", []string{"2001:db8:bad::/48"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := loadConfig(t, "[jail.apache-auth]\nenabled = true\n"+tc.jail+"\n")
			rep, err := Run(context.Background(), cfg, []string{file}, Options{Jails: []string{"apache-auth"}, Location: time.UTC})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range rep.Bans {
				got = append(got, b.Addr)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("banned %v, want %v", got, tc.want)
			}
		})
	}
	p := filepath.Join(t.TempDir(), "band.toml")
	os.WriteFile(p, []byte("[jail.apache-auth]\nipv6_prefix = 8\n"), 0o644)
	if _, err := config.Load(p); err == nil || !strings.Contains(err.Error(), "ipv6_prefix: must be a prefix length from 32 to 128") {
		t.Errorf("got %v, want ipv6_prefix = 8 refused", err)
	}
}

// TestDistinct404Scan: http-404-scan bans a client getting 404s on more
// than 20 different paths within a minute, and not one asking again and
// again for the same missing path, nor a slow crawler of dead links.
func TestDistinct404Scan(t *testing.T) {
	var text []string
	add := func(c string, at time.Duration, path string) {
		text = append(text, fmt.Sprintf(`%s - - [%s] "GET %s HTTP/1.1" 404 196 "-" "Mozilla/5.0"`, c, stamp(base.Add(at)), path))
	}
	for i := range 25 {
		add("198.51.100.80", time.Duration(i)*time.Second, fmt.Sprintf("/probe/%d", i))   // a scan: banned at the 20th
		add("198.51.100.81", time.Duration(i)*time.Second, "/favicon-old")                // one path, 25 times
		add("198.51.100.82", time.Duration(i)*10*time.Second, fmt.Sprintf("/dead/%d", i)) // 6 a minute
		add("198.51.100.83", time.Duration(i)*time.Second, fmt.Sprintf("/img/%d.png", i)) // static assets
	}
	sort.SliceStable(text, func(i, j int) bool {
		return text[i][strings.Index(text[i], "["):] < text[j][strings.Index(text[j], "["):]
	})
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), cfg, []string{writeFile(t, "access.log", text)}, Options{Jails: []string{"http-404-scan"}, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Bans) != 1 || rep.Bans[0].Addr != "198.51.100.80" || rep.Bans[0].Count != 20 {
		t.Errorf("bans %+v, want 198.51.100.80 once with count 20", rep.Bans)
	}
	if got := rep.Jails[0].Matches; got != 25+1+25 {
		t.Errorf("%d lines counted, want 51 (25 distinct probes, the repeated path once, 25 dead links)", got)
	}
}

// TestLateLines replays lines whose times go backwards, as Apache writes a
// slow request after faster ones: counts are exact, without double counting
// and without counting a line that is outside the window.
func TestLateLines(t *testing.T) {
	var text []string
	// 31 requests for one page within 1.5 s, written in scrambled order: one
	// more than http-flood's 30 in 2 s.
	for i := range 31 {
		k := (i * 17) % 31
		text = append(text, fmt.Sprintf(`198.51.100.90 - - [%s] "GET /search HTTP/1.1" 200 512 "-" "Mozilla/5.0"`,
			base.Add(time.Duration(k)*50*time.Millisecond).Format("02/Jan/2006:15:04:05.000 -0700")))
	}
	// 30 requests for one page, 29 within 2 s and one stamped 3 s earlier
	// but written last: below the threshold.
	for i := range 29 {
		text = append(text, fmt.Sprintf(`198.51.100.91 - - [%s] "GET /search HTTP/1.1" 200 512 "-" "Mozilla/5.0"`,
			base.Add(10*time.Second+time.Duration(i)*50*time.Millisecond).Format("02/Jan/2006:15:04:05.000 -0700")))
	}
	text = append(text, fmt.Sprintf(`198.51.100.91 - - [%s] "GET /search HTTP/1.1" 200 512 "-" "Mozilla/5.0"`,
		base.Add(7*time.Second).Format("02/Jan/2006:15:04:05.000 -0700")))
	file := writeFile(t, "access.log", text)
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), cfg, []string{file}, Options{Jails: []string{"http-flood"},
		Format: `%h %l %u [%{%d/%b/%Y:%H:%M:%S}t.%{msec_frac}t %{%z}t] "%r" %>s %b "%{Referer}i" "%{User-Agent}i"`, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ParseErrors != 0 {
		t.Fatalf("%d parse errors", rep.ParseErrors)
	}
	if len(rep.Bans) != 1 || rep.Bans[0].Addr != "198.51.100.90" || rep.Bans[0].Count != 31 {
		t.Errorf("bans %+v, want 198.51.100.90 once with count 31", rep.Bans)
	}
}

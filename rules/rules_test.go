package rules

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/band-project/band/apachelog"
	"github.com/band-project/band/config"
)

func mustJail(t *testing.T, c config.Jail) *Jail {
	t.Helper()
	if c.BanTime == 0 {
		c.BanTime = config.Duration(10 * time.Minute)
	}
	if c.FindTime == 0 {
		c.FindTime = config.Duration(10 * time.Minute)
	}
	if c.MaxRetry == 0 {
		c.MaxRetry = 5
	}
	j, err := CompileJail("test", &c)
	if err != nil {
		t.Fatalf("compiling: %v", err)
	}
	return j
}

func parse(t *testing.T, format, line string) *apachelog.Event {
	t.Helper()
	p, err := apachelog.Compile(format, apachelog.WithLocation(time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	var ev apachelog.Event
	if err := p.Parse([]byte(line), &ev); err != nil {
		t.Fatalf("parsing %q: %v", line, err)
	}
	return &ev
}

const (
	combined = `%h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"`
	ok200    = `198.51.100.7 - - [25/Nov/2026:10:00:00 +0000] "GET /index.html HTTP/1.1" 200 512 "-" "Mozilla/5.0"`
	wp404    = `198.51.100.7 - - [25/Nov/2026:10:00:00 +0000] "POST /wp-login.php?x=1 HTTP/1.1" 404 512 "-" "Mozilla/5.0"`
	badbot   = `198.51.100.7 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 512 "-" "Mozilla/4.0 (compatible; EMAILcollector 1.0)"`
	spoofed  = `198.51.100.7 - - [25/Nov/2026:10:00:00 +0000] "GET /192.0.2.99%20-%20- HTTP/1.1" 401 512 "192.0.2.99 - -" "[client 192.0.2.99] from 192.0.2.99"`
	auth24   = `[Wed Nov 25 10:00:00.123456 2026] [auth_basic:error] [pid 42:tid 7] [client 198.51.100.7:50000] AH01618: user bob not found: /private`
	auth24sp = `[Wed Nov 25 10:00:00.123456 2026] [auth_basic:error] [pid 42:tid 7] [client 198.51.100.7:50000] AH01618: user [client 192.0.2.99:1] not found: /private`
	auth6    = `[Wed Nov 25 10:00:00.123456 2026] [auth_basic:error] [pid 42:tid 7] [client 2001:db8::7:50000] AH01618: user bob not found: /private`
	css      = `198.51.100.7 - - [25/Nov/2026:10:00:00 +0000] "GET /static/Site.CSS HTTP/1.1" 200 512 "-" "Mozilla/5.0"`
	notmod   = `198.51.100.7 - - [25/Nov/2026:10:00:00 +0000] "GET /index.html HTTP/1.1" 304 0 "-" "Mozilla/5.0"`
)

func TestMatchConditions(t *testing.T) {
	tests := []struct {
		name   string
		jail   config.Jail
		format string
		line   string
		want   bool
	}{
		{"status hit", config.Jail{Status: []int{404}}, combined, wp404, true},
		{"status miss", config.Jail{Status: []int{404}}, combined, ok200, false},
		{"method", config.Jail{Method: []string{"post"}}, combined, wp404, true},
		{"path regex without query", config.Jail{Path: []string{`\.php$`}}, combined, wp404, true},
		{"path prefix", config.Jail{PathPrefix: []string{"/wp-"}}, combined, wp404, true},
		{"path suffix miss", config.Jail{PathSuffix: []string{".asp"}}, combined, wp404, false},
		{"query regex", config.Jail{Query: []string{`^x=`}}, combined, wp404, true},
		{"all conditions must hold", config.Jail{Status: []int{404}, Method: []string{"GET"}}, combined, wp404, false},
		{"agent words, any case", config.Jail{AgentWords: []string{"sqlmap", "EmailCollector"}}, combined, badbot, true},
		{"agent words miss", config.Jail{AgentWords: []string{"sqlmap"}}, combined, badbot, false},
		{"user agent regex", config.Jail{UserAgent: []string{`(?i)emailcollector`}}, combined, badbot, true},
		{"message regex", config.Jail{Message: []string{`^user .+ not found`}}, "error", auth24, true},
		{"error code", config.Jail{ErrorCode: []string{"AH01618"}}, "error", auth24, true},
		{"error jail ignores access lines", config.Jail{Message: []string{`.`}}, "auto", ok200, false},
		{"access jail ignores error lines", config.Jail{Status: []int{404}}, "auto", auth24, false},
		{"ignoreregex", config.Jail{Status: []int{404}, IgnoreRegex: []string{`wp-login`}}, combined, wp404, false},
		{"fields", config.Jail{Fields: map[string]string{"protocol": `^HTTP/1\.1$`}, Status: []int{404}}, combined, wp404, true},
		{"raw regex binds at the client", config.Jail{Regex: []string{`^<HOST> .*"POST /wp-login`}}, combined, wp404, true},
		{"raw regex binding elsewhere never matches", config.Jail{Regex: []string{`"<HOST> - -"`}}, combined, spoofed, false},
		{"raw regex in error log", config.Jail{Regex: []string{`\[client <HOST>:\d+\] AH01618`}}, "error", auth24, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := mustJail(t, tt.jail)
			ev := parse(t, tt.format, tt.line)
			k, ok := j.Match(ev)
			if ok != tt.want {
				t.Fatalf("Match = %v, want %v", ok, tt.want)
			}
			if ok && k.Addr != ev.Client {
				t.Errorf("key addr %v, want the client %v", k.Addr, ev.Client)
			}
		})
	}
}

func TestClientNeverFromAttackerFields(t *testing.T) {
	j := mustJail(t, config.Jail{Status: []int{401}})
	for _, line := range []string{spoofed} {
		k, ok := j.Match(parse(t, combined, line))
		if !ok || k.Addr != netip.MustParseAddr("198.51.100.7") {
			t.Errorf("key %v (%v), want 198.51.100.7", k.Addr, ok)
		}
	}
	e := mustJail(t, config.Jail{Message: []string{`not found`}})
	for _, line := range []string{auth24sp, auth24} {
		k, ok := e.Match(parse(t, "error", line))
		if !ok || k.Addr != netip.MustParseAddr("198.51.100.7") {
			t.Errorf("%s: key %v (%v), want 198.51.100.7", line, k.Addr, ok)
		}
	}
	k, ok := e.Match(parse(t, "error", auth6))
	if !ok || k.Addr != netip.MustParseAddr("2001:db8::7") {
		t.Errorf("IPv6 key %v (%v), want 2001:db8::7", k.Addr, ok)
	}
}

func TestRateKeys(t *testing.T) {
	rate := func(per string) *Jail {
		return mustJail(t, config.Jail{Kind: "rate", Per: per, Threshold: 3, Window: config.Duration(2 * time.Second),
			ExcludeExt: []string{".css"}, ExcludeStatus: []int{304}})
	}
	a := parse(t, combined, `198.51.100.7 - - [25/Nov/2026:10:00:00 +0000] "GET /a?x=1 HTTP/1.1" 200 1 "-" "-"`)
	a2 := parse(t, combined, `198.51.100.7 - - [25/Nov/2026:10:00:00 +0000] "GET /a?x=2 HTTP/1.1" 200 1 "-" "-"`)
	b := parse(t, combined, `198.51.100.7 - - [25/Nov/2026:10:00:00 +0000] "GET /b HTTP/1.1" 200 1 "-" "-"`)
	page, site, client := rate("page"), rate("site"), rate("client")
	key := func(j *Jail, ev *apachelog.Event) Key {
		k, ok := j.Match(ev)
		if !ok {
			t.Fatalf("%s: no match", j.Per)
		}
		return k
	}
	if key(page, a) != key(page, a2) {
		t.Error("per page: the query changed the key")
	}
	if key(page, a) == key(page, b) {
		t.Error("per page: two paths share a key")
	}
	if key(site, a) != key(site, b) || key(client, a) != key(client, b) {
		t.Error("per site/client: two paths have different keys")
	}
	if page.Limit != 4 {
		t.Errorf("limit %d, want threshold+1 = 4", page.Limit)
	}
	for _, line := range []string{css, notmod} {
		if _, ok := page.Match(parse(t, combined, line)); ok {
			t.Errorf("excluded request counted: %s", line)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		jail config.Jail
		want string
	}{
		{"no condition", config.Jail{}, "needs at least one condition"},
		{"bad regex", config.Jail{Path: []string{"("}}, "path: regex"},
		{"host twice", config.Jail{Regex: []string{"<HOST> <HOST>"}}, "exactly once"},
		{"no host", config.Jail{Regex: []string{"foo"}}, "exactly once"},
		{"unknown field", config.Jail{Fields: map[string]string{"nope": "x"}}, `unknown field "nope"`},
		{"rate without threshold", config.Jail{Kind: "rate", Window: config.Duration(time.Second)}, "threshold"},
		{"bad per", config.Jail{Kind: "rate", Per: "planet", Threshold: 1, Window: config.Duration(time.Second)}, "per"},
		{"mixed kinds", config.Jail{Status: []int{401}, Message: []string{"x"}}, "split it"},
		{"bad ignoreip", config.Jail{Status: []int{401}, IgnoreIP: []string{"300.1.1.1"}}, "ignoreip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.jail
			c.BanTime, c.FindTime, c.MaxRetry = config.Duration(time.Minute), config.Duration(time.Minute), 5
			_, err := CompileJail("x", &c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestRequiredLiteral(t *testing.T) {
	tests := map[string]string{
		`^user .+ not found`: " not found",
		`(?i)password`:       "",
		`a|b`:                "",
		`\.php$`:             ".php",
		`^/cgi-bin/`:         "/cgi-bin/",
	}
	for expr, want := range tests {
		if got := string(requiredLiteral(expr)); got != want {
			t.Errorf("requiredLiteral(%q) = %q, want %q", expr, got, want)
		}
	}
}

func TestBuiltinJailsCompile(t *testing.T) {
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range cfg.Jails {
		j.Enabled = true
	}
	jails, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(jails) != len(cfg.Jails) {
		t.Errorf("compiled %d jails, want %d", len(jails), len(cfg.Jails))
	}
}

func BenchmarkMatchDefaultJails(b *testing.B) {
	cfg, err := config.Load("")
	if err != nil {
		b.Fatal(err)
	}
	jails, err := Compile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	p := apachelog.MustCompile("combined")
	var ev apachelog.Event
	if err := p.Parse([]byte(`198.51.100.7 - - [25/Nov/2026:10:00:00 +0000] "GET /blog/2026/11/hello HTTP/1.1" 200 5120 "https://www.example.org/" "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"`), &ev); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, j := range jails {
			j.Match(&ev)
		}
	}
}

// Package loggen writes deterministic Apache access and error logs with
// known legitimate traffic and known attackers, for tests and benchmarks.
package loggen

import (
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"time"
)

// Attackers and what should catch them. Every address is in a documentation
// range.
const (
	PageFlooder  = "192.0.2.66"      // one page, 40 requests a second for 5 s: http-flood
	SiteFlooder  = "192.0.2.77"      // many pages, 150 requests a second for 4 s: http-site-flood
	BruteForcer  = "192.0.2.88"      // 8 basic-auth failures in 4 minutes: apache-auth
	BruteForcer6 = "2001:db8:bad::1" // the same over IPv6
	Scanner      = "203.0.113.5"     // probes for wp-login.php, .env, .git …: apache-botsearch
	BadBot       = "203.0.113.9"     // an e-mail harvester's user agent: apache-badbots
	Shellshock   = "203.0.113.13"    // a function definition in the user agent: apache-shellshock
	SlowGuesser  = "192.0.2.44"      // 4 auth failures over 40 minutes: below every threshold
)

// Expected lists, per jail, the addresses a replay with the default jails
// must ban.
var Expected = map[string][]string{
	"http-flood":        {PageFlooder},
	"http-site-flood":   {SiteFlooder},
	"apache-auth":       {BruteForcer, BruteForcer6},
	"apache-botsearch":  {Scanner},
	"apache-badbots":    {BadBot},
	"apache-shellshock": {Shellshock},
}

// Legit returns the legitimate clients' addresses.
func Legit() []string {
	var out []string
	for i := 10; i < 50; i++ {
		out = append(out, fmt.Sprintf("198.51.100.%d", i))
	}
	out = append(out, "2001:db8:1::10", "2001:db8:1::11")
	return out
}

// Start is the time of the first line.
var Start = time.Date(2026, 11, 25, 9, 0, 0, 0, time.FixedZone("", -7*3600))

type rec struct {
	t     time.Time
	seq   int
	error bool
	text  string
}

// Logs is a generated pair of logs.
type Logs struct {
	Access, Error []string
}

const uaFirefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

var pages = []string{"/", "/index.html", "/about", "/blog/2026/11/hello", "/products?id=7", "/search?q=shoes", "/contact", "/login"}
var assets = []string{"/static/site.css", "/static/app.js", "/img/logo.png", "/favicon.ico", "/fonts/a.woff2"}

// Generate writes about minutes of traffic: legitimate clients at a modest
// rate (with the occasional 404 and mistyped password) plus every attacker
// above. The same seed gives the same logs.
func Generate(seed uint64, minutes int) Logs {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var recs []rec
	add := func(t time.Time, isErr bool, text string) {
		recs = append(recs, rec{t: t, seq: len(recs), error: isErr, text: text})
	}
	span := time.Duration(minutes) * time.Minute
	// Legitimate clients: a page every few seconds with its assets, in a
	// browser's burst; sometimes a 404; one mistyped password now and then.
	for _, c := range Legit() {
		for t := Start.Add(time.Duration(r.IntN(20)) * time.Second); t.Before(Start.Add(span)); t = t.Add(time.Duration(3+r.IntN(12)) * time.Second) {
			page := pages[r.IntN(len(pages))]
			status := 200
			if r.IntN(50) == 0 {
				page, status = "/blog/old-post", 404
			}
			add(t, false, access(c, t, "GET", page, status, "https://www.example.org/", uaFirefox))
			for _, a := range assets[:r.IntN(len(assets))] {
				st := 200
				if r.IntN(3) == 0 {
					st = 304
				}
				add(t, false, access(c, t, "GET", a, st, "https://www.example.org"+page, uaFirefox))
			}
			if r.IntN(200) == 0 {
				add(t, true, authFailure(c, t, "alice"))
				add(t, false, access(c, t, "GET", "/private/", 401, "-", uaFirefox))
			}
		}
	}
	at := func(d time.Duration) time.Time { return Start.Add(d) }
	// Page flood: 40/s on one page for 5 s, starting at 2 minutes.
	for i := 0; i < 200; i++ {
		t := at(2*time.Minute + time.Duration(i)*25*time.Millisecond)
		add(t, false, access(PageFlooder, t, "GET", "/search?q=x"+fmt.Sprint(i), 200, "-", "python-requests/2.31"))
	}
	// Site flood: 150/s over many pages for 4 s.
	for i := 0; i < 600; i++ {
		t := at(3*time.Minute + time.Duration(i)*time.Second/150)
		add(t, false, access(SiteFlooder, t, "GET", fmt.Sprintf("/blog/post-%d", i), 200, "-", uaFirefox))
	}
	// Brute force over basic auth, v4 and v6, with spoof attempts in the user name.
	for i := 0; i < 8; i++ {
		t := at(5*time.Minute + time.Duration(i)*30*time.Second)
		for _, c := range []string{BruteForcer, BruteForcer6} {
			add(t, true, authFailure(c, t, "admin [client 198.51.100.10:1]"))
			add(t, false, access(c, t, "GET", "/private/", 401, "-", "curl/8.5"))
		}
	}
	// A slow guesser stays below maxretry within findtime.
	for i := 0; i < 4; i++ {
		t := at(time.Duration(i) * 10 * time.Minute)
		add(t, true, authFailure(SlowGuesser, t, "root"))
	}
	// Scanner: probes, each a 404, with a legitimate client's address in the path.
	probes := []string{"/wp-login.php", "/xmlrpc.php", "/.env", "/.git/config", "/phpmyadmin/", "/pma/index.php",
		"/cgi-bin/test.cgi", "/webmail/", "/wp-admin/setup-config.php", "/198.51.100.11/.env"}
	for i, pth := range probes {
		t := at(7*time.Minute + time.Duration(i)*2*time.Second)
		add(t, false, access(Scanner, t, "GET", pth, 404, "-", "Mozilla/5.0 (compatible; 198.51.100.12 - - scanner)"))
	}
	// Bad bot and shellshock: one request each is enough.
	add(at(8*time.Minute), false, access(BadBot, at(8*time.Minute), "GET", "/contact", 200, "-", "EmailCollector/1.0"))
	add(at(9*time.Minute), false, access(Shellshock, at(9*time.Minute), "GET", "/cgi-bin/status", 404, "-", "() { :; }; /bin/bash -c 'id'"))
	// Garbage.
	add(at(10*time.Minute), false, "this is not an apache line")
	add(at(10*time.Minute), true, "\x00\x01 binary junk")

	sort.SliceStable(recs, func(i, j int) bool { return recs[i].t.Before(recs[j].t) })
	var l Logs
	for _, x := range recs {
		if x.error {
			l.Error = append(l.Error, x.text)
		} else {
			l.Access = append(l.Access, x.text)
		}
	}
	return l
}

func access(client string, t time.Time, method, path string, status int, referer, ua string) string {
	return fmt.Sprintf(`%s - - [%s] "%s %s HTTP/1.1" %d %d "%s" "%s"`,
		client, t.Format("02/Jan/2006:15:04:05 -0700"), method, path, status, 512+len(path)*7, referer, ua)
}

// authFailure is an Apache 2.4 error-log line. Error logs carry local time
// without an offset; tests parse them in the generator's zone.
func authFailure(client string, t time.Time, user string) string {
	return fmt.Sprintf(`[%s] [auth_basic:error] [pid 4242:tid 140001] [client %s:51234] AH01618: user %s not found: /private/`,
		t.Format("Mon Jan 02 15:04:05.000000 2006"), client, user)
}

// Write writes lines, one per line.
func Write(w io.Writer, lines []string) error {
	for _, l := range lines {
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			return err
		}
	}
	return nil
}

package replay

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/band-project/band/config"
)

// writeCombined writes n lines of combined-format traffic: browsers
// fetching pages and their assets (200s and 304s, some 404s), crawlers, and
// a sprinkling of scanners, bad bots and shellshock attempts, over IPv4 and
// IPv6 clients, ten lines per millisecond.
func writeCombined(tb testing.TB, n int) string {
	tb.Helper()
	name := filepath.Join(tb.TempDir(), "access.log")
	f, err := os.Create(name)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(6, 6))
	agents := []string{
		"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
	}
	pages := []string{"/", "/index.html", "/about", "/blog/2026/11/hello-world", "/products?id=7", "/search?q=shoes&page=2", "/contact", "/login"}
	assets := []string{"/static/site.css", "/static/app.js", "/img/logo.png", "/favicon.ico", "/fonts/a.woff2"}
	probes := []string{"/wp-login.php", "/xmlrpc.php", "/.env", "/.git/config", "/phpmyadmin/", "/cgi-bin/test.cgi", "/admin.php"}
	start := time.Date(2026, 11, 25, 9, 0, 0, 0, time.FixedZone("", -7*3600))
	for i := range n {
		at := start.Add(time.Duration(i) * 100 * time.Microsecond)
		var client string
		if c := r.IntN(5000); c%10 == 0 {
			client = fmt.Sprintf("2001:db8:%x::%x", c/256, c%256)
		} else {
			client = fmt.Sprintf("198.51.%d.%d", 100+c/250%4, c%250+1)
		}
		ua := agents[r.IntN(len(agents))]
		path, status, ref := pages[r.IntN(len(pages))], 200, "https://www.example.org/"
		switch k := r.IntN(1000); {
		case k < 500:
			path = assets[r.IntN(len(assets))]
			if r.IntN(3) == 0 {
				status = 304
			}
		case k < 520:
			path, status = fmt.Sprintf("/blog/old-%d", r.IntN(50)), 404
		case k < 523:
			path, status, ref = probes[r.IntN(len(probes))], 404, "-"
			client = fmt.Sprintf("203.0.113.%d", r.IntN(200))
		case k < 524:
			ua, client = "sqlmap/1.7.2#stable (https://sqlmap.org)", fmt.Sprintf("203.0.113.%d", r.IntN(200))
		case k < 525:
			ua, client = "() { :; }; /bin/bash -c 'id'", fmt.Sprintf("203.0.113.%d", r.IntN(200))
		}
		fmt.Fprintf(w, "%s - - [%s] \"GET %s HTTP/1.1\" %d %d \"%s\" \"%s\"\n",
			client, at.Format("02/Jan/2006:15:04:05 -0700"), path, status, 200+r.IntN(20000), ref, ua)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return name
}

// BenchmarkReplay1M replays a 1M-line combined log through every jail of
// the default configuration, read as the daemon reads it (format
// "combined", as configured for the access log) and as `bandctl test`
// reads it by default ("auto"). Run it on one core:
//
//	go test -run '^$' -bench Replay1M -benchtime 3x -cpu 1 ./replay
func BenchmarkReplay1M(b *testing.B) {
	const n = 1_000_000
	file := writeCombined(b, n)
	for _, format := range []string{"combined", "auto"} {
		b.Run(format, func(b *testing.B) {
			var lines uint64
			for b.Loop() {
				cfg, err := config.Load("")
				if err != nil {
					b.Fatal(err)
				}
				rep, err := Run(context.Background(), cfg, []string{file}, Options{Format: format})
				if err != nil {
					b.Fatal(err)
				}
				if rep.ParseErrors != 0 || len(rep.Bans) == 0 {
					b.Fatalf("%d parse errors, %d bans", rep.ParseErrors, len(rep.Bans))
				}
				lines = rep.Lines
			}
			per := float64(b.Elapsed().Nanoseconds()) / float64(lines) / float64(b.N)
			b.ReportMetric(per, "ns/line")
			b.ReportMetric(1e9/per, "lines/s")
		})
	}
}

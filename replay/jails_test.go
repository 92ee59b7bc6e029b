package replay

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/band-project/band/config"
)

// spoofNet holds the address attackers write into the fields they control
// (path, query, user agent, referer, user name, error messages): it must
// never be counted or banned.
var spoofNet = netip.MustParsePrefix("192.0.2.0/24")

func lines(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// TestBuiltinJailsOnRealLines replays, for every built-in jail, testdata
// /jails/JAIL.match.log (Apache 2.2 and 2.4 lines every one of which must
// count for the jail) and JAIL.miss.log (near misses none of which may),
// through the same code as `bandctl test --jail JAIL`. Many lines carry
// spoofed addresses in the fields a client controls; every match must name
// the line's real client.
func TestBuiltinJailsOnRealLines(t *testing.T) {
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(cfg.Jails))
	for name := range cfg.Jails {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, jail := range names {
		t.Run(jail, func(t *testing.T) {
			for _, kind := range []string{"match", "miss"} {
				file := filepath.Join("testdata", "jails", jail+"."+kind+".log")
				if _, err := os.Stat(file); err != nil {
					t.Fatalf("every built-in jail needs %s: %v", file, err)
				}
				cfg, err := config.Load("")
				if err != nil {
					t.Fatal(err)
				}
				rep, err := Run(context.Background(), cfg, []string{file}, Options{Jails: []string{jail}, Matches: true, Location: time.UTC})
				if err != nil {
					t.Fatal(err)
				}
				text := lines(t, file)
				if rep.ParseErrors != 0 || rep.Lines != uint64(len(text)) {
					t.Errorf("%s: %d lines, %d parse errors; want %d lines, none bad", file, rep.Lines, rep.ParseErrors, len(text))
				}
				matched := map[int]bool{}
				for _, m := range rep.Matches {
					matched[m.Line] = true
					line := text[m.Line-1]
					a, err := netip.ParseAddr(m.Addr)
					if err != nil || spoofNet.Contains(a) || !strings.Contains(line, m.Addr) {
						t.Errorf("%s:%d counted %s, not the line's client: %s", file, m.Line, m.Addr, line)
					}
				}
				for i, line := range text {
					if got, want := matched[i+1], kind == "match"; got != want {
						t.Errorf("%s:%d matched = %v, want %v: %s", file, i+1, got, want, line)
					}
				}
				for _, b := range rep.Bans {
					if p, err := netip.ParsePrefix(b.Addr); err == nil && p.Overlaps(spoofNet) {
						t.Errorf("%s: banned %s", file, b.Addr)
					} else if a, err := netip.ParseAddr(b.Addr); err == nil && spoofNet.Contains(a) {
						t.Errorf("%s: banned %s", file, b.Addr)
					}
				}
			}
		})
	}
}

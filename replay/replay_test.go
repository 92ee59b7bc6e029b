package replay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/band-project/band/config"
	"github.com/band-project/band/internal/loggen"
)

func writeLogs(t testing.TB, minutes int) (access, errlog string) {
	t.Helper()
	l := loggen.Generate(1, minutes)
	dir := t.TempDir()
	access, errlog = filepath.Join(dir, "access.log"), filepath.Join(dir, "error.log")
	for name, lines := range map[string][]string{access: l.Access, errlog: l.Error} {
		f, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := loggen.Write(f, lines); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return access, errlog
}

func TestReplayBansExactlyTheAttackers(t *testing.T) {
	access, errlog := writeLogs(t, 15)
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), cfg, []string{access, errlog}, Options{Location: loggen.Start.Location()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ParseErrors != 2 {
		t.Errorf("parse errors = %d, want the 2 garbage lines", rep.ParseErrors)
	}
	got := map[string][]string{}
	for _, b := range rep.Bans {
		got[b.Jail] = append(got[b.Jail], b.Addr)
	}
	for jail, want := range loggen.Expected {
		g := got[jail]
		sort.Strings(g)
		w := slices.Clone(want)
		sort.Strings(w)
		if !slices.Equal(g, w) {
			t.Errorf("jail %s banned %v, want %v", jail, g, w)
		}
		delete(got, jail)
	}
	for jail, addrs := range got {
		t.Errorf("jail %s banned %v, want nobody", jail, addrs)
	}
	for _, b := range rep.Bans {
		if slices.Contains(loggen.Legit(), b.Addr) || b.Addr == loggen.SlowGuesser {
			t.Errorf("legitimate client %s banned by %s", b.Addr, b.Jail)
		}
	}
}

func TestReplayIsDeterministic(t *testing.T) {
	access, errlog := writeLogs(t, 12)
	var first string
	for i := 0; i < 3; i++ {
		cfg, err := config.Load("")
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Run(context.Background(), cfg, []string{access, errlog}, Options{Location: loggen.Start.Location(), Matches: true})
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprint(rep.Bans, len(rep.Matches))
		if i == 0 {
			first = got
			continue
		}
		if got != first {
			t.Fatalf("run %d gave %v, first run %v", i, got, first)
		}
	}
}

func TestReplayJailSelection(t *testing.T) {
	access, errlog := writeLogs(t, 10)
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), cfg, []string{access, errlog}, Options{Jails: []string{"apache-auth"}, Location: loggen.Start.Location(), Matches: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Jails) != 1 || rep.Jails[0].Name != "apache-auth" {
		t.Fatalf("jails %+v, want only apache-auth", rep.Jails)
	}
	for _, m := range rep.Matches {
		if m.Jail != "apache-auth" || m.File != errlog || m.Line < 1 {
			t.Errorf("match %+v: want apache-auth in %s with a line number", m, errlog)
		}
	}
	if _, err := Run(context.Background(), cfg, []string{access}, Options{Jails: []string{"no-such-jail"}}); err == nil {
		t.Error("an unknown jail was accepted")
	}
}

// BenchmarkReplay measures the whole offline pipeline (read, parse, match
// every default jail, detect, ban) per line.
func BenchmarkReplay(b *testing.B) {
	access, errlog := writeLogs(b, 60)
	var lines int64
	for b.Loop() {
		cfg, err := config.Load("")
		if err != nil {
			b.Fatal(err)
		}
		rep, err := Run(context.Background(), cfg, []string{access, errlog}, Options{Location: loggen.Start.Location()})
		if err != nil {
			b.Fatal(err)
		}
		lines = int64(rep.Lines)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(lines)/float64(b.N), "ns/line")
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

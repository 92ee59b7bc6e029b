package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/band-project/band/bans"
	"github.com/band-project/band/config"
	"github.com/band-project/band/firewall"
)

func newTestPipeline(t *testing.T, opts Options) (*Pipeline, *bans.Book) {
	t.Helper()
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	book := bans.New(log, firewall.NewDryRun(log, nil), bans.Options{})
	p, err := New(log, cfg, book, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p, book
}

func authFailure(client string, at time.Time) string {
	return fmt.Sprintf(`[%s] [auth_basic:error] [pid 1:tid 2] [client %s:40000] AH01618: user admin not found: /private`,
		at.Format("Mon Jan 02 15:04:05.000000 2006"), client)
}

// A restart catches up on lines written while band was down; those older
// than the longest window can no longer matter and are skipped before any
// jail runs, though still counted as read.
func TestHorizonSkipsOldLines(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.Local)
	var p *Pipeline
	p, book := newTestPipeline(t, Options{Horizon: func() time.Time { return now.Add(-p.LongestWindow()) }})
	if w := p.LongestWindow(); w < 10*time.Minute {
		t.Fatalf("longest window %v, want at least the default findtime", w)
	}
	ctx := context.Background()
	old := now.Add(-2 * time.Hour)
	for i := 0; i < 10; i++ {
		p.Line(ctx, "error", "error.log", i+1, []byte(authFailure("192.0.2.7", old.Add(time.Duration(i)*time.Second))))
	}
	if got := len(book.List()); got != 0 {
		t.Errorf("%d bans from lines two hours old", got)
	}
	for _, j := range p.Jails() {
		if j.Name == "apache-auth" && j.Matches != 0 {
			t.Errorf("apache-auth counted %d old lines", j.Matches)
		}
	}
	for i := 0; i < 5; i++ {
		p.Line(ctx, "error", "error.log", 20+i, []byte(authFailure("192.0.2.8", now.Add(-time.Minute+time.Duration(i)*time.Second))))
	}
	if bs := book.List(); len(bs) != 1 || bs[0].Prefix.Addr().String() != "192.0.2.8" {
		t.Errorf("bans %v, want 192.0.2.8 from recent lines", bs)
	}
	for _, s := range p.Sources() {
		if s.Name == "error" && s.Lines != 15 {
			t.Errorf("lines read %d, want 15 (old lines are still counted)", s.Lines)
		}
	}
}

func TestFeedCountsLongAndUnfinishedLines(t *testing.T) {
	p, _ := newTestPipeline(t, Options{})
	now := time.Now()
	text := authFailure("192.0.2.9", now) + "\n" + strings.Repeat("x", 2<<20) + "\n" + authFailure("192.0.2.9", now)
	n, err := p.Feed(context.Background(), "error", "error.log", strings.NewReader(text))
	if err != nil || n != 3 {
		t.Fatalf("Feed read %d lines (%v), want 3", n, err)
	}
	for _, s := range p.Sources() {
		if s.Name == "error" && (s.Lines != 3 || s.ParseErrors != 1) {
			t.Errorf("lines %d, parse errors %d; want 3 and the long line as 1 error", s.Lines, s.ParseErrors)
		}
	}
}

package tailer

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

const wait = 10 * time.Second

// mode is a way of noticing changes: inotify, fast polling, or "manual"
// (polling so slow that only Rescan wakes the tailer, for deterministic steps).
type mode struct {
	name   string
	opts   Options
	manual bool
}

var modes = []mode{
	{name: "inotify", opts: Options{Rescan: time.Hour}},
	{name: "poll", opts: Options{Poll: true, PollInterval: 5 * time.Millisecond, Rescan: time.Hour}},
	{name: "manual", opts: Options{Poll: true, PollInterval: time.Hour, Rescan: time.Hour}, manual: true},
}

var manual = modes[2]

// recorder is a slog handler keeping the messages logged.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}

func (r *recorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// harness runs a Tailer for a test.
type harness struct {
	t      *testing.T
	tl     *Tailer
	out    chan Line
	rec    *recorder
	manual bool
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, m mode, sources []Source, opts Options) *harness {
	t.Helper()
	return startWith(t, m, sources, opts, nil)
}

// startWith is start with a hook to adjust the Tailer before Run.
func startWith(t *testing.T, m mode, sources []Source, opts Options, adjust func(*Tailer)) *harness {
	t.Helper()
	o := m.opts
	o.Start, o.MaxLineLen, o.RotatedGrace = opts.Start, opts.MaxLineLen, opts.RotatedGrace
	rec := &recorder{}
	o.Logger = slog.New(rec)
	h := &harness{t: t, tl: New(sources, o), out: make(chan Line, 64), rec: rec, manual: m.manual}
	if adjust != nil {
		adjust(h.tl)
	}
	h.run()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.tl.Run(ctx, h.out) }()
}

// stop cancels Run and waits for it to return.
func (h *harness) stop() {
	h.t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(wait):
		h.t.Fatal("Run did not return after cancel")
	}
}

// kick wakes a manual-mode tailer; inotify and polling must notice alone.
func (h *harness) kick() {
	if h.manual {
		h.tl.Rescan()
	}
}

func (h *harness) next() Line {
	h.t.Helper()
	select {
	case l := <-h.out:
		return l
	case <-time.After(wait):
		h.t.Fatalf("no line within %v", wait)
		return Line{}
	}
}

// expect receives len(want) lines and checks their text.
func (h *harness) expect(want ...string) []Line {
	h.t.Helper()
	var got []Line
	for range want {
		got = append(got, h.next())
	}
	for i, l := range got {
		if string(l.Text) != want[i] {
			h.t.Errorf("line %d: got %q, want %q", i, l.Text, want[i])
		}
	}
	return got
}

// eventually polls cond until it holds or the deadline passes.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// position returns the position of the file followed under path (not a
// rotated one).
func (h *harness) position(path string) (Position, bool) {
	for _, p := range h.tl.Positions() {
		if p.Path == path && !p.Rotated {
			return p, true
		}
	}
	return Position{}, false
}

func (h *harness) waitFollowing(path string) Position {
	h.t.Helper()
	var p Position
	h.eventually("following "+path, func() bool {
		var ok bool
		p, ok = h.position(path)
		return ok
	})
	return p
}

// appendTo appends s to path, creating it if needed.
func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func inode(t *testing.T, path string) fileID {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileIDOf(fi)
}

// numbered is line i of a test stream, of varying length.
func numbered(i int) string {
	return fmt.Sprintf("id=%07d %s", i, "abcdefghijklmnopqrstuvwxyz0123456789"[:i%37])
}

// counter checks that numbered lines arrive exactly once.
type counter struct {
	h    *harness
	seen map[string]bool
}

func newCounter(h *harness) *counter { return &counter{h: h, seen: make(map[string]bool)} }

// collect receives lines until total distinct lines were seen, failing on
// a duplicate.
func (c *counter) collect(total int) {
	c.h.t.Helper()
	for len(c.seen) < total {
		l := c.h.next()
		if c.seen[string(l.Text)] {
			c.h.t.Fatalf("duplicate line %q from %s at %d", l.Text, l.File, l.Offset)
		}
		c.seen[string(l.Text)] = true
	}
}

// barrier writes two sentinel lines to path, one after the other, and
// checks that the next lines received are exactly these: any line delivered
// twice would show up before them.
func (c *counter) barrier(path string) {
	c.h.t.Helper()
	for _, s := range []string{"sentinel-1", "sentinel-2"} {
		appendTo(c.h.t, path, s+"\n")
		c.h.kick()
		if l := c.h.next(); string(l.Text) != s {
			c.h.t.Fatalf("got %q from %s, want %s", l.Text, l.File, s)
		}
	}
}

// keys returns the sorted keys of m, for messages.
func keys(m map[string]bool) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// wantStats waits for the counters to reach want (a line is counted just
// after it is received) and checks they are exactly want.
func (h *harness) wantStats(want Stats) {
	h.t.Helper()
	deadline := time.Now().Add(wait)
	for h.tl.Stats() != want && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if got := h.tl.Stats(); got != want {
		h.t.Errorf("got stats %+v, want %+v", got, want)
	}
}

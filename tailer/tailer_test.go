package tailer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestExistingFileStartsAtEnd(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "access.log")
			appendTo(t, path, "old 1\nold 2\n")
			h := start(t, m, []Source{{"web", path}}, Options{})
			if p := h.waitFollowing(path); p.Offset != 12 || p.Size != 12 {
				t.Fatalf("got position %+v, want offset and size 12", p)
			}
			appendTo(t, path, "new 1\n")
			h.kick()
			l := h.expect("new 1")[0]
			if l.Offset != 18 || l.Source != "web" || l.File != path {
				t.Errorf("got %+v, want source web, file %s, offset 18", l, path)
			}
		})
	}
}

func TestExistingFileIncompleteLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	appendTo(t, path, "old 1\nhalf")
	h := start(t, manual, []Source{{"web", path}}, Options{})
	if p := h.waitFollowing(path); p.Offset != 6 {
		t.Fatalf("got offset %d, want 6 (start of the incomplete line)", p.Offset)
	}
	appendTo(t, path, " done\n")
	h.kick()
	if l := h.expect("half done")[0]; l.Offset != 16 {
		t.Errorf("got offset %d, want 16", l.Offset)
	}
}

func TestFileAppearsAfterStart(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "apache2")
			path := filepath.Join(dir, "access.log")
			h := start(t, m, []Source{{"web", path}}, Options{})
			h.eventually("waiting log", func() bool { return h.rec.count("waiting for log file") == 1 })
			h.tl.Rescan()
			h.tl.Rescan()
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if m.name == "inotify" {
				h.tl.Rescan() // the directory did not exist to be watched
			}
			appendTo(t, path, "first\nsecond\n")
			h.kick()
			got := h.expect("first", "second")
			if got[0].Offset != 6 || got[1].Offset != 13 {
				t.Errorf("got offsets %d, %d, want 6, 13", got[0].Offset, got[1].Offset)
			}
			if n := h.rec.count("waiting for log file"); n != 1 {
				t.Errorf("logged waiting %d times, want once", n)
			}
		})
	}
}

func TestOffsets(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "access.log")
			appendTo(t, path, "")
			h := start(t, m, []Source{{"web", path}}, Options{})
			h.waitFollowing(path)
			tests := []struct{ write, want string }{
				{"plain\n", "plain"},
				{"crlf\r\n", "crlf"},
				{"\n", ""},
				{"inner\rcr\n", "inner\rcr"},
				{strings.Repeat("z", 5000) + "\n", strings.Repeat("z", 5000)},
				{"é ü\n", "é ü"},
			}
			var size int64
			for _, tt := range tests {
				appendTo(t, path, tt.write)
				size += int64(len(tt.write))
				h.kick()
				l := h.expect(tt.want)[0]
				if l.Offset != size {
					t.Errorf("line %q: got offset %d, want %d", tt.want, l.Offset, size)
				}
			}
			h.eventually("position at end", func() bool {
				p, _ := h.position(path)
				return p.Offset == size && p.Size == size
			})
		})
	}
}

func TestManyLinesInOrder(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "access.log")
			appendTo(t, path, "")
			h := start(t, m, []Source{{"web", path}}, Options{})
			h.waitFollowing(path)
			// Lines of 30000 bytes cross the 64 KiB read buffer.
			var b strings.Builder
			var want []string
			for i := range 2000 {
				s := numbered(i)
				if i%100 == 7 {
					s += strings.Repeat("-", 30000)
				}
				want = append(want, s)
				b.WriteString(s + "\n")
			}
			appendTo(t, path, b.String())
			h.kick()
			var off int64
			for i, l := range h.expect(want...) {
				off += int64(len(want[i])) + 1
				if l.Offset != off {
					t.Fatalf("line %d: got offset %d, want %d", i, l.Offset, off)
				}
			}
		})
	}
}

func TestPartialLineHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	appendTo(t, path, "")
	h := start(t, manual, []Source{{"web", path}}, Options{})
	h.waitFollowing(path)
	appendTo(t, path, "par")
	h.kick()
	// The pass that saw the partial line has stored its size.
	h.eventually("size 3", func() bool { p, _ := h.position(path); return p.Size == 3 })
	if p, _ := h.position(path); p.Offset != 0 {
		t.Errorf("got offset %d after a partial line, want 0", p.Offset)
	}
	appendTo(t, path, "tial\nnext\n")
	h.kick()
	got := h.expect("partial", "next")
	if got[0].Offset != 8 || got[1].Offset != 13 {
		t.Errorf("got offsets %d, %d, want 8, 13", got[0].Offset, got[1].Offset)
	}
}

func TestLongLinesSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	appendTo(t, path, "")
	h := start(t, manual, []Source{{"web", path}}, Options{MaxLineLen: 16})
	h.waitFollowing(path)

	long := strings.Repeat("x", 40)
	appendTo(t, path, "short1\n"+long+"\nshort2\n"+strings.Repeat("y", 16)+"\n")
	h.kick()
	got := h.expect("short1", "short2", strings.Repeat("y", 16))
	if want := int64(7 + 41 + 7); got[1].Offset != want {
		t.Errorf("got offset %d, want %d", got[1].Offset, want)
	}
	size := fileSize(t, path)

	// A long line still being written: skipped once complete, counted once.
	appendTo(t, path, strings.Repeat("w", 20))
	h.kick()
	h.eventually("size", func() bool { p, _ := h.position(path); return p.Size == size+20 })
	appendTo(t, path, strings.Repeat("w", 20))
	h.kick()
	h.eventually("size", func() bool { p, _ := h.position(path); return p.Size == size+40 })
	if p, _ := h.position(path); p.Offset != size {
		t.Errorf("got offset %d inside a long line, want its start %d", p.Offset, size)
	}
	appendTo(t, path, "www\nshort3\n")
	h.kick()
	if l := h.expect("short3")[0]; l.Offset != size+44+7 {
		t.Errorf("got offset %d, want %d", l.Offset, size+44+7)
	}
	h.wantStats(Stats{Lines: 4, LongLines: 2})
}

// TestRenameRotation rotates as logrotate's "create" does, with lines
// written to the old file after the rename (before and after the tailer
// notices) and to the new file, and checks every line arrives exactly once.
func TestRenameRotation(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "access.log")
			appendTo(t, path, "history\n")
			h := start(t, m, []Source{{"web", path}}, Options{})
			h.waitFollowing(path)
			c := newCounter(h)

			w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { w.Close() }()
			id := 0
			write := func(f *os.File, n int) {
				t.Helper()
				var b strings.Builder
				for range n {
					b.WriteString(numbered(id) + "\n")
					id++
				}
				if _, err := f.WriteString(b.String()); err != nil {
					t.Fatal(err)
				}
			}
			const rotations = 8
			for r := range rotations {
				write(w, 200)
				if err := os.Rename(path, fmt.Sprintf("%s.%d", path, r)); err != nil {
					t.Fatal(err)
				}
				write(w, 50) // after the rename, before the new file exists
				nw, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o644)
				if err != nil {
					t.Fatal(err)
				}
				write(nw, 30)
				write(w, 20) // the old writer is still running
				write(nw, 100)
				h.kick()
				c.collect(id)
				// The tailer switched; a late writer still appends to the old file.
				ino := inode(t, path)
				h.eventually("new file followed", func() bool {
					p, ok := h.position(path)
					return ok && p.Inode == ino.ino
				})
				write(w, 25)
				h.kick()
				c.collect(id)
				w.Close()
				w = nw
			}
			c.barrier(path)
			h.wantStats(Stats{Lines: uint64(id + 2), Rotations: rotations})
		})
	}
}

// TestCopyTruncate rotates as logrotate's "copytruncate" does: the file is
// copied then truncated in place, and the writer goes on appending.
func TestCopyTruncate(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "access.log")
			appendTo(t, path, "history\n")
			h := start(t, m, []Source{{"web", path}}, Options{})
			h.waitFollowing(path)
			c := newCounter(h)

			w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			id := 0
			write := func(n int) {
				t.Helper()
				var b strings.Builder
				for range n {
					b.WriteString(numbered(id) + "\n")
					id++
				}
				if _, err := w.WriteString(b.String()); err != nil {
					t.Fatal(err)
				}
			}
			const rotations = 6
			for r := range rotations {
				write(400)
				h.kick()
				c.collect(id) // consumed before the copy: nothing falls in logrotate's gap
				copyFile(t, path, fmt.Sprintf("%s.%d", path, r))
				if err := os.Truncate(path, 0); err != nil {
					t.Fatal(err)
				}
				write(150) // right after the truncation, less than was there
				h.kick()
				c.collect(id)
			}
			c.barrier(path)
			h.wantStats(Stats{Lines: uint64(id + 2), Truncations: rotations})
		})
	}
}

// TestTruncateRegrow covers a file truncated and rewritten past the old
// offset before the tailer looked: the size alone cannot show it.
func TestTruncateRegrow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	appendTo(t, path, "")
	h := start(t, manual, []Source{{"web", path}}, Options{})
	h.waitFollowing(path)
	appendTo(t, path, strings.Repeat("aaaaaaaaa\n", 10)) // 100 bytes, '\n' at 99
	h.kick()
	h.expect(slicesRepeat("aaaaaaaaa", 10)...)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, strings.Repeat("bb\n", 40)) // 120 bytes, no '\n' at 99
	h.kick()
	h.expect(slicesRepeat("bb", 40)...)
	h.wantStats(Stats{Lines: 50, Truncations: 1})
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestGlob(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			a, b, c := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log"), filepath.Join(dir, "c.log")
			appendTo(t, a, "a old\n")
			appendTo(t, b, "b old\n")
			appendTo(t, filepath.Join(dir, "other.txt"), "not matched\n")
			h := start(t, m, []Source{{"vhosts", filepath.Join(dir, "*.log")}}, Options{})
			h.waitFollowing(a)
			h.waitFollowing(b)
			appendTo(t, a, "a new\n")
			appendTo(t, b, "b new\n")
			appendTo(t, c, "c first\n") // created after start: read from its beginning
			h.kick()
			if m.name == "poll" {
				h.tl.Rescan() // polling checks known files; new ones need a scan
			}
			got := map[string]int64{}
			for range 3 {
				l := h.next()
				got[filepath.Base(l.File)+" "+string(l.Text)] = l.Offset
				if l.Source != "vhosts" {
					t.Errorf("got source %q, want vhosts", l.Source)
				}
			}
			want := map[string]int64{"a.log a new": 12, "b.log b new": 12, "c.log c first": 8}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("got %v, want %v", got, want)
					break
				}
			}
		})
	}
}

func TestStartPosition(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	appendTo(t, path, "one\ntwo\nthree\n")
	id := inode(t, path)
	tests := []struct {
		name string
		pos  *Position
		want []string
	}{
		{"same file", &Position{Dev: id.dev, Inode: id.ino, Offset: 4}, []string{"two", "three", "new"}},
		{"same file at end", &Position{Dev: id.dev, Inode: id.ino, Offset: 14}, []string{"new"}},
		{"other file", &Position{Dev: id.dev, Inode: id.ino + 1, Offset: 4}, []string{"one", "two", "three", "new"}},
		{"truncated", &Position{Dev: id.dev, Inode: id.ino, Offset: 1000}, []string{"one", "two", "three", "new"}},
		{"not a line start", &Position{Dev: id.dev, Inode: id.ino, Offset: 5}, []string{"one", "two", "three", "new"}},
		{"no position", nil, []string{"new"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.Truncate(path, 14); err != nil {
				t.Fatal(err)
			}
			opts := Options{Start: func(p string) (Position, bool) {
				if p != path || tt.pos == nil {
					return Position{}, false
				}
				return *tt.pos, true
			}}
			h := start(t, manual, []Source{{"web", path}}, opts)
			h.waitFollowing(path)
			appendTo(t, path, "new\n")
			h.kick()
			h.expect(tt.want...)
		})
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	appendTo(t, path, "old\n")
	h := start(t, manual, []Source{{"web", path}}, Options{})
	h.waitFollowing(path)
	appendTo(t, path, "one\n")
	h.kick()
	h.expect("one")
	h.stop()
	if ps := h.tl.Positions(); len(ps) != 1 || ps[0].Offset != 8 {
		t.Fatalf("got positions %+v after stop, want offset 8", ps)
	}

	appendTo(t, path, "while stopped\n")
	h.run()
	h.kick()
	h.expect("while stopped")
	h.stop()

	// Rotated while stopped: the new file is read from its beginning.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, "new file\n")
	h.run()
	h.kick()
	h.expect("new file")
}

func TestRunErrors(t *testing.T) {
	tl := New([]Source{{"bad", "/var/log/[.log"}}, Options{})
	if err := tl.Run(context.Background(), make(chan Line)); err == nil {
		t.Error("got nil error for a bad pattern")
	}

	path := filepath.Join(t.TempDir(), "access.log")
	h := start(t, manual, []Source{{"web", path}}, Options{})
	h.eventually("waiting log", func() bool { return h.rec.count("waiting for log file") == 1 })
	if err := h.tl.Run(context.Background(), h.out); !errors.Is(err, ErrRunning) {
		t.Errorf("got %v, want ErrRunning", err)
	}
}

func TestRotatedFileClosedAfterGrace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	appendTo(t, path, "")
	h := start(t, manual, []Source{{"web", filepath.Join(dir, "access.log*")}},
		Options{RotatedGrace: time.Nanosecond})
	h.waitFollowing(path)
	appendTo(t, path, "one\n")
	h.kick()
	h.expect("one")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, "two\n")
	h.kick()
	h.expect("two")
	// access.log.1 matches the glob: it must not be read again from the start.
	h.kick()
	h.eventually("rotated file closed", func() bool {
		h.tl.Rescan()
		for _, p := range h.tl.Positions() {
			if p.Rotated {
				return false
			}
		}
		return true
	})
	appendTo(t, path+".1", "late\n")
	appendTo(t, path, "three\n")
	h.kick()
	got := map[string]bool{}
	for range 2 {
		got[string(h.next().Text)] = true
	}
	if !got["late"] || !got["three"] {
		t.Errorf("got %v, want late and three", keys(got))
	}
	c := newCounter(h)
	c.barrier(path)
}

func TestNoGoroutinesAfterCancel(t *testing.T) {
	// Warm up anything started once per process.
	dir := t.TempDir()
	h := start(t, modes[0], []Source{{"warm", filepath.Join(dir, "warm.log")}}, Options{})
	h.stop()
	before := runtime.NumGoroutine()

	var hs []*harness
	for i := range 20 {
		path := filepath.Join(dir, fmt.Sprintf("%d.log", i))
		appendTo(t, path, "")
		m := modes[i%2] // inotify and polling
		h := start(t, m, []Source{{"web", path}}, Options{})
		h.waitFollowing(path)
		appendTo(t, path, "x\n")
		h.expect("x")
		hs = append(hs, h)
	}
	for _, h := range hs {
		// Blocked in a send: Run must still return.
		appendTo(t, filepath.Join(dir, "0.log"), strings.Repeat("y\n", 100))
		h.stop()
	}
	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want %d:\n%s", runtime.NumGoroutine(), before,
				buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRemovedAndRecreated(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "access.log")
			appendTo(t, path, "")
			h := start(t, m, []Source{{"web", path}}, Options{RotatedGrace: time.Nanosecond})
			h.waitFollowing(path)
			appendTo(t, path, "one\n")
			h.kick()
			h.expect("one")
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			h.kick()
			h.eventually("file dropped", func() bool {
				h.tl.Rescan()
				return len(h.tl.Positions()) == 0
			})
			appendTo(t, path, "two\n")
			h.kick()
			if l := h.expect("two")[0]; l.Offset != 4 {
				t.Errorf("got offset %d, want 4", l.Offset)
			}
		})
	}
}

func TestStartedAfterFirstLook(t *testing.T) {
	dir := t.TempDir()
	present := filepath.Join(dir, "present.log")
	os.WriteFile(present, []byte("old line\n"), 0o644)
	started := make(chan struct{})
	tl := New([]Source{{Name: "a", Path: present}}, Options{Started: func() { close(started) }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan Line, 10)
	go tl.Run(ctx, out)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("Started not called")
	}
	// Written after Started: read, never skipped as history.
	f, _ := os.OpenFile(present, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("new line\n")
	f.Close()
	select {
	case l := <-out:
		if string(l.Text) != "new line" {
			t.Errorf("got %q, want the line written after Started", l.Text)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the line written after Started was not delivered")
	}
}

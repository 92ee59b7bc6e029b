package tailer

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// noTicks makes the tailer's own periodic checks (safety tick, rescan,
// polling interval) an hour long: what the test receives was announced by
// nxadm/tail's watchers (and, for globs, the directory watch).
func noTicks(tl *Tailer) { tl.safety = time.Hour }

// TestNotificationsAlone follows a literal path through appends, a rename
// rotation with late writes to the old file, copytruncate, removal and
// re-creation, and a glob through a new file, with no tick and no Rescan:
// under inotify, nxadm/tail's ChangeEvents (on the held descriptor) and
// BlockUntilExists, and the directory watch for the glob, must announce
// every change. With Poll, nxadm/tail's polling watcher announces changes
// to the file under its path and its appearance.
func TestNotificationsAlone(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		late bool // late writes to a rotated file are announced by themselves
	}{
		{"inotify", Options{Rescan: time.Hour}, true},
		{"nxadm-poll", Options{Poll: true, PollInterval: time.Hour, Rescan: time.Hour}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "access.log")
			appendTo(t, path, "")
			vhosts := filepath.Join(dir, "vhosts")
			if err := os.Mkdir(vhosts, 0o755); err != nil {
				t.Fatal(err)
			}
			m := mode{name: tt.name, opts: tt.opts}
			h := startWith(t, m, []Source{{"web", path}}, Options{RotatedGrace: time.Hour}, noTicks)
			h.waitFollowing(path)

			appendTo(t, path, "one\n")
			h.expect("one")

			// Rename rotation, the new file created a little later.
			w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
			w.WriteString("two\n")
			h.expect("two")
			appendTo(t, path, "three\n")
			h.expect("three")
			if tt.late {
				w.WriteString("late\n") // to the rotated file, after the switch
				h.expect("late")
			}

			// copytruncate
			appendTo(t, path, "four\n")
			h.expect("four")
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			appendTo(t, path, "five\n")
			h.expect("five")

			// Removed, then created again.
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			h.eventually("removal noticed", func() bool { _, ok := h.position(path); return !ok })
			appendTo(t, path, "six\n")
			h.expect("six")
			if s := h.tl.Stats(); s.Rotations != 2 || s.Truncations != 1 {
				t.Errorf("got stats %+v, want 2 rotations and 1 truncation", s)
			}
		})
	}

	// A glob: new files are announced by the directory watch.
	dir := t.TempDir()
	h := startWith(t, modes[0], []Source{{"vhosts", filepath.Join(dir, "*.log")}}, Options{}, noTicks)
	h.eventually("waiting log", func() bool { return h.rec.count("waiting for log file") == 1 })
	appendTo(t, filepath.Join(dir, "a.log"), "a\n")
	h.expect("a")
	appendTo(t, filepath.Join(dir, "a.log"), "b\n")
	h.expect("b")
}

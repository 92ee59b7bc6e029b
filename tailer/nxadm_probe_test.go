package tailer

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nxadm/tail"
)

// TestNxadmTailRenameProbe shows why the tailer reads files itself: it runs
// github.com/nxadm/tail (ReOpen, CompleteLines) through a rename rotation
// with lines written to the old file after the rename, and logs what it
// delivered. With v1.4.11 trials lose "B" and "C" (and sometimes the new
// file's "D"): about 9 in 10 when polling, 1 in 10 with inotify. It
// asserts nothing (the loss is a race) and runs only with BAND_PROBE_NXADM=1.
func TestNxadmTailRenameProbe(t *testing.T) {
	if os.Getenv("BAND_PROBE_NXADM") == "" {
		t.Skip("set BAND_PROBE_NXADM=1 to probe nxadm/tail")
	}
	want := []string{"B", "C", "D"}
	for _, poll := range []bool{false, true} {
		lost := 0
		const trials = 10
		for range trials {
			path := filepath.Join(t.TempDir(), "access.log")
			appendTo(t, path, "")
			tl, err := tail.TailFile(path, tail.Config{Follow: true, ReOpen: true, Poll: poll,
				CompleteLines: true, Logger: tail.DiscardingLogger})
			if err != nil {
				t.Fatal(err)
			}
			w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			w.WriteString("A\n")
			<-tl.Lines
			w.WriteString("B\n")
			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
			w.WriteString("C\n")
			w.Close()
			appendTo(t, path, "D\n")
			var got []string
			timeout := time.After(time.Second)
		recv:
			for {
				select {
				case l := <-tl.Lines:
					got = append(got, l.Text)
				case <-timeout:
					break recv
				}
			}
			tl.Stop()
			if !slices.Equal(got, want) {
				lost++
				t.Logf("poll=%v: got %q, want %q", poll, got, want)
			}
		}
		t.Logf("poll=%v: nxadm/tail lost lines in %d of %d rotations", poll, lost, trials)
	}
}

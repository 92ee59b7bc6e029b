package tailer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nxadm/tail/watch"
	"gopkg.in/tomb.v1"
)

// fileWatch forwards the change notifications of one followed file (one
// device+inode), from an nxadm/tail watch.FileWatcher, to the Run loop.
type fileWatch struct {
	name    string   // name given to nxadm/tail: a /proc/self/fd link to own, or the path
	own     *os.File // the descriptor name links to; nil when name is the path
	inotify bool
	refs    int // followers of this file
	tomb    tomb.Tomb
	done    chan struct{} // closed when forward returns
}

// watchFile starts the change notifications of f's file, or counts one more
// follower of a file already watched. It must be called before f is first
// read, so that no change after that read goes unannounced.
func (r *run) watchFile(f *follower) {
	if w := r.watches[f.id]; w != nil {
		w.refs++
		return
	}
	w := &fileWatch{name: f.path, inotify: r.inotify, refs: 1, done: make(chan struct{})}
	r.watches[f.id] = w
	if w.inotify {
		w.own, w.name = procLink(f)
	}
	fw := w.newWatcher()
	changes, err := fw.ChangeEvents(&w.tomb, f.offset.Load())
	if err != nil {
		close(w.done)
		r.log.Debug("no change notifications for log file", "source", f.source, "path", f.path, "err", err)
		return
	}
	go w.forward(changes, r.wake)
}

// procLink opens the file f reads once more through /proc/self/fd and
// returns the new descriptor and its /proc/self/fd name. Watched under that
// name, the file keeps its watch when it is renamed or unlinked, and the
// name is the tailer's alone while the descriptor is open. Without /proc it
// returns f's path.
func procLink(f *follower) (*os.File, string) {
	fd, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", f.f.Fd()))
	if err != nil {
		return nil, f.path
	}
	name := fmt.Sprintf("/proc/self/fd/%d", fd.Fd())
	a, err1 := fd.Stat()
	b, err2 := os.Stat(name)
	if err1 != nil || err2 != nil || fileIDOf(a) != f.id || fileIDOf(b) != f.id {
		fd.Close()
		return nil, f.path
	}
	return fd, name
}

func (w *fileWatch) newWatcher() watch.FileWatcher {
	if w.inotify {
		return watch.NewInotifyFileWatcher(w.name)
	}
	return watch.NewPollingFileWatcher(w.name)
}

// forward wakes the Run loop at every change until the tomb dies. nxadm's
// watcher stops after a rename or removal (Deleted); under inotify the
// tailer still holds the file open and reads late writes to it, so the
// watch is started again: nxadm dropped its registration before announcing
// Deleted, so the name is free.
func (w *fileWatch) forward(c *watch.FileChanges, wake chan<- struct{}) {
	defer close(w.done)
	for {
		deleted := false
		select {
		case <-w.tomb.Dying():
			return
		case <-c.Modified:
		case <-c.Truncated:
		case <-c.Deleted:
			deleted = true
		}
		notify(wake)
		if !deleted {
			continue
		}
		if !w.inotify || w.own == nil {
			return // the path names another file or none: the new one gets its own watch
		}
		next, err := w.newWatcher().ChangeEvents(&w.tomb, 0)
		if err != nil {
			return // the safety tick still reads the file
		}
		c = next
	}
}

// unwatchFile stops the notifications of f's file once no follower is left.
// It must be called before f's descriptor is closed.
func (r *run) unwatchFile(f *follower) {
	w := r.watches[f.id]
	if w == nil {
		return
	}
	if w.refs--; w.refs > 0 {
		return
	}
	delete(r.watches, f.id)
	w.tomb.Kill(nil)
	<-w.done
	if w.own == nil {
		return // polling: nxadm's poller ends alone within watch.POLL_DURATION
	}
	// nxadm's goroutine drops its registration in the package's shared
	// inotify tracker when it sees the tomb dying. Until then the name must
	// stay ours: a new file given the same descriptor number would share
	// the old registration and lose its notifications.
	for i := 0; watch.Events(w.name) != nil; i++ {
		if i == 2000 {
			r.log.Warn("inotify watch not released, keeping its descriptor open", "path", f.path, "watch", w.name)
			return
		}
		time.Sleep(500 * time.Microsecond)
	}
	w.own.Close()
}

// existsWatch waits, through nxadm/tail's BlockUntilExists, for a literal
// source path to name a file.
type existsWatch struct {
	tomb tomb.Tomb
	done chan struct{}
	err  error // set before done is closed
}

// watchNew starts an existsWatch for each literal source path not followed
// while its directory exists, and stops those no longer needed.
// A BlockUntilExists that failed to register (its directory vanished, the
// inotify watch limit) leaves an entry in nxadm's shared tracker that would
// block the tracker if an event for that name came while nobody waits for
// it; such a path is watched again, once its directory exists, until one
// BlockUntilExists returns normally and removes the entry.
func (r *run) watchNew() {
	for path, w := range r.exists {
		select {
		case <-w.done:
			delete(r.exists, path)
			if w.err == nil {
				r.found[path] = true
			}
			if w.err != nil && !errors.Is(w.err, tomb.ErrDying) {
				r.stale[path] = true
				r.log.Debug("cannot wait for log file", "path", path, "err", w.err)
			}
		default:
		}
	}
	want := make(map[string]bool)
	for _, s := range r.t.sources {
		if isGlob(s.Path) {
			continue // globs: the directory watch
		}
		p := filepath.Clean(s.Path)
		if want[p] || !dirExists(filepath.Dir(p)) {
			continue
		}
		_, err := os.Stat(p)
		exists := !errors.Is(err, os.ErrNotExist)
		followed := r.primary(s.Name, s.Path) != nil
		if !exists || followed {
			delete(r.found, p)
		}
		// An existing file not followed yet is watched too, as it may have
		// been created since the last scan: BlockUntilExists returns at
		// once and wakes a scan. Once it did, a file that still cannot be
		// followed is left to the periodic rescan, not watched in a loop.
		want[p] = r.stale[p] || (!followed && !(exists && r.found[p]))
	}
	for p, w := range r.exists {
		if !want[p] {
			w.tomb.Kill(nil)
			<-w.done // BlockUntilExists removed its registration before returning
			delete(r.exists, p)
		}
	}
	for p, ok := range want {
		if !ok || r.exists[p] != nil {
			continue
		}
		delete(r.stale, p)
		w := &existsWatch{done: make(chan struct{})}
		r.exists[p] = w
		var fw watch.FileWatcher = watch.NewPollingFileWatcher(p)
		if r.inotify {
			fw = watch.NewInotifyFileWatcher(p)
		}
		go func() {
			defer close(w.done)
			// Only success wakes the loop: a failure retried at once
			// would spin; the next scan retries it.
			if w.err = fw.BlockUntilExists(&w.tomb); w.err == nil {
				notify(r.appeared)
			}
		}()
	}
}

// stopWatches stops every existsWatch and fileWatch; Run is returning.
func (r *run) stopWatches() {
	for p, w := range r.exists {
		w.tomb.Kill(nil)
		<-w.done
		delete(r.exists, p)
	}
	for _, f := range r.t.followers {
		r.unwatchFile(f)
	}
}

func dirExists(dir string) bool {
	fi, err := os.Stat(dir)
	return err == nil && fi.IsDir()
}

// notify sends on a channel of capacity one unless a send is pending.
func notify(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

package tailer

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// fileKey identifies a followed file: the same file matched by two sources
// is followed twice.
type fileKey struct {
	source string
	id     fileID
}

// run is the state of one call to Tailer.Run. Everything happens on the Run
// goroutine: files are read one after another into one buffer.
type run struct {
	t   *Tailer
	ctx context.Context
	out chan<- Line
	log *slog.Logger
	buf []byte

	inotify  bool
	watches  map[fileID]*fileWatch   // change notifications of followed files
	exists   map[string]*existsWatch // literal paths waited for
	stale    map[string]bool         // paths whose BlockUntilExists failed
	found    map[string]bool         // paths whose BlockUntilExists returned, not followed since
	wake     chan struct{}           // a followed file changed
	appeared chan struct{}           // a waited-for path names a file

	watcher *fsnotify.Watcher // directories of glob sources
	watched map[string]bool   // directories under watch
	waiting map[string]bool   // sources logged as waiting for a file
	retired map[fileKey]int64 // rotated files closed after their grace, still matched by a glob
	saved   map[string]Position
	gone    bool // a followed path disappeared since the last scan
}

func newRun(t *Tailer, ctx context.Context, out chan<- Line) *run {
	r := &run{
		t:        t,
		ctx:      ctx,
		out:      out,
		log:      t.log,
		buf:      make([]byte, max(t.opts.MaxLineLen+1, 64<<10)),
		watches:  make(map[fileID]*fileWatch),
		exists:   make(map[string]*existsWatch),
		stale:    make(map[string]bool),
		found:    make(map[string]bool),
		wake:     make(chan struct{}, 1),
		appeared: make(chan struct{}, 1),
		watched:  make(map[string]bool),
		waiting:  make(map[string]bool),
		retired:  make(map[fileKey]int64),
		saved:    make(map[string]Position),
	}
	t.mu.Lock()
	for _, p := range t.saved {
		r.saved[p.Path] = p
	}
	t.saved = nil
	t.mu.Unlock()
	return r
}

func (r *run) loop() error {
	var (
		events <-chan fsnotify.Event
		errs   <-chan error
		every  = r.t.opts.PollInterval
	)
	if !r.t.opts.Poll {
		// This watcher is also the probe for nxadm/tail's shared inotify
		// tracker, which exits the process if it cannot get an instance.
		w, err := fsnotify.NewWatcher()
		if err != nil {
			r.log.Warn("inotify unavailable, polling", "err", err, "interval", every)
		} else {
			r.watcher, r.inotify = w, true
			events, errs = w.Events, w.Errors
			every = r.t.safety
		}
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	rescan := time.NewTicker(r.t.opts.Rescan)
	defer rescan.Stop()

	r.scan(true)
	if r.t.opts.Started != nil {
		r.t.opts.Started()
	}
	for read := true; ; {
		if read {
			if err := r.pass(); err != nil {
				return nil // only a done ctx stops a pass
			}
		}
		read = true
		scan := false
		select {
		case <-r.ctx.Done():
			return nil
		case <-r.wake:
		case <-r.appeared:
			scan = true
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			scan = r.event(ev)
			read = scan // writes are announced by the files' own watches
		coalesce: // one pass for a burst of events
			for range 1024 {
				select {
				case ev, ok := <-events:
					if !ok {
						events = nil
						break coalesce
					}
					scan = r.event(ev) || scan
					read = read || scan
				default:
					break coalesce
				}
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			r.log.Debug("inotify error", "err", err)
			scan = true
		case <-tick.C:
			// Without inotify nothing announces a new file: look for the
			// files of sources that have none at every tick.
			scan = r.watcher == nil && (len(r.waiting) > 0 || r.gone)
		case <-rescan.C:
			scan = true
		case <-r.t.rescanReq:
			scan = true
		}
		if scan {
			r.scan(false)
		}
	}
}

// event notes a file system event and reports whether it calls for a rescan.
func (r *run) event(ev fsnotify.Event) bool {
	if (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) && r.watched[ev.Name] {
		delete(r.watched, ev.Name) // the kernel dropped the watch with the directory
	}
	return ev.Has(fsnotify.Create)
}

// close saves the positions of the files followed under their own path and
// closes every file and watch.
func (r *run) close() {
	if r.watcher != nil {
		r.watcher.Close()
	}
	r.stopWatches()
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	var saved []Position
	for _, f := range r.t.followers {
		if !f.rotated.Load() {
			saved = append(saved, f.position())
		}
		f.f.Close()
	}
	r.t.followers = nil
	r.t.saved = saved
}

// scan expands every source's glob and starts following new files.
func (r *run) scan(initial bool) {
	r.gone = false
	seen := make(map[fileKey]bool)
	for _, s := range r.t.sources {
		matches, _ := filepath.Glob(s.Path) // the pattern was checked by Run
		found := false
		for _, p := range matches {
			if _, ok := r.open(s.Name, p, initial, seen); ok {
				found = true
			}
		}
		switch {
		case !found && !r.waiting[s.Name]:
			r.waiting[s.Name] = true
			r.log.Info("waiting for log file", "source", s.Name, "path", s.Path)
		case found:
			delete(r.waiting, s.Name)
		}
	}
	for k := range r.retired {
		if !seen[k] {
			delete(r.retired, k)
		}
	}
	r.watchDirs()
	r.watchNew()
}

func (r *run) primary(source, path string) *follower {
	for _, f := range r.t.followers {
		if f.source == source && f.path == path && !f.rotated.Load() {
			return f
		}
	}
	return nil
}

// open starts following path for source unless it is followed already. It
// returns the new follower, if any, and whether the file at path is being
// followed. Every file key it sees is added to seen.
func (r *run) open(source, path string, initial bool, seen map[fileKey]bool) (*follower, bool) {
	if f := r.primary(source, path); f != nil {
		seen[f.key()] = true
		return nil, true
	}
	fd, err := os.Open(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.log.Warn("cannot open log file", "source", source, "path", path, "err", err)
		}
		return nil, false
	}
	fi, err := fd.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		fd.Close()
		return nil, false
	}
	f := &follower{source: source, path: path, id: fileIDOf(fi), f: fd, lastGrowth: time.Now()}
	k := f.key()
	seen[k] = true
	if i := slices.IndexFunc(r.t.followers, func(g *follower) bool { return g.key() == k }); i >= 0 {
		// A rotated file renamed to a name the glob matches, or back to its
		// own name: keep reading it where it is.
		fd.Close()
		if g := r.t.followers[i]; g.path == path {
			g.rotated.Store(false)
		}
		return nil, true
	}
	size := fi.Size()
	how := r.start(f, size, initial)
	f.size.Store(size)
	f.lastSize = size
	r.t.mu.Lock()
	r.t.followers = append(r.t.followers, f)
	r.t.mu.Unlock()
	r.watchFile(f)
	r.log.Info("following log file", "source", source, "path", path,
		"inode", f.id.ino, "offset", f.offset.Load(), "from", how)
	return f, true
}

// start sets where f begins and says why.
func (r *run) start(f *follower, size int64, initial bool) string {
	if off, ok := r.retired[f.key()]; ok {
		delete(r.retired, f.key())
		if off <= size {
			f.setOffset(off)
			return "rotated file position"
		}
	}
	p, ok := r.saved[f.path]
	if !ok && r.t.opts.Start != nil {
		p, ok = r.t.opts.Start(f.path)
	}
	switch {
	case ok && (p.Dev != f.id.dev || p.Inode != f.id.ino):
		f.setOffset(0)
		return "start, saved position is for another file"
	case ok && (p.Offset > size || p.Offset < 0):
		f.setOffset(0)
		return "start, file shorter than saved position"
	case ok && p.Offset > 0 && byteAt(f.f, p.Offset-1) != '\n':
		// Positions are taken at line starts: the inode was reused.
		f.setOffset(0)
		return "start, saved position is not at a line start"
	case ok:
		f.setOffset(p.Offset)
		return "saved position"
	case initial:
		off, skipping := tailStart(f.f, size, r.t.opts.MaxLineLen)
		f.setOffset(off)
		f.skipping = skipping
		return "end"
	default:
		f.setOffset(0)
		return "start"
	}
}

// pass reads every followed file, detects rotations and closes rotated
// files past their grace. It returns an error only when r.ctx is done.
func (r *run) pass() error {
	now := time.Now()
	r.t.mu.Lock()
	fs := slices.Clone(r.t.followers)
	r.t.mu.Unlock()
	for _, f := range fs {
		if err := r.read(f, now); err != nil {
			return err
		}
		if f.rotated.Load() {
			// An incomplete last line of a rotated file is dropped here.
			if now.Sub(f.lastGrowth) >= r.t.opts.RotatedGrace {
				r.retire(f)
			}
			continue
		}
		if err := r.checkPath(f, now); err != nil {
			return err
		}
	}
	return nil
}

// read drains f, logging read errors once until they clear.
func (r *run) read(f *follower, now time.Time) error {
	grew, err := r.drain(f)
	if grew {
		f.lastGrowth = now
	}
	switch {
	case err != nil && r.ctx.Err() != nil:
		return r.ctx.Err()
	case err != nil && !f.failing:
		f.failing = true
		r.log.Warn("cannot read log file", "source", f.source, "path", f.path, "err", err)
	case err == nil && f.failing:
		f.failing = false
		r.log.Info("log file readable again", "source", f.source, "path", f.path)
	}
	return nil
}

// checkPath detects that f's path names another file or none: f was rotated.
// Lines written to f before the rotation are read first; f stays open for
// late writers and the new file, if any, is followed from its beginning.
func (r *run) checkPath(f *follower, now time.Time) error {
	fi, err := os.Stat(f.path)
	switch {
	case err == nil && fileIDOf(fi) == f.id:
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil // cannot tell; keep following
	}
	if err := r.read(f, now); err != nil {
		return err
	}
	f.rotated.Store(true)
	f.lastGrowth = now
	r.t.rotations.Add(1)
	r.log.Info("log file rotated", "source", f.source, "path", f.path,
		"inode", f.id.ino, "offset", f.offset.Load(), "size", f.size.Load())
	if err != nil {
		r.gone = true // a later scan picks up a new file
		r.watchNew()
		return nil
	}
	if nf, _ := r.open(f.source, f.path, false, make(map[fileKey]bool)); nf != nil {
		return r.read(nf, now)
	}
	return nil
}

// retire closes a rotated file whose grace has passed. Its position is kept
// while a glob still matches it, so it is not read again from the start.
func (r *run) retire(f *follower) {
	if fi, err := f.f.Stat(); err == nil && links(fi) > 0 {
		r.retired[f.key()] = f.offset.Load()
	} // else removed: its inode may be reused by a new file
	r.unwatchFile(f)
	f.f.Close()
	r.t.mu.Lock()
	r.t.followers = slices.DeleteFunc(r.t.followers, func(g *follower) bool { return g == f })
	r.t.mu.Unlock()
	r.log.Debug("closed rotated log file", "source", f.source, "path", f.path,
		"inode", f.id.ino, "offset", f.offset.Load())
}

// watchDirs adds an inotify watch on the directory of each glob source not
// yet watched; missing directories are tried again at the next scan.
func (r *run) watchDirs() {
	if r.watcher == nil {
		return
	}
	for _, s := range r.t.sources {
		if !isGlob(s.Path) {
			continue // literal paths: watchNew
		}
		dirs := []string{filepath.Dir(s.Path)}
		if isGlob(dirs[0]) {
			dirs, _ = filepath.Glob(dirs[0])
		}
		for _, d := range dirs {
			if r.watched[d] {
				continue
			}
			if err := r.watcher.Add(d); err == nil {
				r.watched[d] = true
			}
		}
	}
}

func isGlob(path string) bool { return strings.ContainsAny(path, `*?[\`) }

package main

import (
	"context"
	"hash/fnv"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/band-project/band/bans"
	"github.com/band-project/band/config"
	"github.com/band-project/band/control"
	"github.com/band-project/band/firewall"
	"github.com/band-project/band/pipeline"
	"github.com/band-project/band/state"
	"github.com/band-project/band/tailer"
)

// openStore opens the state file. If it cannot be opened at all (a
// read-only or missing state directory), band runs without one rather than
// refuse to protect the server.
func openStore(log *slog.Logger, dir string) *state.Store {
	s, err := state.Open(log, dir)
	if err != nil {
		log.Error("no state file: bans and log positions will not survive a restart", "dir", dir, "err", err)
		return nil
	}
	return s
}

// repeatPolicy reads escalation and recidive jails from the configuration.
func repeatPolicy(cfg *config.Config) (bans.Escalation, []bans.Recidive, time.Duration) {
	var esc bans.Escalation
	if d := cfg.Defaults; d.BanTimeIncrement {
		esc = bans.Escalation{Factor: d.BanTimeFactor, Max: d.BanTimeMax.D(), Overall: d.BanTimeOverall}
	}
	var rec []bans.Recidive
	for _, name := range cfg.EnabledJails() {
		if j := cfg.Jails[name]; j.Kind == "recidive" {
			rec = append(rec, bans.Recidive{Name: name, MaxRetry: j.MaxRetry, FindTime: j.FindTime.D(), BanTime: j.BanTime.D()})
		}
	}
	return esc, rec, cfg.Daemon.HistoryMaxAge.D()
}

// restoreBans brings back the saved bans with their remaining time and
// makes the kernel hold every one (one transaction, which also refreshes
// timeouts), without a flush: there is no moment without protection. Then,
// in the background, bans the kernel holds that the state file missed (a
// crash between the kernel and the disk) are adopted into the book. Reading
// a large kernel set back is slow (the kernel's set dump is quadratic), so
// it does not hold up the start.
func restoreBans(ctx context.Context, log *slog.Logger, store *state.Store, book *bans.Book, backend firewall.Backend) {
	if store != nil {
		saved, err := store.Bans()
		if err != nil {
			log.Error("cannot read saved bans", "err", err)
		}
		hist, err := store.History()
		if err != nil {
			log.Error("cannot read ban history", "err", err)
		}
		if active := book.Restore(saved, hist); len(active) > 0 {
			now := time.Now()
			want := make([]firewall.Entry, 0, len(active))
			for _, b := range active {
				want = append(want, firewall.Entry{Prefix: b.Prefix, TTL: b.Expiry.Sub(now)})
			}
			if err := backend.Ban(ctx, want); err != nil {
				log.Error("restoring bans in the kernel", "count", len(want), "err", err)
			} else {
				log.Info("restored bans", "count", len(active))
			}
		}
	}
	go func() {
		held, err := backend.List(ctx)
		if err != nil {
			log.Warn("cannot read the bans the kernel holds", "err", err)
			return
		}
		if n := book.Adopt(held, "restored"); n > 0 {
			log.Info("kept bans found in the kernel but not in the state file", "count", n)
		}
	}()
}

// firstLineHash hashes a file's first line (at most 4 KiB), to tell a file
// that was replaced or truncated and rewritten from the one a position was
// saved for. 0 means the file is empty or unreadable.
func firstLineHash(path string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, _ := io.ReadFull(f, buf)
	buf = buf[:n]
	if i := strings.IndexByte(string(buf), '\n'); i >= 0 {
		buf = buf[:i]
	} else if n < len(buf) {
		return 0 // no complete first line yet
	}
	h := fnv.New64a()
	h.Write(buf)
	return h.Sum64() | 1
}

func fileID(path string) (dev, ino uint64, ok bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return uint64(st.Dev), st.Ino, true
}

// resumePositions turns saved positions into the tailer's start positions:
// the same file (device, inode and first line) resumes at its offset; a
// replaced one is read from its beginning.
func resumePositions(saved []state.Position) map[string]tailer.Position {
	out := make(map[string]tailer.Position, len(saved))
	for _, p := range saved {
		tp := tailer.Position{Path: p.Path, Dev: p.Dev, Inode: p.Inode, Offset: p.Offset}
		if dev, ino, ok := fileID(p.Path); ok && dev == p.Dev && ino == p.Inode &&
			p.FirstLine != 0 && firstLineHash(p.Path) != p.FirstLine {
			tp.Inode = 0 // same inode, other content: start over
		}
		out[p.Path] = tp
	}
	return out
}

// catchUpRotated finishes, before following the new files, each file that
// was rotated while band was stopped: the saved file is found by device and
// inode among the names rotation gives it (access.log.1, access.log-DATE …)
// and read from the saved offset to its end.
func (d *daemon) catchUpRotated(ctx context.Context, saved []state.Position) {
	for _, p := range saved {
		if dev, ino, ok := fileID(p.Path); ok && dev == p.Dev && ino == p.Inode {
			continue // not rotated
		}
		cands, _ := filepath.Glob(p.Path + "?*")
		for _, c := range cands {
			if strings.HasSuffix(c, ".gz") || strings.HasSuffix(c, ".bz2") || strings.HasSuffix(c, ".xz") || strings.HasSuffix(c, ".zst") {
				continue
			}
			if dev, ino, ok := fileID(c); !ok || dev != p.Dev || ino != p.Inode {
				continue
			}
			n, err := d.readFrom(ctx, p.Source, p.Path, c, p.Offset)
			if err != nil {
				d.log.Warn("cannot finish a rotated log", "path", c, "err", err)
			}
			d.log.Info("finished a log rotated while band was stopped", "source", p.Source, "path", c, "from", p.Offset, "lines", n)
			break
		}
	}
}

func (d *daemon) readFrom(ctx context.Context, source, label, path string, off int64) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	return d.pipe.Feed(ctx, source, label, f)
}

// checkpoint saves the position after the last line processed in each file,
// the detector's open windows and the counters, in one transaction.
func (d *daemon) checkpoint() {
	if d.store == nil {
		return
	}
	// An idle band writes nothing: no line, no change since the last one.
	if d.saved.Load() != 0 && d.linesSeen == d.linesSaved {
		return
	}
	d.mu.Lock()
	tail, cfg := d.tail, d.cfg
	d.mu.Unlock()
	var positions []state.Position
	if tail != nil {
		for _, p := range tail.Positions() {
			if p.Rotated {
				continue
			}
			off, ok := d.processed[p.Path]
			if !ok {
				off = p.Offset
			}
			positions = append(positions, state.Position{
				Source: sourceOf(cfg, p.Path), Path: p.Path, Dev: p.Dev, Inode: p.Inode, Offset: off,
				FirstLine: firstLineHash(p.Path),
			})
		}
	}
	var windows []state.Window
	for _, w := range d.pipe.Windows(time.Now()) {
		windows = append(windows, state.Window{Jail: w.Jail, Addr: w.Addr.String(), Sub: w.Sub, Times: w.Times})
	}
	err := d.store.SaveCheckpoint(state.Checkpoint{Positions: positions, Windows: windows, Counters: d.pipe.Counters()})
	if err != nil && d.checkpointErr == nil {
		d.log.Error("cannot save log positions; lines may be read again after a restart", "err", err)
	}
	d.checkpointErr = err
	if err == nil {
		d.saved.Store(time.Now().UnixNano())
		d.linesSaved = d.linesSeen
	}
}

// stateInfo describes the state file for the status.
func (d *daemon) stateInfo() control.StateInfo {
	if d.store == nil {
		return control.StateInfo{Error: "no state file: bans and positions do not survive a restart"}
	}
	si := control.StateInfo{Path: d.store.Path()}
	if n := d.saved.Load(); n != 0 {
		si.Saved = time.Unix(0, n)
	}
	if err := d.store.Err(); err != nil {
		si.Error = err.Error()
	}
	return si
}

// restoreCheckpoint puts saved counters and windows back and returns the
// saved positions.
func (d *daemon) restoreCheckpoint() []state.Position {
	if d.store == nil {
		return nil
	}
	cp, err := d.store.Checkpoint()
	if err != nil {
		d.log.Error("cannot read the saved checkpoint; logs start at their end", "err", err)
		return nil
	}
	d.pipe.RestoreCounters(cp.Counters)
	var ws []pipeline.Window
	for _, w := range cp.Windows {
		a, err := netip.ParseAddr(w.Addr)
		if err != nil {
			continue
		}
		ws = append(ws, pipeline.Window{Jail: w.Jail, Addr: a, Sub: w.Sub, Times: w.Times})
	}
	d.pipe.RestoreWindows(ws)
	return cp.Positions
}

func sourceOf(cfg *config.Config, path string) string {
	for _, s := range cfg.Sources {
		if s.Path == path {
			return s.Name
		}
		if ok, _ := filepath.Match(s.Path, path); ok {
			return s.Name
		}
	}
	return ""
}

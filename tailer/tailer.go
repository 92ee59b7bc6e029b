// Package tailer follows Apache log files across rotation and delivers their
// complete lines, each with the byte offset just after it, for checkpointing.
//
// A Tailer follows a set of sources, each a path or a glob. Files present
// when Run starts are read from their end (history is not replayed) unless a
// saved Position says otherwise; files that appear later, including the new
// file after a rotation, are read from their beginning.
//
// Rotation handling:
//
//   - rename + create (logrotate "create"): the tailer holds the old file open.
//     When the path names a different file (device+inode), it first reads the
//     old file to its end, then starts the new one from offset 0, and keeps
//     reading the old file for Options.RotatedGrace after its last growth, so
//     lines a writer (Apache before its graceful restart) still appends to
//     the renamed file are delivered too.
//   - copytruncate: a file whose size drops below the read offset, or whose
//     byte before the read offset is no longer the newline that ended the last
//     line read, was truncated; the tailer restarts it at offset 0.
//
// Residual races and limits:
//
//   - copytruncate: lines appended after the tailer's last read and before
//     the truncation are lost (logrotate's own window: its copy misses lines
//     written after the copy too). Under inotify that window is the time
//     between a write and its read.
//   - copytruncate: if the file regrows past the old offset before the
//     tailer looks and by chance has a newline just before that offset, the
//     truncation goes unnoticed and the new lines before the offset are lost.
//   - Two rotations between two looks at a path (within one poll interval)
//     skip the middle file unless the glob also matches rotated names.
//   - A rotated file is closed RotatedGrace after it last grew: later
//     writes to it, and an incomplete last line, are not delivered.
//   - Only files under their own path keep their position across a restart
//     (Positions, Options.Start): lines written to a file after the last
//     checkpoint and before it was rotated while band was down are lost.
//   - A saved position is trusted when device, inode, size and the newline
//     before the offset agree; a new file reusing a deleted file's inode
//     could pass that check.
//
// What comes from github.com/nxadm/tail (v1.4.11) and what is band's own:
//
//   - Change notifications are nxadm/tail's watch package. Each followed
//     file (device+inode) has a watch.FileWatcher whose ChangeEvents
//     (Modified, Truncated, Deleted) wake the reader. Under inotify it is an
//     InotifyFileWatcher on a /proc/self/fd link to a second descriptor of
//     the file: nxadm keys its process-wide inotify tracker by name, so a
//     name only the tailer uses cannot share a registration with another
//     file (the next file at the same path, another Tailer), and the watch
//     stays on the file after a rename or unlink, announcing late writes to
//     a rotated file; after Deleted (a rename) it is started again. With
//     Options.Poll it is a PollingFileWatcher on the path, which polls every
//     watch.POLL_DURATION (250ms, a process global band leaves alone) and
//     ends at the first rename or removal. A literal source path that names
//     no file is waited for with the same watcher's BlockUntilExists.
//   - The reading is band's own: each wake-up drains every followed file
//     with ReadAt into one buffer, checks the path's device+inode and the
//     byte before the offset, and handles rotation and truncation as above.
//     nxadm/tail's Tail reopens a renamed file without draining the old
//     descriptor, so lines written to it between its last read and the
//     rename are lost (see TestNxadmTailRenameProbe); it detects truncation
//     only when the size falls below its last stat, and accumulates a line
//     of any length in memory.
//   - New files of glob sources come from an fsnotify watch on their
//     directories (Create events): nxadm's watchers only follow one named
//     file (BlockUntilExists matches one exact name). That fsnotify
//     instance is created first and also probes inotify: nxadm's tracker
//     exits the process if it cannot create its own, so without inotify
//     the tailer polls instead of calling it.
//   - A tick stays as a safety net for lost notifications (queue overflow,
//     a watch limit reached; nxadm logs these to stderr itself): every
//     second under inotify, every Options.PollInterval when polling, and
//     globs are expanded again every Options.Rescan.
//
// Limits of nxadm/tail/watch that remain: on a stat error other than "does
// not exist" for a watched name its goroutines call util.Fatal, which exits
// the process (the name is a descriptor link under inotify, so only a
// failing stat of an open file); when it stops, nxadm's goroutine drops its
// registration asynchronously, so the tailer waits for watch.Events to
// forget the name before it closes the descriptor the name points to; a
// polling goroutine ends up to POLL_DURATION after the tailer stops; two
// descriptors of one inode share one kernel watch, so a file matched by two
// sources is watched once; a BlockUntilExists that fails to register leaves
// an entry in the tracker, which is cleared by watching that path again.
// watch.Cleanup is not called: the ChangeEvents goroutine removes its own
// registration, and a second removal would leave the name's count at -1,
// so that the next watch under that name would never reach the kernel.
package tailer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for zero Options fields.
const (
	DefaultRescan       = 10 * time.Second
	DefaultPollInterval = 250 * time.Millisecond
	DefaultRotatedGrace = time.Minute
	DefaultMaxLineLen   = 64 << 10
)

// safetyTick is how often files are checked when inotify is in use, in case
// an event was missed (queue overflow, a rotated file moved to another
// directory, a file system without inotify support).
const safetyTick = time.Second

// Source is a named log file path or glob (filepath.Match syntax).
type Source struct {
	Name string
	Path string
}

// Line is one complete line of a followed file.
type Line struct {
	Source string // Source.Name that matched the file
	File   string // path the file was followed under (its name before any rotation)
	Text   []byte // line without its trailing "\n" or "\r\n"; owned by the receiver
	Offset int64  // byte offset just after the line's newline in the file
}

// Position is a file's identity and the offset reading resumes at.
type Position struct {
	Path   string
	Dev    uint64
	Inode  uint64
	Offset int64 // after the last complete line delivered (or skipped)
	Size   int64 // file size at the last check; Size-Offset is the lag
	// Rotated reports that Path no longer names this file: it is being
	// drained after a rotation. Checkpoints should skip rotated positions.
	Rotated bool
}

// Stats are counters since New.
type Stats struct {
	Lines       uint64 // lines delivered
	LongLines   uint64 // lines longer than MaxLineLen, skipped
	Rotations   uint64 // files replaced or removed under their path
	Truncations uint64 // files truncated in place (copytruncate)
}

// Options configure a Tailer. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// Rescan is how often source globs are expanded again to find new files.
	// Under inotify, creations in a glob's directory trigger a rescan at
	// once; a missing literal path is waited for by nxadm/tail's
	// BlockUntilExists (under Poll, checked every watch.POLL_DURATION);
	// when polling, sources without any file are also looked for at every
	// poll.
	Rescan time.Duration
	// Poll disables inotify: nxadm/tail's polling watcher checks each file
	// under its path every watch.POLL_DURATION (250ms), and every file is
	// read at least every PollInterval.
	Poll         bool
	PollInterval time.Duration
	// Start, if set, gives a saved position for a file seen for the first
	// time. If Dev and Inode match the file, reading starts at Offset; it
	// starts at 0 if Offset is past the end (the file was truncated) or not
	// just after a newline (the inode was reused), and if Dev and Inode do
	// not match (a new file). Without a position, files present when Run
	// starts are read from their end and later ones from their beginning.
	Start func(path string) (Position, bool)
	// MaxLineLen is the longest line delivered; longer lines are skipped and
	// counted in Stats.LongLines.
	MaxLineLen int
	// RotatedGrace is how long a rotated file is still read after it last grew.
	RotatedGrace time.Duration
	// Started, if set, is called once per Run after the first look at every
	// source: the files present then are open, at their start positions, so
	// whatever is written from now on will be read.
	Started func()
}

// Tailer follows the files of a set of sources. Its methods are safe for
// concurrent use; Run may be called again after it returns, and resumes each
// file where the previous Run stopped if it is still the same file.
type Tailer struct {
	sources []Source
	opts    Options
	log     *slog.Logger

	rescanReq chan struct{}
	running   atomic.Bool
	safety    time.Duration // safetyTick; longer in tests proving the notifications alone suffice

	mu        sync.Mutex
	followers []*follower // written by Run under mu
	saved     []Position  // positions when the last Run returned

	lines, longLines, rotations, truncations atomic.Uint64
}

// New returns a Tailer for sources. Nothing is opened before Run.
func New(sources []Source, opts Options) *Tailer {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Rescan <= 0 {
		opts.Rescan = DefaultRescan
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.MaxLineLen <= 0 {
		opts.MaxLineLen = DefaultMaxLineLen
	}
	if opts.RotatedGrace <= 0 {
		opts.RotatedGrace = DefaultRotatedGrace
	}
	return &Tailer{
		sources:   append([]Source(nil), sources...),
		opts:      opts,
		log:       opts.Logger.With("component", "tailer"),
		rescanReq: make(chan struct{}, 1),
		safety:    safetyTick,
	}
}

// ErrRunning is returned by Run when the Tailer is already running.
var ErrRunning = errors.New("tailer already running")

// Run follows the sources and sends their lines to out until ctx is done,
// then closes its files and returns nil. It does not close out. An error is
// returned only if the Tailer cannot start: a bad glob or a Run in progress.
// Unreadable files are logged and retried, never fatal.
func (t *Tailer) Run(ctx context.Context, out chan<- Line) error {
	for _, s := range t.sources {
		if _, err := filepath.Match(s.Path, ""); err != nil {
			return fmt.Errorf("source %s: pattern %q: %w", s.Name, s.Path, err)
		}
	}
	if !t.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer t.running.Store(false)

	r := newRun(t, ctx, out)
	defer r.close()
	return r.loop()
}

// Rescan asks a running Tailer to expand its globs and check every file now,
// without waiting for the next tick. It does not block.
func (t *Tailer) Rescan() {
	select {
	case t.rescanReq <- struct{}{}:
	default:
	}
}

// Positions returns the position of every open file, or, when Run is not
// running, the positions at which the last Run stopped.
func (t *Tailer) Positions() []Position {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.followers) == 0 {
		return append([]Position(nil), t.saved...)
	}
	ps := make([]Position, 0, len(t.followers))
	for _, f := range t.followers {
		ps = append(ps, f.position())
	}
	return ps
}

// Stats returns counters since New.
func (t *Tailer) Stats() Stats {
	return Stats{
		Lines:       t.lines.Load(),
		LongLines:   t.longLines.Load(),
		Rotations:   t.rotations.Load(),
		Truncations: t.truncations.Load(),
	}
}

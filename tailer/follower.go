package tailer

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// follower reads one file (one device+inode) through a descriptor it holds
// open, so the file can still be read after it is renamed or unlinked.
// Fields without atomics belong to the Run goroutine.
type follower struct {
	source string
	path   string
	id     fileID
	f      *os.File

	offset  atomic.Int64 // just after the last complete line handled
	size    atomic.Int64
	rotated atomic.Bool

	scan       int64     // next byte to read; past offset only while skipping a long line
	skipping   bool      // inside a line longer than the maximum
	boundary   bool      // the byte before offset is known to be '\n' (or offset is 0)
	checked    int64     // size when the boundary was last checked
	lastSize   int64     // size at the last read, to tell growth
	lastGrowth time.Time // when lastSize last changed
	failing    bool      // a read error was logged and not yet cleared
	warnedLong bool
}

func (f *follower) key() fileKey { return fileKey{f.source, f.id} }

func (f *follower) position() Position {
	return Position{
		Path:    f.path,
		Dev:     f.id.dev,
		Inode:   f.id.ino,
		Offset:  f.offset.Load(),
		Size:    f.size.Load(),
		Rotated: f.rotated.Load(),
	}
}

// setOffset moves both the committed offset and the read position to off.
func (f *follower) setOffset(off int64) {
	f.offset.Store(off)
	f.scan = off
	f.skipping = false
	f.boundary = off == 0 || byteAt(f.f, off-1) == '\n'
	f.checked = -1
}

// byteAt returns the byte at off, or 0 if it cannot be read.
func byteAt(f *os.File, off int64) byte {
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return 0
	}
	return b[0]
}

// rewritten reports whether the file was truncated and rewritten past our
// offset since the last check: the byte before offset was a newline and is
// not any more.
func (f *follower) rewritten(size int64) bool {
	off := f.offset.Load()
	if !f.boundary || off == 0 || size < off || size == f.checked {
		return false
	}
	f.checked = size
	return byteAt(f.f, off-1) != '\n'
}

// tailStart returns where to start reading a file first seen at start-up:
// at its end, backed up to the start of an incomplete last line so that line
// is delivered once complete. If the last line is already longer than max,
// it starts at the end and skips the rest of that line.
func tailStart(f *os.File, size int64, max int) (off int64, skipping bool) {
	if size == 0 {
		return 0, false
	}
	n := min(size, int64(max)+1)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil && err != io.EOF {
		return size, false
	}
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		return size - n + int64(i) + 1, false
	}
	if n == size && size <= int64(max) {
		return 0, false // one incomplete line: deliver it when complete
	}
	return size, true
}

// drain sends every complete line of f available now to r.out and reports
// whether f changed size since the last drain. It returns an error for read failures and when r.ctx is
// done during a send.
func (r *run) drain(f *follower) (grew bool, err error) {
	fi, err := f.f.Stat()
	if err != nil {
		return false, fmt.Errorf("checking %s: %w", f.path, err)
	}
	size := fi.Size()
	f.size.Store(size)
	grew = size != f.lastSize
	f.lastSize = size
	if size < f.scan || f.rewritten(size) {
		r.t.truncations.Add(1)
		r.log.Info("log file truncated", "source", f.source, "path", f.path,
			"offset", f.offset.Load(), "size", size)
		f.setOffset(0)
	}
	max := r.t.opts.MaxLineLen
	for f.scan < size {
		base := f.scan
		n, rerr := f.f.ReadAt(r.buf, base)
		if n == 0 {
			if rerr != nil && rerr != io.EOF {
				return grew, fmt.Errorf("reading %s at %d: %w", f.path, base, rerr)
			}
			break
		}
		data := r.buf[:n]
		start := 0
		for {
			i := bytes.IndexByte(data[start:], '\n')
			if i < 0 {
				break
			}
			end := start + i
			next := base + int64(end) + 1
			lineStart := base + int64(start)
			line := data[start:end]
			start = end + 1
			if k := len(line); k > 0 && line[k-1] == '\r' {
				line = line[:k-1]
			}
			switch {
			case f.skipping:
				f.skipping = false // the end of a long line already counted
			case len(line) > max:
				r.longLine(f, lineStart, len(line))
			default:
				l := Line{Source: f.source, File: f.path, Text: bytes.Clone(line), Offset: next}
				select {
				case r.out <- l:
				case <-r.ctx.Done():
					return grew, r.ctx.Err()
				}
				r.t.lines.Add(1)
			}
			f.scan = next
			f.offset.Store(next)
			f.boundary = true
		}
		if rest := n - start; f.skipping || rest > max {
			if !f.skipping {
				f.skipping = true
				r.longLine(f, base+int64(start), rest)
			}
			f.scan = base + int64(n) // skip what was read; offset stays at the line start
		}
		if n < len(r.buf) {
			break // end of file, possibly after an incomplete line read again next time
		}
	}
	if off := f.offset.Load(); off > size {
		f.size.Store(off) // grew since the stat
	}
	return grew, nil
}

func (r *run) longLine(f *follower, off int64, n int) {
	r.t.longLines.Add(1)
	lvl := "skipping long line"
	if !f.warnedLong {
		f.warnedLong = true
		r.log.Warn(lvl, "source", f.source, "path", f.path, "offset", off,
			"len_at_least", n, "max", r.t.opts.MaxLineLen)
		return
	}
	r.log.Debug(lvl, "source", f.source, "path", f.path, "offset", off, "len_at_least", n)
}

package detector

import (
	"time"

	"github.com/band-project/band/rules"
)

// Distinct remembers which values (hashes of a field, such as the path) each
// key had counted within a window, so that a jail with distinct = "path"
// counts each missing path once per client: one client asking for twenty
// different missing pages is a scan, one asking twenty times for the same
// missing favicon is not.
//
// Memory is bounded: at most max (key, value) pairs are kept. When full,
// pairs whose window has passed are swept; if that frees too little, an
// arbitrary half is dropped, which can only let a repeated value count once
// more (never hide a new one). Distinct is not safe for concurrent use.
type Distinct struct {
	span   int64
	max    int
	newest int64
	seen   map[distinctKey]int64 // (key, value) → time it was counted
}

type distinctKey struct {
	key   rules.Key
	value uint64
}

// NewDistinct returns a set remembering values for window, holding at most
// max pairs (100000 when max <= 0).
func NewDistinct(window time.Duration, max int) *Distinct {
	if max <= 0 {
		max = 100000
	}
	return &Distinct{span: int64(window), max: max, seen: make(map[distinctKey]int64)}
}

// First reports whether value is new for key at t: not counted for it
// within the window around t. A new value is recorded as counted at t.
// Times may go backwards a little (Apache writes a request at its end but
// stamps its start): a value counted at a later time within the window is
// still a repeat.
func (d *Distinct) First(key rules.Key, value uint64, t time.Time) bool {
	now := t.UnixNano()
	if now > d.newest {
		d.newest = now
	}
	k := distinctKey{key, value}
	if at, ok := d.seen[k]; ok {
		if now-at < d.span && at-now < d.span {
			return false
		}
		if now > at {
			d.seen[k] = now
		}
		return true
	}
	if len(d.seen) >= d.max {
		d.shrink()
	}
	d.seen[k] = now
	return true
}

// shrink sweeps pairs whose window has passed and, if fewer than half were
// stale, drops others until half the cap is free.
func (d *Distinct) shrink() {
	d.Expire(time.Unix(0, d.newest))
	for k := range d.seen {
		if len(d.seen) <= d.max/2 {
			break
		}
		delete(d.seen, k)
	}
}

// Expire drops pairs counted a window or more before now.
func (d *Distinct) Expire(now time.Time) {
	cut := now.UnixNano() - d.span
	for k, at := range d.seen {
		if at <= cut {
			delete(d.seen, k)
		}
	}
}

// Len returns how many (key, value) pairs are remembered.
func (d *Distinct) Len() int { return len(d.seen) }

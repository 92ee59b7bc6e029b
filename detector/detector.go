// Package detector counts hits per (jail, key) on true sliding windows driven
// by the lines' own times, with memory bounded by a cap on tracked keys, and
// reports offences. It never reads the clock and never calls the firewall.
package detector

import (
	"time"

	"github.com/band-project/band/rules"
)

// Offence is a key that reached its jail's limit within the jail's window.
type Offence struct {
	Jail  *rules.Jail
	Key   rules.Key
	Time  time.Time // time of the tipping hit
	Count int       // hits within the window, the tipping one included
}

// Stats describes one jail's tracker.
type Stats struct {
	Keys      int    // keys tracked now
	Hits      uint64 // hits counted
	Offences  uint64
	Evictions uint64 // keys dropped to respect the cap
}

// Detector holds one tracker per jail. It is not safe for concurrent use;
// the daemon feeds it from one goroutine.
type Detector struct {
	maxKeys  int
	trackers map[string]*tracker
}

// New returns a detector tracking at most maxKeys keys per jail (100000 when
// maxKeys <= 0).
func New(maxKeys int) *Detector {
	if maxKeys <= 0 {
		maxKeys = 100000
	}
	return &Detector{maxKeys: maxKeys, trackers: make(map[string]*tracker)}
}

// Hit counts one hit of key for jail j at time t (the line's time). It
// returns an Offence when the hits within the window reach j.Limit; the
// key's window then starts afresh so the same hits are not reported twice.
func (d *Detector) Hit(j *rules.Jail, key rules.Key, t time.Time) (Offence, bool) {
	tr := d.trackers[j.Name]
	if tr == nil || tr.limit != j.Limit || tr.span != int64(j.FindTime) {
		tr = d.retune(j, tr)
	}
	n, tripped := tr.hit(key, t.UnixNano())
	if !tripped {
		return Offence{}, false
	}
	return Offence{Jail: j, Key: key, Time: t, Count: n}, true
}

// retune creates a jail's tracker, or adapts it to new limits after a
// reload, keeping the hits already counted.
func (d *Detector) retune(j *rules.Jail, old *tracker) *tracker {
	tr := newTracker(j.Limit, j.FindTime, d.maxKeys)
	if old != nil {
		tr.stats = old.stats
		for i := old.tail; i >= 0; i = old.entries[i].prev {
			e := &old.entries[i]
			for k := 0; k < e.n; k++ {
				tr.hit(e.key, e.at(k))
			}
		}
	}
	d.trackers[j.Name] = tr
	return tr
}

// Retain drops the trackers of jails not in keep (after a reload removed
// them).
func (d *Detector) Retain(keep []*rules.Jail) {
	live := make(map[string]bool, len(keep))
	for _, j := range keep {
		live[j.Name] = true
	}
	for name := range d.trackers {
		if !live[name] {
			delete(d.trackers, name)
		}
	}
}

// Forget drops a key's hits in every jail (after a manual unban, say).
func (d *Detector) Forget(key rules.Key) {
	for _, tr := range d.trackers {
		tr.remove(key)
	}
}

// Expire drops keys whose newest hit is older than their jail's window at
// now; they can no longer contribute to an offence.
func (d *Detector) Expire(now time.Time) {
	for _, tr := range d.trackers {
		tr.expire(now.UnixNano())
	}
}

// Stats returns each jail's tracker statistics by jail name.
func (d *Detector) Stats() map[string]Stats {
	out := make(map[string]Stats, len(d.trackers))
	for name, tr := range d.trackers {
		s := tr.stats
		s.Keys = len(tr.index)
		out[name] = s
	}
	return out
}

// Count returns the hits of key within jail j's window ending at t.
func (d *Detector) Count(j *rules.Jail, key rules.Key, t time.Time) int {
	tr := d.trackers[j.Name]
	if tr == nil {
		return 0
	}
	i, ok := tr.index[key]
	if !ok {
		return 0
	}
	e := &tr.entries[i]
	n := 0
	for k := 0; k < e.n; k++ {
		if at := e.at(k); at > t.UnixNano()-int64(tr.span) && at <= t.UnixNano() {
			n++
		}
	}
	return n
}

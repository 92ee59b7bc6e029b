package detector

import (
	"time"

	"github.com/band-project/band/rules"
)

// Window is one key's hits within its jail's window, as saved across a
// restart.
type Window struct {
	Jail  string
	Key   rules.Key
	Times []int64 // unix nanoseconds, oldest first
}

// Snapshot returns the open windows of the jails keep accepts, stalest key
// first, dropping hits that left the window at now.
func (d *Detector) Snapshot(now time.Time, keep func(jail string) bool) []Window {
	var out []Window
	for name, tr := range d.trackers {
		if keep != nil && !keep(name) {
			continue
		}
		cutoff := now.UnixNano() - tr.span
		for i := tr.tail; i >= 0; i = tr.entries[i].prev {
			e := &tr.entries[i]
			var times []int64
			for k := 0; k < e.n; k++ {
				if t := e.at(k); t > cutoff {
					times = append(times, t)
				}
			}
			if len(times) > 0 {
				out = append(out, Window{Jail: name, Key: e.key, Times: times})
			}
		}
	}
	return out
}

// Restore puts saved hits back into jail j's window for key, so that a
// restart gives no offender a fresh budget. Hits that would reach the limit
// do not trip: they were counted before the stop.
func (d *Detector) Restore(j *rules.Jail, key rules.Key, times []int64) {
	tr := d.trackers[j.Name]
	if tr == nil || tr.limit != j.Limit || tr.span != int64(j.FindTime) {
		tr = d.retune(j, tr)
	}
	hits := tr.stats.Hits
	for _, t := range times {
		tr.hit(key, t)
	}
	tr.stats.Hits = hits
}

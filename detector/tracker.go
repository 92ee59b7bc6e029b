package detector

import (
	"time"

	"github.com/band-project/band/rules"
)

// tracker is one jail's windows: per key, the times of its hits within the
// window (a ring of at most limit times, so the count is exact), and an LRU
// list over keys so the stalest is evicted when the cap is reached.
//
// Entries live in one slice, linked by index, so tracking a key allocates
// nothing once the slice has grown; a ring grows by doubling up to limit.
type tracker struct {
	limit   int
	span    int64 // window in nanoseconds
	maxKeys int

	index   map[rules.Key]int32
	entries []entry
	free    []int32
	head    int32 // most recently hit
	tail    int32 // least recently hit
	stats   Stats
}

type entry struct {
	key        rules.Key
	last       int64 // newest hit
	moved      int64 // time of the hit that last moved it to the list's head
	ts         []int64
	start, n   int // ring (a power of two long): oldest at ts[start], n times
	prev, next int32
}

func (e *entry) at(k int) int64 { return e.ts[(e.start+k)&(len(e.ts)-1)] }

func newTracker(limit int, span time.Duration, maxKeys int) *tracker {
	return &tracker{
		limit:   limit,
		span:    int64(span),
		maxKeys: maxKeys,
		index:   make(map[rules.Key]int32),
		head:    -1,
		tail:    -1,
	}
}

// hit records a hit at t and reports the count within the window and whether
// it reached the limit (in which case the key's window is cleared).
func (tr *tracker) hit(key rules.Key, t int64) (int, bool) {
	tr.stats.Hits++
	i, ok := tr.index[key]
	if !ok {
		i = tr.alloc(key)
		tr.pushFront(i)
		tr.entries[i].moved = t
	} else if e := &tr.entries[i]; t-e.moved > tr.span/8 {
		// Moving a key to the head on every hit costs more than the hit;
		// within an eighth of the window the order is close enough for
		// choosing the stalest key.
		tr.unlink(i)
		tr.pushFront(i)
		e.moved = t
	}
	e := &tr.entries[i]
	if t > e.last {
		e.last = t
	}
	// Drop hits that left the window. A line may carry a time a little
	// earlier than the one before it (Apache stamps a request's start but
	// writes it at its end), so the window ends at the newest time seen.
	cutoff := e.last - tr.span
	for e.n > 0 && e.ts[e.start] <= cutoff {
		e.start = (e.start + 1) & (len(e.ts) - 1)
		e.n--
	}
	if t <= cutoff {
		return e.n, false // too old to count
	}
	if e.n == len(e.ts) {
		e.grow(tr.limit)
	}
	if e.n >= tr.limit { // full at limit: the oldest gives way
		e.start = (e.start + 1) & (len(e.ts) - 1)
		e.n--
	}
	// Keep the ring in time order, a late time slotted behind newer ones,
	// so that the window's oldest hit is always the first to leave it.
	k := e.n
	for ; k > 0 && e.at(k-1) > t; k-- {
		e.ts[(e.start+k)&(len(e.ts)-1)] = e.at(k - 1)
	}
	e.ts[(e.start+k)&(len(e.ts)-1)] = t
	e.n++
	if e.n >= tr.limit {
		n := e.n
		e.n, e.start = 0, 0
		tr.stats.Offences++
		return n, true
	}
	return e.n, false
}

// grow doubles the ring, up to the power of two that holds limit times,
// keeping the times in order.
func (e *entry) grow(limit int) {
	if len(e.ts) >= limit {
		return
	}
	size := 2 * len(e.ts)
	if size < 4 {
		size = 4
	}
	ts := make([]int64, size)
	for k := 0; k < e.n; k++ {
		ts[k] = e.at(k)
	}
	e.ts, e.start = ts, 0
}

func (tr *tracker) alloc(key rules.Key) int32 {
	if len(tr.index) >= tr.maxKeys && tr.tail >= 0 {
		tr.stats.Evictions++
		tr.remove(tr.entries[tr.tail].key)
	}
	var i int32
	if n := len(tr.free); n > 0 {
		i = tr.free[n-1]
		tr.free = tr.free[:n-1]
	} else {
		tr.entries = append(tr.entries, entry{})
		i = int32(len(tr.entries) - 1)
	}
	e := &tr.entries[i]
	e.key, e.last, e.start, e.n = key, 0, 0, 0
	tr.index[key] = i
	return i
}

func (tr *tracker) remove(key rules.Key) {
	i, ok := tr.index[key]
	if !ok {
		return
	}
	tr.unlink(i)
	delete(tr.index, key)
	tr.free = append(tr.free, i)
}

func (tr *tracker) unlink(i int32) {
	e := &tr.entries[i]
	if e.prev >= 0 {
		tr.entries[e.prev].next = e.next
	} else {
		tr.head = e.next
	}
	if e.next >= 0 {
		tr.entries[e.next].prev = e.prev
	} else {
		tr.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (tr *tracker) pushFront(i int32) {
	e := &tr.entries[i]
	e.prev, e.next = -1, tr.head
	if tr.head >= 0 {
		tr.entries[tr.head].prev = i
	}
	tr.head = i
	if tr.tail < 0 {
		tr.tail = i
	}
}

// expire removes, stalest first, keys whose newest hit left the window.
func (tr *tracker) expire(now int64) {
	for tr.tail >= 0 {
		e := &tr.entries[tr.tail]
		if e.last > now-tr.span {
			return
		}
		tr.remove(e.key)
	}
}

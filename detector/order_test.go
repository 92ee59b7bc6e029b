package detector

import (
	"net/netip"
	"testing"
	"time"

	"github.com/band-project/band/rules"
)

// TestLateLinesCountOnce feeds hits whose times go backwards, as Apache
// writes them (a request is stamped when it starts and written when it
// ends), and checks that every hit inside the window ending at the newest
// time counts exactly once and no hit outside it counts.
func TestLateLinesCountOnce(t *testing.T) {
	s := time.Second
	tests := []struct {
		name   string
		limit  int
		offs   []time.Duration // hit times, in the order written
		tripAt int             // index of the hit that must trip, -1 for none
		count  int             // the offence's count
	}{
		{"in order", 3, []time.Duration{0, 1 * s, 2 * s}, 2, 3},
		{"a late line inside the window counts", 3, []time.Duration{5 * s, 2 * s, 6 * s}, 2, 3},
		{"a late line older than the window does not count", 3, []time.Duration{20 * s, 5 * s, 21 * s}, -1, 0},
		// 95 is written after 100; when 107 arrives the window is (97, 107]:
		// 95 has left it even though it sits behind 100 in writing order.
		{"a late line leaves the window in time order", 3, []time.Duration{100 * s, 95 * s, 107 * s}, -1, 0},
		{"late line expires before earlier-written ones", 3, []time.Duration{100 * s, 95 * s, 107 * s, 108 * s}, 3, 3},
		{"the same instant twice counts twice", 2, []time.Duration{4 * s, 4 * s}, 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := &rules.Jail{Name: "j", Limit: tc.limit, FindTime: 10 * time.Second}
			d := New(0)
			k := rules.Key{Addr: netip.MustParseAddr("198.51.100.7")}
			got, count := -1, 0
			for i, off := range tc.offs {
				if o, ok := d.Hit(j, k, t0.Add(off)); ok {
					if got >= 0 {
						t.Fatalf("tripped twice, at hits %d and %d", got, i)
					}
					got, count = i, o.Count
				}
			}
			if got != tc.tripAt || count != tc.count {
				t.Errorf("tripped at hit %d with count %d, want hit %d with count %d", got, count, tc.tripAt, tc.count)
			}
		})
	}
}

func TestDistinctCountsEachValueOncePerWindow(t *testing.T) {
	k := rules.Key{Addr: netip.MustParseAddr("198.51.100.7")}
	other := rules.Key{Addr: netip.MustParseAddr("198.51.100.8")}
	d := NewDistinct(time.Minute, 0)
	steps := []struct {
		key   rules.Key
		value uint64
		at    time.Duration
		want  bool
	}{
		{k, 1, 0, true},
		{k, 1, 10 * time.Second, false},     // repeat within the window
		{k, 2, 10 * time.Second, true},      // another value
		{other, 1, 10 * time.Second, true},  // another client
		{k, 3, 30 * time.Second, true},      //
		{k, 3, 20 * time.Second, false},     // written late, still a repeat
		{k, 1, 60 * time.Second, true},      // the first count has left the window
		{k, 1, 90 * time.Second, false},     // counted again at 60s
		{k, 4, -30 * time.Second, true},     // a new value, however late
		{other, 1, 200 * time.Second, true}, //
	}
	for i, st := range steps {
		if got := d.First(st.key, st.value, t0.Add(st.at)); got != st.want {
			t.Errorf("step %d: First(%v, %d, +%s) = %v, want %v", i, st.key.Addr, st.value, st.at, got, st.want)
		}
	}
	d.Expire(t0.Add(200 * time.Second))
	if n := d.Len(); n != 1 {
		t.Errorf("after Expire %d pairs remembered, want 1", n)
	}
}

func TestDistinctIsBounded(t *testing.T) {
	d := NewDistinct(time.Hour, 100)
	k := rules.Key{Addr: netip.MustParseAddr("2001:db8::1")}
	for i := range 10000 {
		if !d.First(k, uint64(i), t0.Add(time.Duration(i)*time.Millisecond)) {
			t.Fatalf("value %d reported as a repeat", i)
		}
		if d.Len() > 100 {
			t.Fatalf("%d pairs remembered, cap 100", d.Len())
		}
	}
}

func BenchmarkDistinctFirst(b *testing.B) {
	d := NewDistinct(time.Minute, 100000)
	k := rules.Key{Addr: netip.MustParseAddr("198.51.100.7")}
	i := 0
	for b.Loop() {
		d.First(k, uint64(i%512), t0.Add(time.Duration(i)*time.Millisecond))
		i++
	}
}

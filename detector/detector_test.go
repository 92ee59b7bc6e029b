package detector

import (
	"net/netip"
	"testing"
	"time"

	"github.com/band-project/band/rules"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func key(s string) rules.Key { return rules.Key{Addr: netip.MustParseAddr(s)} }

func TestSlidingWindow(t *testing.T) {
	authJail := &rules.Jail{Name: "auth", Kind: rules.Match, Limit: 5, FindTime: 10 * time.Minute}
	// A rate jail allowing 20 requests within 2s (the 21st bans).
	floodJail := &rules.Jail{Name: "flood", Kind: rules.Rate, Limit: 21, FindTime: 2 * time.Second}
	tests := []struct {
		name     string
		jail     *rules.Jail
		n        int
		gap      time.Duration
		wantTrip int // index of the hit that trips, -1 for none
	}{
		{"5 auth failures in 10 minutes ban", authJail, 5, 2 * time.Minute, 4},
		{"5 auth failures in 12 minutes do not", authJail, 5, 3 * time.Minute, -1},
		{"4 auth failures do not", authJail, 4, time.Second, -1},
		{"30 requests in 2s ban at the 21st", floodJail, 30, 2 * time.Second / 30, 20},
		{"30 requests over 30s do not", floodJail, 30, time.Second, -1},
		{"21 requests within one second ban", floodJail, 21, 0, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New(0)
			trip := -1
			for i := 0; i < tt.n; i++ {
				if _, ok := d.Hit(tt.jail, key("192.0.2.1"), t0.Add(time.Duration(i)*tt.gap)); ok && trip < 0 {
					trip = i
				}
			}
			if trip != tt.wantTrip {
				t.Errorf("tripped at hit %d, want %d", trip, tt.wantTrip)
			}
		})
	}
}

func TestWindowIsSlidingNotReset(t *testing.T) {
	// mod_evasive resets its counter after a quiet gap; a true sliding window
	// counts the last window whatever came before: 3 within 10s trips at the
	// third even when the first hit of the run is 9s before it.
	j := &rules.Jail{Name: "j", Limit: 3, FindTime: 10 * time.Second}
	d := New(0)
	k := key("198.51.100.7")
	times := []time.Duration{0, 9 * time.Second, 11 * time.Second, 18 * time.Second}
	var got []int
	for i, off := range times {
		if _, ok := d.Hit(j, k, t0.Add(off)); ok {
			got = append(got, i)
		}
	}
	// hits at 9s, 11s, 18s are within 10s of each other: trip at index 3.
	if len(got) != 1 || got[0] != 3 {
		t.Errorf("tripped at %v, want [3]", got)
	}
}

func TestOffenceCountsAndRestart(t *testing.T) {
	j := &rules.Jail{Name: "j", Limit: 3, FindTime: time.Minute}
	d := New(0)
	k := key("2001:db8::1")
	var offences int
	for i := 0; i < 9; i++ {
		if o, ok := d.Hit(j, k, t0.Add(time.Duration(i)*time.Second)); ok {
			offences++
			if o.Count != 3 || o.Key != k || o.Jail != j {
				t.Errorf("offence %+v, want count 3 for %v", o, k)
			}
		}
	}
	// After each offence the window starts afresh: 9 hits → 3 offences.
	if offences != 3 {
		t.Errorf("got %d offences, want 3", offences)
	}
}

func TestOutOfOrderTimes(t *testing.T) {
	j := &rules.Jail{Name: "j", Limit: 4, FindTime: 10 * time.Second}
	d := New(0)
	k := key("192.0.2.5")
	// Apache writes a slow request's line after faster ones with later stamps.
	offs := []time.Duration{5 * time.Second, 3 * time.Second, 6 * time.Second, 4 * time.Second}
	tripped := false
	for _, off := range offs {
		if _, ok := d.Hit(j, k, t0.Add(off)); ok {
			tripped = true
		}
	}
	if !tripped {
		t.Error("4 hits within 3s, written out of order, did not trip")
	}
	// A hit older than the window behind the newest does not count.
	d2 := New(0)
	d2.Hit(j, k, t0.Add(time.Minute))
	if n, _ := d2.trackers["j"].hit(k, t0.UnixNano()); n != 1 {
		t.Errorf("a stale hit was counted: count %d, want 1", n)
	}
}

func TestCapEvictsStalest(t *testing.T) {
	j := &rules.Jail{Name: "j", Limit: 2, FindTime: time.Hour}
	d := New(3)
	for i, a := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		d.Hit(j, key(a), t0.Add(time.Duration(i)*time.Second))
	}
	// Touch .1 again? No: hitting it would trip (limit 2). Add a 4th key:
	// .1 is the stalest and must go.
	d.Hit(j, key("192.0.2.4"), t0.Add(4*time.Second))
	st := d.Stats()["j"]
	if st.Keys != 3 || st.Evictions != 1 {
		t.Fatalf("stats %+v, want 3 keys and 1 eviction", st)
	}
	if d.Count(j, key("192.0.2.1"), t0.Add(5*time.Second)) != 0 {
		t.Error("stalest key 192.0.2.1 still tracked")
	}
	if d.Count(j, key("192.0.2.2"), t0.Add(5*time.Second)) != 1 {
		t.Error("192.0.2.2 lost its hit")
	}
}

func TestExpire(t *testing.T) {
	j := &rules.Jail{Name: "j", Limit: 5, FindTime: time.Minute}
	d := New(0)
	d.Hit(j, key("192.0.2.1"), t0)
	d.Hit(j, key("192.0.2.2"), t0.Add(50*time.Second))
	d.Expire(t0.Add(61 * time.Second))
	if got := d.Stats()["j"].Keys; got != 1 {
		t.Errorf("%d keys after expiry, want 1", got)
	}
}

func TestRetuneKeepsHits(t *testing.T) {
	j := &rules.Jail{Name: "j", Limit: 5, FindTime: time.Minute}
	d := New(0)
	k := key("192.0.2.1")
	for i := 0; i < 3; i++ {
		d.Hit(j, k, t0.Add(time.Duration(i)*time.Second))
	}
	// A reload lowers maxretry to 4: the fourth hit trips.
	j2 := &rules.Jail{Name: "j", Limit: 4, FindTime: time.Minute}
	if _, ok := d.Hit(j2, k, t0.Add(4*time.Second)); !ok {
		t.Error("hits counted before the reload were lost")
	}
}

func TestNoAllocsOnHotPath(t *testing.T) {
	j := &rules.Jail{Name: "j", Limit: 1000, FindTime: time.Second}
	d := New(0)
	k := key("192.0.2.1")
	now := t0
	for i := 0; i < 2000; i++ { // warm up: the ring reaches its size
		now = now.Add(time.Millisecond)
		d.Hit(j, k, now)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		d.Hit(j, k, now)
	})
	if allocs != 0 {
		t.Errorf("Hit allocates %.1f times, want 0", allocs)
	}
}

func BenchmarkHit(b *testing.B) {
	j := &rules.Jail{Name: "j", Limit: 31, FindTime: 2 * time.Second}
	d := New(0)
	keys := make([]rules.Key, 4096)
	for i := range keys {
		keys[i] = rules.Key{Addr: netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), Sub: uint64(i)}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d.Hit(j, keys[i&4095], t0.Add(time.Duration(i)*time.Millisecond))
	}
}

func TestSnapshotRestore(t *testing.T) {
	j := &rules.Jail{Name: "auth", Limit: 5, FindTime: 10 * time.Minute}
	d := New(0)
	k := key("192.0.2.1")
	for i := 0; i < 3; i++ {
		d.Hit(j, k, t0.Add(time.Duration(i)*time.Minute))
	}
	d.Hit(j, key("192.0.2.2"), t0.Add(-time.Hour)) // stale by t0+3m
	saved := d.Snapshot(t0.Add(3*time.Minute), nil)
	if len(saved) != 1 || len(saved[0].Times) != 3 {
		t.Fatalf("snapshot %+v, want one key with 3 hits", saved)
	}
	d2 := New(0)
	for _, w := range saved {
		d2.Restore(j, w.Key, w.Times)
	}
	// 3 failures before the restart and 2 after reach maxretry 5.
	if _, ok := d2.Hit(j, k, t0.Add(4*time.Minute)); ok {
		t.Fatal("tripped at the 4th hit")
	}
	if _, ok := d2.Hit(j, k, t0.Add(5*time.Minute)); !ok {
		t.Error("3 hits before the restart and 2 after did not reach maxretry 5")
	}
}

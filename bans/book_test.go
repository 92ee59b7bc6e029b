package bans

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/band-project/band/firewall"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newBook(t *testing.T, opts Options) (*Book, *firewall.DryRun, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	opts.Now = c.now
	log := slog.New(slog.DiscardHandler)
	fw := firewall.NewDryRun(log, c.now)
	return New(log, fw, opts), fw, c
}

func pfx(s string) netip.Prefix {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p
	}
	a := netip.MustParseAddr(s)
	return netip.PrefixFrom(a, a.BitLen())
}

func TestPolicy(t *testing.T) {
	book, _, _ := newBook(t, Options{
		Ignore: []netip.Prefix{pfx("203.0.113.0/24")},
		Own:    []netip.Addr{netip.MustParseAddr("198.51.100.1")},
	})
	tests := []struct {
		name    string
		req     Request
		wantErr error
	}{
		{"loopback v4", Request{Prefix: pfx("127.0.0.1")}, ErrProtected},
		{"loopback v6", Request{Prefix: pfx("::1")}, ErrProtected},
		{"v4-mapped loopback", Request{Prefix: pfx("::ffff:127.0.0.1")}, ErrProtected},
		{"own address", Request{Prefix: pfx("198.51.100.1")}, ErrProtected},
		{"prefix covering own address", Request{Prefix: pfx("198.51.100.0/24")}, ErrProtected},
		{"own address even forced", Request{Prefix: pfx("198.51.100.1"), Force: true}, ErrProtected},
		{"global ignoreip", Request{Prefix: pfx("203.0.113.5")}, ErrIgnored},
		{"jail ignoreip", Request{Prefix: pfx("192.0.2.9"), Ignore: []netip.Prefix{pfx("192.0.2.0/28")}}, ErrIgnored},
		{"forced past ignoreip", Request{Prefix: pfx("203.0.113.6"), Force: true}, nil},
		{"ordinary", Request{Prefix: pfx("192.0.2.50")}, nil},
		{"v6", Request{Prefix: pfx("2001:db8::50")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Jail, tt.req.For = "j", time.Hour
			_, made, err := book.Ban(context.Background(), tt.req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if made != (tt.wantErr == nil) {
				t.Errorf("made = %v", made)
			}
		})
	}
}

func TestDedupeExpiryAndBackend(t *testing.T) {
	book, fw, c := newBook(t, Options{})
	ctx := context.Background()
	req := Request{Prefix: pfx("192.0.2.7"), Jail: "auth", For: 10 * time.Minute, Hits: 5}
	b, made, err := book.Ban(ctx, req)
	if err != nil || !made {
		t.Fatalf("first ban: made %v err %v", made, err)
	}
	if !b.Expiry.Equal(c.t.Add(10 * time.Minute)) {
		t.Errorf("expiry %v, want %v", b.Expiry, c.t.Add(10*time.Minute))
	}
	c.t = c.t.Add(time.Minute)
	if _, made, _ := book.Ban(ctx, req); made {
		t.Error("an address already banned was banned again")
	}
	// An address inside a banned prefix does not re-trigger either.
	book.Ban(ctx, Request{Prefix: pfx("2001:db8:1::/64"), Jail: "scan", For: time.Hour})
	if _, made, _ := book.Ban(ctx, Request{Prefix: pfx("2001:db8:1::9"), Jail: "auth", For: time.Hour}); made {
		t.Error("an address inside a banned prefix was banned again")
	}
	if got := len(book.List()); got != 2 {
		t.Errorf("%d active bans, want 2", got)
	}
	kernel, _ := fw.List(ctx)
	if len(kernel) != 2 {
		t.Errorf("backend holds %d entries, want 2", len(kernel))
	}
	c.t = c.t.Add(10 * time.Minute)
	expired := book.Expire()
	if len(expired) != 1 || expired[0].Prefix != pfx("192.0.2.7") {
		t.Errorf("expired %v, want 192.0.2.7", expired)
	}
	if _, made, _ := book.Ban(ctx, req); !made {
		t.Error("an expired ban did not let the address be banned again")
	}
	if ok, err := book.Unban(ctx, pfx("192.0.2.7")); !ok || err != nil {
		t.Errorf("unban: %v %v", ok, err)
	}
	if ok, err := book.Unban(ctx, pfx("192.0.2.7")); ok || err != nil {
		t.Errorf("unbanning what is not banned: lifted %v, err %v; want false, nil", ok, err)
	}
	if book.Totals()["auth"] != 2 {
		t.Errorf("totals %v, want 2 auth bans", book.Totals())
	}
}

type failingBackend struct{ *firewall.DryRun }

func (failingBackend) Ban(context.Context, []firewall.Entry) error {
	return errors.New("adding 192.0.2.7 to set band4: operation not permitted")
}

func TestBackendFailureLeavesNoBan(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	book := New(log, failingBackend{firewall.NewDryRun(log, nil)}, Options{})
	if _, _, err := book.Ban(context.Background(), Request{Prefix: pfx("192.0.2.7"), For: time.Hour}); err == nil {
		t.Fatal("no error from a failing backend")
	}
	if len(book.List()) != 0 {
		t.Error("a ban the kernel refused is in the book")
	}
}

func TestEscalationDoublesAndCaps(t *testing.T) {
	book, _, c := newBook(t, Options{Escalation: Escalation{Factor: 2, Max: 35 * time.Minute}})
	ctx := context.Background()
	req := Request{Prefix: pfx("192.0.2.7"), Jail: "auth", For: 10 * time.Minute}
	var got []time.Duration
	for i := 0; i < 4; i++ {
		b, made, err := book.Ban(ctx, req)
		if err != nil || !made {
			t.Fatalf("ban %d: %v %v", i, made, err)
		}
		got = append(got, b.Expiry.Sub(b.Start))
		c.t = b.Expiry // the ban runs out, the address offends again
		book.Expire()
	}
	want := []time.Duration{10 * time.Minute, 20 * time.Minute, 35 * time.Minute, 35 * time.Minute}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ban %d lasted %v, want %v (all: %v)", i+1, got[i], want[i], got)
		}
	}
	// Another jail's bans do not count unless Overall is set.
	b, _, _ := book.Ban(ctx, Request{Prefix: pfx("192.0.2.7"), Jail: "flood", For: 10 * time.Minute})
	if d := b.Expiry.Sub(b.Start); d != 10*time.Minute {
		t.Errorf("first flood ban lasted %v, want 10m", d)
	}
}

func TestEscalationOverallAndHistoryAge(t *testing.T) {
	book, _, c := newBook(t, Options{Escalation: Escalation{Factor: 3, Overall: true}, HistoryMaxAge: time.Hour})
	ctx := context.Background()
	b, _, _ := book.Ban(ctx, Request{Prefix: pfx("192.0.2.8"), Jail: "auth", For: time.Minute})
	c.t = b.Expiry
	b, _, _ = book.Ban(ctx, Request{Prefix: pfx("192.0.2.8"), Jail: "flood", For: time.Minute})
	if d := b.Expiry.Sub(b.Start); d != 3*time.Minute {
		t.Errorf("second ban in another jail lasted %v, want 3m", d)
	}
	// Two hours later the history has aged out: back to the base time.
	c.t = c.t.Add(2 * time.Hour)
	book.Expire()
	book.PurgeHistory()
	if h := book.History(pfx("192.0.2.8")); len(h) != 0 {
		t.Errorf("history not purged: %v", h)
	}
	b, _, _ = book.Ban(ctx, Request{Prefix: pfx("192.0.2.8"), Jail: "auth", For: time.Minute})
	if d := b.Expiry.Sub(b.Start); d != time.Minute {
		t.Errorf("ban after the history aged out lasted %v, want 1m", d)
	}
}

func TestRecidive(t *testing.T) {
	book, fw, c := newBook(t, Options{Recidive: []Recidive{{Name: "recidive", MaxRetry: 3, FindTime: 24 * time.Hour, BanTime: 7 * 24 * time.Hour}}})
	ctx := context.Background()
	var last Ban
	for i := 0; i < 3; i++ {
		b, made, err := book.Ban(ctx, Request{Prefix: pfx("198.51.100.9"), Jail: []string{"auth", "flood", "auth"}[i], For: 10 * time.Minute})
		if err != nil || !made {
			t.Fatalf("ban %d: %v %v", i, made, err)
		}
		last = b
		if i < 2 {
			c.t = b.Expiry.Add(time.Hour)
			book.Expire()
		}
	}
	if last.Jail != "recidive" || last.Expiry.Sub(last.Start) != 7*24*time.Hour {
		t.Errorf("third ban within a day: %s for %v, want recidive for 168h", last.Jail, last.Expiry.Sub(last.Start))
	}
	kernel, _ := fw.List(ctx)
	if len(kernel) != 1 || kernel[0].TTL < 7*24*time.Hour-2*time.Hour {
		t.Errorf("kernel holds %v, want one entry with about a week left", kernel)
	}
}

type memJournal struct {
	bans    map[netip.Prefix]Ban
	history map[netip.Prefix][]Offence
}

func (m *memJournal) PutBan(b Ban)                            { m.bans[b.Prefix] = b }
func (m *memJournal) DeleteBan(p netip.Prefix)                { delete(m.bans, p) }
func (m *memJournal) SaveHistory(p netip.Prefix, h []Offence) { m.history[p] = h }

func TestJournalAndRestore(t *testing.T) {
	j := &memJournal{bans: map[netip.Prefix]Ban{}, history: map[netip.Prefix][]Offence{}}
	book, _, c := newBook(t, Options{Journal: j, Escalation: Escalation{Factor: 2}})
	ctx := context.Background()
	book.Ban(ctx, Request{Prefix: pfx("192.0.2.1"), Jail: "auth", For: time.Hour})
	book.Ban(ctx, Request{Prefix: pfx("192.0.2.2"), Jail: "auth", For: time.Minute})
	book.Ban(ctx, Request{Prefix: pfx("192.0.2.3"), Jail: "manual", For: time.Hour, Origin: OriginManual})
	book.Unban(ctx, pfx("192.0.2.3"))
	if len(j.bans) != 2 || len(j.history) != 2 {
		t.Fatalf("journal holds %d bans and %d histories, want 2 and 2", len(j.bans), len(j.history))
	}
	// A restart two minutes later: the short ban has expired.
	c.t = c.t.Add(2 * time.Minute)
	saved := make([]Ban, 0, len(j.bans))
	for _, b := range j.bans {
		saved = append(saved, b)
	}
	book2, fw2, _ := newBook(t, Options{Journal: j, Escalation: Escalation{Factor: 2}})
	book2.now = c.now
	active := book2.Restore(saved, j.history)
	if len(active) != 1 || active[0].Prefix != pfx("192.0.2.1") {
		t.Fatalf("restored %v, want 192.0.2.1 only", active)
	}
	if kernel, _ := fw2.List(ctx); len(kernel) != 0 {
		t.Errorf("Restore called the backend: %v", kernel)
	}
	// The history came back: the next ban of 192.0.2.2 is doubled.
	b, _, _ := book2.Ban(ctx, Request{Prefix: pfx("192.0.2.2"), Jail: "auth", For: time.Minute})
	if d := b.Expiry.Sub(b.Start); d != 2*time.Minute {
		t.Errorf("ban after restart lasted %v, want 2m", d)
	}
}

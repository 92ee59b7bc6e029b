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

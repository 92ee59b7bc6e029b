// Package bans keeps the ban book: who is banned, by which jail, until when.
// It applies policy (never ban loopback, the host's own addresses or an
// ignored address; never ban twice; ban repeat offenders longer, and
// recidivists for long), records every change in a Journal for restarts,
// and drives a firewall.Backend.
package bans

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/band-project/band/firewall"
)

// Origin says who asked for a ban.
type Origin string

const (
	OriginJail   Origin = "jail"
	OriginManual Origin = "manual"
)

// Ban is one entry of the book.
type Ban struct {
	Prefix netip.Prefix `json:"addr"`
	Jail   string       `json:"jail"`
	Start  time.Time    `json:"start"`
	Expiry time.Time    `json:"expiry"`
	Hits   int          `json:"hits"`
	Reason string       `json:"reason,omitempty"`
	Origin Origin       `json:"origin"`
}

// Request asks the book to ban an address or prefix.
type Request struct {
	Prefix netip.Prefix
	Jail   string
	For    time.Duration
	Hits   int
	Reason string // for a jail ban, the line that tipped it (truncated)
	Origin Origin
	// Ignore lists the jail's own ignoreip, on top of the book's.
	Ignore []netip.Prefix
	// Force bans even an ignored address (never loopback or the host's own).
	Force bool
}

var (
	loopback4 = netip.MustParsePrefix("127.0.0.0/8")
	loopback6 = netip.MustParsePrefix("::1/128")
)

// Errors a caller can branch on.
var (
	ErrProtected = errors.New("address is protected")   // loopback or one of the host's own
	ErrIgnored   = errors.New("address is in ignoreip") // whitelisted
)

// Offence is one past ban of an offender, kept for escalation.
type Offence struct {
	Jail string    `json:"jail"`
	At   time.Time `json:"at"`
}

// Journal records the book's changes durably; the state package implements
// it. Calls queue and never block on the disk.
type Journal interface {
	PutBan(Ban)
	DeleteBan(netip.Prefix)
	SaveHistory(netip.Prefix, []Offence)
}

// Escalation bans repeat offenders longer (fail2ban's bantime.increment):
// each earlier ban of the same address (in the same jail, or in any jail
// with Overall) multiplies the ban time by Factor, up to Max.
type Escalation struct {
	Factor  float64       // 0 or 1: no escalation
	Max     time.Duration // cap; 0 means no cap
	Overall bool          // count bans of every jail, not only the banning one
}

// Recidive bans for BanTime an address banned MaxRetry times (by any other
// jail) within FindTime.
type Recidive struct {
	Name     string
	MaxRetry int
	FindTime time.Duration
	BanTime  time.Duration
}

// Options configure a Book.
type Options struct {
	// Journal, when set, records bans and history for a restart.
	Journal Journal
	// Escalation and Recidive are the repeat-offender policy.
	Escalation Escalation
	Recidive   []Recidive
	// HistoryMaxAge is how long past bans are remembered (default 30 days).
	HistoryMaxAge time.Duration
	// Ignore lists addresses and prefixes never banned ([defaults] ignoreip).
	Ignore []netip.Prefix
	// Own lists the host's own addresses; loopback is always protected.
	Own []netip.Addr
	// Now is the clock (time.Now when nil). Offline replay passes line time.
	Now func() time.Time
}

// Book is the ban book. It is safe for concurrent use.
type Book struct {
	log     *slog.Logger
	backend firewall.Backend
	now     func() time.Time

	mu     sync.Mutex
	ignore []netip.Prefix
	own    map[netip.Addr]bool
	active map[netip.Prefix]*Ban
	nets   int               // active entries wider than one address
	total  map[string]uint64 // bans made per jail

	journal  Journal
	esc      Escalation
	recidive []Recidive
	maxAge   time.Duration
	history  map[netip.Prefix][]Offence
}

// New returns a book driving backend.
func New(log *slog.Logger, backend firewall.Backend, opts Options) *Book {
	b := &Book{
		log:     log.With("component", "bans"),
		backend: backend,
		now:     opts.Now,
		active:  make(map[netip.Prefix]*Ban),
		total:   make(map[string]uint64),
	}
	if b.now == nil {
		b.now = time.Now
	}
	b.journal = opts.Journal
	b.history = make(map[netip.Prefix][]Offence)
	b.SetPolicy(opts.Ignore, opts.Own)
	b.SetRepeatPolicy(opts.Escalation, opts.Recidive, opts.HistoryMaxAge)
	return b
}

// SetRepeatPolicy replaces the repeat-offender policy (after a reload).
func (b *Book) SetRepeatPolicy(esc Escalation, recidive []Recidive, maxAge time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if maxAge <= 0 {
		maxAge = 30 * 24 * time.Hour
	}
	b.esc, b.recidive, b.maxAge = esc, append([]Recidive(nil), recidive...), maxAge
}

// Restore loads saved bans and history at start, without calling the
// backend (Reconcile does that). Expired bans are dropped. It returns the
// bans now active.
func (b *Book) Restore(saved []Ban, history map[netip.Prefix][]Offence) []Ban {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	for _, ban := range saved {
		if !ban.Expiry.After(now) {
			if b.journal != nil {
				b.journal.DeleteBan(ban.Prefix)
			}
			continue
		}
		c := ban
		b.put(&c)
	}
	for p, h := range history {
		b.history[p] = h
	}
	out := make([]Ban, 0, len(b.active))
	for _, ban := range b.active {
		out = append(out, *ban)
	}
	sortBans(out)
	return out
}

// escalate returns the ban time for a new ban of p by jail, given its past
// bans. Called with mu held.
func (b *Book) escalate(p netip.Prefix, jail string, base time.Duration, now time.Time) time.Duration {
	if b.esc.Factor <= 1 {
		return base
	}
	n := 0
	for _, o := range b.history[p] {
		if now.Sub(o.At) < b.maxAge && (b.esc.Overall || o.Jail == jail) {
			n++
		}
	}
	d := float64(base)
	for i := 0; i < n; i++ {
		d *= b.esc.Factor
		if b.esc.Max > 0 && d >= float64(b.esc.Max) {
			return b.esc.Max
		}
	}
	if b.esc.Max > 0 && time.Duration(d) > b.esc.Max {
		return b.esc.Max
	}
	return time.Duration(d)
}

// remember adds a ban to p's history, purging entries older than the
// history's age. Called with mu held.
func (b *Book) remember(p netip.Prefix, jail string, now time.Time) {
	h := b.history[p][:0:0]
	for _, o := range b.history[p] {
		if now.Sub(o.At) < b.maxAge {
			h = append(h, o)
		}
	}
	h = append(h, Offence{Jail: jail, At: now})
	b.history[p] = h
	if b.journal != nil {
		b.journal.SaveHistory(p, h)
	}
}

// recidiveFor returns the recidive rule p now falls under, if any. Called
// with mu held, after remember.
func (b *Book) recidiveFor(p netip.Prefix, jail string, now time.Time) (Recidive, bool) {
	for _, r := range b.recidive {
		if jail == r.Name {
			continue
		}
		n := 0
		for _, o := range b.history[p] {
			if o.Jail != r.Name && now.Sub(o.At) < r.FindTime {
				n++
			}
		}
		if r.MaxRetry > 0 && n >= r.MaxRetry {
			return r, true
		}
	}
	return Recidive{}, false
}

// PurgeHistory forgets past bans older than the history's age.
func (b *Book) PurgeHistory() {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	for p, h := range b.history {
		keep := h[:0:0]
		for _, o := range h {
			if now.Sub(o.At) < b.maxAge {
				keep = append(keep, o)
			}
		}
		if len(keep) == len(h) {
			continue
		}
		if len(keep) == 0 {
			delete(b.history, p)
		} else {
			b.history[p] = keep
		}
		if b.journal != nil {
			b.journal.SaveHistory(p, keep)
		}
	}
}

// History returns p's past bans.
func (b *Book) History(p netip.Prefix) []Offence {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Offence(nil), b.history[p]...)
}

// SetPolicy replaces the global ignore list and the host's own addresses
// (after a reload).
func (b *Book) SetPolicy(ignore []netip.Prefix, own []netip.Addr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ignore = append([]netip.Prefix(nil), ignore...)
	b.own = make(map[netip.Addr]bool, len(own))
	for _, a := range own {
		b.own[a.Unmap()] = true
	}
}

// Protected reports whether p covers loopback or one of the host's own
// addresses, which are never banned.
func (b *Book) Protected(p netip.Prefix) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.protectedLocked(p)
}

func (b *Book) protectedLocked(p netip.Prefix) bool {
	a := p.Addr()
	if a.IsLoopback() || a.IsUnspecified() || p.Overlaps(loopback4) || p.Overlaps(loopback6) {
		return true
	}
	for own := range b.own {
		if p.Contains(own) {
			return true
		}
	}
	return false
}

// Ignored reports whether p falls in the global ignore list or extra.
func (b *Book) Ignored(p netip.Prefix, extra []netip.Prefix) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return ignoredBy(p, b.ignore) || ignoredBy(p, extra)
}

func ignoredBy(p netip.Prefix, list []netip.Prefix) bool {
	for _, ig := range list {
		if ig.Overlaps(p) {
			return true
		}
	}
	return false
}

// Banned reports whether addr is covered by an active ban.
func (b *Book) Banned(addr netip.Addr) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.coveringLocked(addr, b.now()) != nil
}

func (b *Book) coveringLocked(addr netip.Addr, now time.Time) *Ban {
	if ban, ok := b.active[netip.PrefixFrom(addr, addr.BitLen())]; ok && ban.Expiry.After(now) {
		return ban
	}
	if b.nets == 0 {
		return nil
	}
	for p, ban := range b.active {
		if p.Bits() < addr.BitLen() && p.Contains(addr) && ban.Expiry.After(now) {
			return ban
		}
	}
	return nil
}

// Ban applies a request. It returns the ban and true when a new ban was
// made; an address already banned returns its ban and false (it does not
// re-trigger). Protected and ignored addresses return ErrProtected or
// ErrIgnored.
func (b *Book) Ban(ctx context.Context, r Request) (Ban, bool, error) {
	p := r.Prefix.Masked()
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
	}
	if r.Origin == "" {
		r.Origin = OriginJail
	}
	b.mu.Lock()
	now := b.now()
	if b.protectedLocked(p) {
		b.mu.Unlock()
		return Ban{}, false, fmt.Errorf("banning %s: %w (loopback or this host's own address)", p, ErrProtected)
	}
	if !r.Force && (ignoredBy(p, b.ignore) || ignoredBy(p, r.Ignore)) {
		b.mu.Unlock()
		return Ban{}, false, fmt.Errorf("banning %s: %w", p, ErrIgnored)
	}
	if p.IsSingleIP() {
		if cur := b.coveringLocked(p.Addr(), now); cur != nil && (r.Origin == OriginJail || cur.Prefix == p) {
			c := *cur
			b.mu.Unlock()
			return c, false, nil
		}
	} else if cur, ok := b.active[p]; ok && cur.Expiry.After(now) && r.Origin == OriginJail {
		c := *cur
		b.mu.Unlock()
		return c, false, nil
	}
	dur := r.For
	jail := r.Jail
	if r.Origin == OriginJail {
		dur = b.escalate(p, r.Jail, r.For, now)
		b.remember(p, r.Jail, now)
		if rc, ok := b.recidiveFor(p, r.Jail, now); ok && rc.BanTime > dur {
			dur, jail = rc.BanTime, rc.Name
			b.remember(p, rc.Name, now)
		}
	}
	ban := &Ban{Prefix: p, Jail: jail, Start: now, Expiry: now.Add(dur), Hits: r.Hits, Reason: r.Reason, Origin: r.Origin}
	b.put(ban)
	b.total[jail]++
	c := *ban
	// Journaled under the lock, so whoever sees the ban in List can make it
	// durable by flushing the journal afterwards.
	if b.journal != nil {
		b.journal.PutBan(c)
	}
	b.mu.Unlock()

	if err := b.backend.Ban(ctx, []firewall.Entry{{Prefix: p, TTL: dur}}); err != nil {
		b.mu.Lock()
		if b.active[p] == ban {
			b.drop(p)
			if b.journal != nil {
				b.journal.DeleteBan(p)
			}
		}
		b.mu.Unlock()
		return Ban{}, false, err
	}
	return c, true, nil
}

func (b *Book) put(ban *Ban) {
	if old, ok := b.active[ban.Prefix]; !ok || old == nil {
		if !ban.Prefix.IsSingleIP() {
			b.nets++
		}
	}
	b.active[ban.Prefix] = ban
}

func (b *Book) drop(p netip.Prefix) {
	if _, ok := b.active[p]; ok {
		delete(b.active, p)
		if !p.IsSingleIP() {
			b.nets--
		}
	}
}

// Adopt puts bans the kernel already holds into the book, without calling
// the backend, so a restart keeps them (and their remaining time) instead
// of leaving a gap. Entries already in the book are kept as they are.
func (b *Book) Adopt(entries []firewall.Entry, jail string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	n := 0
	for _, e := range entries {
		if _, ok := b.active[e.Prefix]; ok || e.TTL <= 0 {
			continue
		}
		ban := &Ban{Prefix: e.Prefix, Jail: jail, Start: now, Expiry: now.Add(e.TTL), Origin: OriginJail, Reason: "found in the kernel at start"}
		b.put(ban)
		if b.journal != nil {
			b.journal.PutBan(*ban)
		}
		n++
	}
	return n
}

// Unban lifts the ban on p. Unbanning what is not banned is not an error; it
// reports whether a ban was lifted.
func (b *Book) Unban(ctx context.Context, p netip.Prefix) (bool, error) {
	p = p.Masked()
	b.mu.Lock()
	_, ok := b.active[p]
	b.drop(p)
	if ok && b.journal != nil {
		b.journal.DeleteBan(p)
	}
	b.mu.Unlock()
	if err := b.backend.Unban(ctx, []netip.Prefix{p}); err != nil {
		return ok, err
	}
	return ok, nil
}

// Expire drops bans whose time is up from the book (the kernel expires them
// on its own) and returns them.
func (b *Book) Expire() []Ban {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	var out []Ban
	for p, ban := range b.active {
		if !ban.Expiry.After(now) {
			out = append(out, *ban)
			b.drop(p)
			if b.journal != nil {
				b.journal.DeleteBan(p)
			}
		}
	}
	sortBans(out)
	return out
}

// List returns the active bans sorted by address.
func (b *Book) List() []Ban {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	out := make([]Ban, 0, len(b.active))
	for _, ban := range b.active {
		if ban.Expiry.After(now) {
			out = append(out, *ban)
		}
	}
	sortBans(out)
	return out
}

// Totals returns how many bans each jail made since start.
func (b *Book) Totals() map[string]uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]uint64, len(b.total))
	for k, v := range b.total {
		out[k] = v
	}
	return out
}

func sortBans(bs []Ban) {
	sort.Slice(bs, func(i, j int) bool {
		if c := bs[i].Prefix.Addr().Compare(bs[j].Prefix.Addr()); c != 0 {
			return c < 0
		}
		return bs[i].Prefix.Bits() < bs[j].Prefix.Bits()
	})
}

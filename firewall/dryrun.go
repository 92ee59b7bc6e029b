package firewall

import (
	"context"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// DryRun logs what it would do and keeps the entries in memory, expiring them
// by the clock it is given, as the kernel would.
type DryRun struct {
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	entries map[netip.Prefix]time.Time // prefix → expiry
}

var _ Backend = (*DryRun)(nil)

// NewDryRun returns a dry-run backend. now is the clock used for expiry
// (time.Now when nil).
func NewDryRun(log *slog.Logger, now func() time.Time) *DryRun {
	if now == nil {
		now = time.Now
	}
	return &DryRun{log: log.With("component", "firewall", "backend", "dryrun"), now: now, entries: make(map[netip.Prefix]time.Time)}
}

func (d *DryRun) Name() string { return "dryrun" }

func (d *DryRun) Setup(ctx context.Context) error {
	d.log.Info("dry run: no packets will be dropped")
	return nil
}

func (d *DryRun) Ban(ctx context.Context, entries []Entry) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	for _, e := range entries {
		d.entries[e.Prefix] = now.Add(e.TTL)
		if len(entries) <= 10 {
			d.log.Info("would ban", "addr", e.Prefix.String(), "ttl", e.TTL.String())
		}
	}
	if len(entries) > 10 {
		d.log.Info("would ban", "count", len(entries), "first", entries[0].Prefix.String())
	}
	return nil
}

func (d *DryRun) Unban(ctx context.Context, prefixes []netip.Prefix) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range prefixes {
		if _, ok := d.entries[p]; ok {
			delete(d.entries, p)
			d.log.Info("would unban", "addr", p.String())
		}
	}
	return nil
}

func (d *DryRun) List(ctx context.Context) ([]Entry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	out := make([]Entry, 0, len(d.entries))
	for p, exp := range d.entries {
		if !exp.After(now) {
			delete(d.entries, p)
			continue
		}
		out = append(out, Entry{Prefix: p, TTL: exp.Sub(now)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Prefix.String() < out[j].Prefix.String() })
	return out, nil
}

func (d *DryRun) Close() error { return nil }

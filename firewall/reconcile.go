package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// ttlSlack is how far the kernel's remaining time may differ from the wanted
// TTL before Reconcile refreshes it: the larger of 10 s and 10 % of the TTL.
func ttlSlack(want time.Duration) time.Duration {
	return max(10*time.Second, want/10)
}

// Reconcile makes the kernel hold exactly want, without flushing: it reads
// what b holds, bans what is missing or whose remaining time differs
// substantially from the wanted TTL (one Ban call), and unbans what want does
// not have (one Unban call). Entries in both stay in place throughout, so a
// restart leaves no gap in protection. added counts entries sent to Ban
// (missing or refreshed), removed those sent to Unban.
func Reconcile(ctx context.Context, b Backend, want []Entry) (added, removed int, err error) {
	have, err := b.List(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("reconciling: %w", err)
	}
	kernel := make(map[netip.Prefix]time.Duration, len(have))
	for _, e := range have {
		if p, err := normalize(e.Prefix); err == nil {
			kernel[p] = e.TTL
		}
	}
	wanted := make(map[netip.Prefix]bool, len(want))
	var ban []Entry
	for _, e := range want {
		p, err := normalize(e.Prefix)
		if err != nil {
			return 0, 0, fmt.Errorf("reconciling: %w", err)
		}
		wanted[p] = true
		ttl, ok := kernel[p]
		diff := ttl - e.TTL
		if diff < 0 {
			diff = -diff
		}
		if !ok || diff > ttlSlack(e.TTL) || (ttl == 0) != (e.TTL == 0) {
			ban = append(ban, Entry{Prefix: p, TTL: e.TTL})
		}
	}
	var unban []netip.Prefix
	for p := range kernel {
		if !wanted[p] {
			unban = append(unban, p)
		}
	}
	if len(ban) > 0 {
		if err := b.Ban(ctx, ban); err != nil {
			return 0, 0, fmt.Errorf("reconciling: %w", err)
		}
	}
	if len(unban) > 0 {
		if err := b.Unban(ctx, unban); err != nil {
			return len(ban), 0, fmt.Errorf("reconciling: %w", err)
		}
	}
	return len(ban), len(unban), nil
}

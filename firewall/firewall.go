// Package firewall drops banned addresses in the kernel: nftables sets,
// iptables with ipset, or a dry run that only logs. The kernel expires each
// ban by itself (set element timeouts), so bans lapse even if band is dead.
package firewall

import (
	"context"
	"net/netip"
	"time"
)

// Entry is one banned address or prefix with the time left before the kernel
// expires it (0: no timeout, banned until unbanned). A single address is a
// full-length prefix (/32 or /128); IPv4-mapped IPv6 addresses are unmapped.
type Entry struct {
	Prefix netip.Prefix
	TTL    time.Duration
}

// Backend programs the kernel. Implementations are safe for concurrent use.
type Backend interface {
	// Name is the backend's name as configured ("nftables", "iptables", "dryrun").
	Name() string
	// Setup creates or adopts the backend's tables, chains and sets. It is
	// idempotent and never flushes what is already there.
	Setup(ctx context.Context) error
	// Ban adds entries, each with its TTL as the kernel timeout, in one
	// transaction. Banning an address already banned refreshes its timeout.
	Ban(ctx context.Context, entries []Entry) error
	// Unban removes entries. Removing one that is not banned is not an error.
	Unban(ctx context.Context, prefixes []netip.Prefix) error
	// List returns what the kernel holds, with remaining time.
	List(ctx context.Context) ([]Entry, error)
	// Close releases resources; it does not remove bans.
	Close() error
}

package firewall

import (
	"context"
	"fmt"
	"net/netip"
)

// normalize returns p with an IPv4-mapped IPv6 address unmapped and the host
// bits cleared, or an error if p is not a valid prefix.
// unbanList is the start of every Unban: a done ctx stops it, and the
// prefixes are normalized; an empty result means there is nothing to do.
func unbanList(ctx context.Context, prefixes []netip.Prefix) ([]netip.Prefix, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ps, err := normalizeAll(prefixes)
	if err != nil {
		return nil, fmt.Errorf("unbanning: %w", err)
	}
	return ps, nil
}

// normalizeAll normalizes every prefix, failing on the first bad one.
func normalizeAll(prefixes []netip.Prefix) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(prefixes))
	for _, p := range prefixes {
		n, err := normalize(p)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func normalize(p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %q", p)
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("prefix %s: IPv4-mapped prefix shorter than /96", p)
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// isHost reports whether p is a single address (/32 or /128).
func isHost(p netip.Prefix) bool { return p.Bits() == p.Addr().BitLen() }

// show prints a host prefix as its address and anything else as a prefix.
func show(p netip.Prefix) string {
	if isHost(p) {
		return p.Addr().String()
	}
	return p.String()
}

// lastAddr is the highest address inside p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// rangePrefix returns the prefix spanning exactly [first, last], if there is one.
func rangePrefix(first, last netip.Addr) (netip.Prefix, bool) {
	for bits := 0; bits <= first.BitLen(); bits++ {
		p := netip.PrefixFrom(first, bits)
		if p.Masked().Addr() == first && lastAddr(p) == last {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// covers reports whether outer contains all of inner.
func covers(outer, inner netip.Prefix) bool {
	return outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}

package apachelog

import (
	"net/netip"
	"unsafe"
)

// parseAddr parses an IPv4 or IPv6 address as Apache writes it, unmapping
// IPv4-mapped IPv6 addresses. It returns the zero Addr for anything else
// (host names, "-", zones). It does not allocate for valid addresses.
func parseAddr(b []byte) netip.Addr {
	if len(b) == 0 || len(b) > 45 {
		return netip.Addr{}
	}
	colon := false
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9', c == '.':
		case c == ':':
			colon = true
		case 'a' <= c|0x20 && c|0x20 <= 'f':
		default:
			return netip.Addr{}
		}
	}
	if !colon {
		return parseIPv4(b)
	}
	// netip.ParseAddr does not keep its argument in the Addr it returns
	// (zones, which it would intern, are excluded above by the character
	// check), so a string sharing b's memory is safe here and spares a copy.
	a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(b), len(b)))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// parseIPv4 parses dotted-quad notation without leading zeros.
func parseIPv4(b []byte) netip.Addr {
	var ip [4]byte
	k, n, digits := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || k > 3 {
				return netip.Addr{}
			}
			ip[k] = byte(n)
			k, n, digits = k+1, 0, 0
			continue
		}
		c := b[i]
		if c < '0' || c > '9' || (digits > 0 && n == 0) {
			return netip.Addr{}
		}
		n = n*10 + int(c-'0')
		digits++
		if n > 255 {
			return netip.Addr{}
		}
	}
	if k != 4 {
		return netip.Addr{}
	}
	return netip.AddrFrom4(ip)
}

// splitAddrPort parses an error log's client token: "ADDR:PORT",
// "[ADDR]:PORT" or, when withPort is false (Apache 2.2), a bare ADDR. It
// returns the address text and the address.
func splitAddrPort(b []byte, withPort bool) ([]byte, netip.Addr) {
	if len(b) > 0 && b[0] == '[' {
		for i := 1; i < len(b); i++ {
			if b[i] == ']' {
				if i+1 < len(b) && (b[i+1] != ':' || !allDigits(b[i+2:])) {
					return nil, netip.Addr{}
				}
				return b[1:i], parseAddr(b[1:i])
			}
		}
		return nil, netip.Addr{}
	}
	if !withPort {
		if a := parseAddr(b); a.IsValid() {
			return b, a
		}
	}
	for i := len(b) - 1; i > 0; i-- {
		if b[i] == ':' {
			if allDigits(b[i+1:]) {
				if a := parseAddr(b[:i]); a.IsValid() {
					return b[:i], a
				}
			}
			break
		}
	}
	return b, parseAddr(b)
}

func allDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ParseAddr parses an IPv4 or IPv6 address written in a log line (in
// X-Forwarded-For, say) the way the parser reads %a: IPv4-mapped addresses
// unmapped, the zero Addr for anything else. It does not allocate.
func ParseAddr(b []byte) netip.Addr { return parseAddr(b) }

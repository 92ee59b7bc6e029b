package pipeline

import (
	"net/netip"

	"github.com/band-project/band/apachelog"
)

// proxies is a source's trusted reverse proxies.
type proxies []netip.Prefix

func (ps proxies) has(a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// client returns the address a line is from, once per line, before any
// jail sees it:
//
//   - With no trusted proxies, it is what Apache logged for the connection
//     (ev.Client: %a, else %h, or the error log's [client …]).
//   - When %{c}a (the TCP peer) is logged, differs from %a and is not a
//     trusted proxy, it is the peer: mod_remoteip believed a header from a
//     client band does not trust.
//   - When the logged client is a trusted proxy, it is the rightmost
//     X-Forwarded-For entry (%{X-Forwarded-For}i) that is not a trusted
//     proxy itself, walking leftwards past trusted hops. mod_remoteip
//     removes the entries it used from the header, so the walk continues
//     where it stopped.
//
// ok is false when the line came from a trusted proxy and names no client
// band can trust (no X-Forwarded-For, a malformed entry, or only trusted
// hops): such a line counts for no jail, so that a proxy is never banned for
// its clients. X-Forwarded-For from a client that is not a trusted proxy is
// never read. It does not allocate.
func (ps proxies) client(ev *apachelog.Event) (addr netip.Addr, ok bool) {
	c := ev.Client
	if len(ps) == 0 || !c.IsValid() {
		return c, true
	}
	if ev.Peer.IsValid() && ev.Peer != c && !ps.has(ev.Peer) {
		return ev.Peer, true
	}
	if !ps.has(c) {
		return c, true
	}
	xff := ev.Get(apachelog.FieldForwardedFor)
	for end := len(xff); end > 0; {
		start := end - 1
		for start >= 0 && xff[start] != ',' {
			start--
		}
		a := parseHop(xff[start+1 : end])
		if !a.IsValid() {
			return netip.Addr{}, false
		}
		if !ps.has(a) {
			return a, true
		}
		end = start
	}
	return netip.Addr{}, false
}

// parseHop parses one X-Forwarded-For entry: an address, optionally with a
// port ("192.0.2.7:5123", "[2001:db8::7]:443"), with surrounding spaces.
func parseHop(b []byte) netip.Addr {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	if len(b) > 0 && b[0] == '[' {
		for i := 1; i < len(b); i++ {
			if b[i] == ']' {
				if i+1 < len(b) && !isPort(b[i+1:]) {
					return netip.Addr{}
				}
				return apachelog.ParseAddr(b[1:i])
			}
		}
		return netip.Addr{}
	}
	if a := apachelog.ParseAddr(b); a.IsValid() {
		return a
	}
	// IPv4 with a port: one colon.
	for i := len(b) - 1; i > 0; i-- {
		if b[i] == ':' {
			if isPort(b[i:]) {
				if a := apachelog.ParseAddr(b[:i]); a.Is4() {
					return a
				}
			}
			break
		}
	}
	return netip.Addr{}
}

// isPort reports whether b is ":" and 1 to 5 digits.
func isPort(b []byte) bool {
	if len(b) < 2 || len(b) > 6 || b[0] != ':' {
		return false
	}
	for _, c := range b[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Package rules compiles configured jails into matchers over parsed log
// Events: fail2ban-style match jails and mod_evasive-style rate jails. It
// keeps no per-client state; counting is the detector's job.
package rules

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"net/netip"
	"regexp"
	"slices"
	"time"

	"github.com/band-project/band/apachelog"
)

// Kind is a jail's kind.
type Kind uint8

const (
	Match Kind = iota + 1 // count lines matching conditions per client (fail2ban)
	Rate                  // count requests per page, site or client (mod_evasive)
)

func (k Kind) String() string {
	switch k {
	case Match:
		return "match"
	case Rate:
		return "rate"
	}
	return "unknown"
}

// Per says what a rate jail counts requests by.
type Per uint8

const (
	PerClient Per = iota + 1 // client
	PerSite                  // client + virtual host
	PerPage                  // client + virtual host + path without query
)

func (p Per) String() string {
	switch p {
	case PerClient:
		return "client"
	case PerSite:
		return "site"
	case PerPage:
		return "page"
	}
	return "unknown"
}

// Key is what a jail counts under: the offending client and, for rate jails
// per page or per site, a hash of the virtual host and path.
type Key struct {
	Addr netip.Addr
	Sub  uint64
}

// Jail is a compiled jail. It is immutable and safe for concurrent use.
type Jail struct {
	Name    string
	Kind    Kind
	Per     Per      // rate jails only
	Sources []string // source names it reads; empty means all that fit

	BanTime  time.Duration
	FindTime time.Duration // match: findtime; rate: window
	// Limit is how many hits within FindTime ban: maxretry for match jails,
	// threshold+1 for rate jails.
	Limit    int
	IgnoreIP []netip.Prefix
	// IPv6Bits, when not 0, is the prefix length IPv6 clients are counted
	// and banned by (ipv6_prefix).
	IPv6Bits int

	errorOnly  bool // conditions only error-log lines can meet
	accessOnly bool
	conds      []cond
	raw        []*regexp.Regexp // raw-line regexes with a host group
	rawHost    []int            // index of the host group in each raw regex
	ignore     []*regexp.Regexp
	distinct   apachelog.Field // count a value once per client within FindTime; FieldNone = every line
	seed       maphash.Seed
}

// Reads reports whether the jail reads lines from the named source.
func (j *Jail) Reads(source string) bool {
	return len(j.Sources) == 0 || slices.Contains(j.Sources, source)
}

// Accepts reports whether lines of this kind can ever match the jail.
func (j *Jail) Accepts(k apachelog.Kind) bool {
	switch k {
	case apachelog.Error:
		return !j.accessOnly
	case apachelog.Access:
		return !j.errorOnly
	}
	return false
}

// Match reports whether ev counts for the jail and under which key. The
// client address always comes from where the log format puts the client,
// never from a client-controlled field.
func (j *Jail) Match(ev *apachelog.Event) (Key, bool) {
	if !ev.Client.IsValid() || !j.Accepts(ev.Kind) {
		return Key{}, false
	}
	for i := range j.conds {
		if !j.conds[i].match(ev) {
			return Key{}, false
		}
	}
	if len(j.raw) > 0 && !j.matchRaw(ev) {
		return Key{}, false
	}
	for _, re := range j.ignore {
		if re.Match(ev.Line) {
			return Key{}, false
		}
	}
	k := Key{Addr: j.KeyAddr(ev.Client)}
	if j.Kind == Rate && j.Per != PerClient {
		var h maphash.Hash
		h.SetSeed(j.seed)
		vhost := ev.Get(apachelog.FieldVHost)
		if vhost == nil {
			vhost = ev.Get(apachelog.FieldServerName)
		}
		h.Write(vhost)
		if j.Per == PerPage {
			h.WriteByte(0)
			h.Write(ev.Get(apachelog.FieldPath))
		}
		k.Sub = h.Sum64()
	}
	return k, true
}

// matchRaw runs the raw-line regexes. <HOST> must bind exactly where the
// format put the client address, so text an attacker wrote elsewhere in the
// line can never name the address to ban.
func (j *Jail) matchRaw(ev *apachelog.Event) bool {
	at, ok := clientOffset(ev)
	if !ok {
		return false
	}
	for i, re := range j.raw {
		loc := re.FindSubmatchIndex(ev.Line)
		if loc == nil {
			continue
		}
		g := j.rawHost[i]
		if loc[2*g] == at.start && loc[2*g+1] == at.end {
			return true
		}
	}
	return false
}

type span struct{ start, end int }

// clientOffset finds where in the line the parser read the client address.
func clientOffset(ev *apachelog.Event) (span, bool) {
	for _, f := range [...]apachelog.Field{apachelog.FieldRemoteAddr, apachelog.FieldRemoteHost} {
		if s, ok := offsetIn(ev.Line, ev.Get(f)); ok {
			return s, true
		}
	}
	if ev.Kind == apachelog.Error {
		// The error-log client token: find it by the address text right after
		// "[client " at the fixed position the parser used.
		if i := bytes.Index(ev.Line, []byte("[client ")); i >= 0 {
			start := i + len("[client ")
			end := start
			for end < len(ev.Line) && ev.Line[end] != ']' {
				end++
			}
			// strip the port: the address is what parses.
			for k := end; k > start; k-- {
				if a, err := netip.ParseAddr(string(ev.Line[start:k])); err == nil && a.Unmap() == ev.Client {
					return span{start, k}, true
				}
			}
		}
	}
	return span{}, false
}

// offsetIn returns where sub lies inside line, when it is a subslice of it.
func offsetIn(line, sub []byte) (span, bool) {
	if len(sub) == 0 || cap(sub) > cap(line) {
		return span{}, false
	}
	start := cap(line) - cap(sub)
	if start+len(sub) > len(line) || &line[start] != &sub[0] {
		return span{}, false
	}
	return span{start, start + len(sub)}, true
}

// KeyAddr returns the address a client is counted under: the client
// itself, or for an IPv6 client in a jail with ipv6_prefix, the first
// address of its prefix.
func (j *Jail) KeyAddr(a netip.Addr) netip.Addr {
	if j.IPv6Bits == 0 || !a.Is6() {
		return a
	}
	p, err := a.Prefix(j.IPv6Bits)
	if err != nil {
		return a
	}
	return p.Addr()
}

// BanPrefix returns what to ban for an offending key address: the address
// alone, or its IPv6 prefix of IPv6Bits.
func (j *Jail) BanPrefix(a netip.Addr) netip.Prefix {
	if j.IPv6Bits != 0 && a.Is6() {
		return netip.PrefixFrom(a, j.IPv6Bits).Masked()
	}
	return netip.PrefixFrom(a, a.BitLen())
}

// Distinct reports whether the jail counts distinct values of a field
// (distinct = "path") and, if so, a hash of ev's value: the caller counts
// the line only when the client's hash was not already counted within
// FindTime.
func (j *Jail) Distinct(ev *apachelog.Event) (uint64, bool) {
	if j.distinct == apachelog.FieldNone {
		return 0, false
	}
	return maphash.Bytes(j.seed, ev.Get(j.distinct)), true
}

// DistinctField returns the field whose distinct values the jail counts, or
// FieldNone when it counts every matching line.
func (j *Jail) DistinctField() apachelog.Field { return j.distinct }

// Compile-time description for status output.
func (j *Jail) String() string {
	if j.Kind == Rate {
		return fmt.Sprintf("%s: rate per %s, %d requests within %s", j.Name, j.Per, j.Limit-1, j.FindTime)
	}
	return fmt.Sprintf("%s: match, %d within %s", j.Name, j.Limit, j.FindTime)
}

// Ignored reports whether addr is in the jail's ignore list.
func (j *Jail) Ignored(addr netip.Addr) bool {
	for _, p := range j.IgnoreIP {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// extOf returns the extension of the last path segment including the dot.
func extOf(path []byte) []byte {
	for i := len(path) - 1; i >= 0; i-- {
		switch path[i] {
		case '.':
			return path[i:]
		case '/':
			return nil
		}
	}
	return nil
}

package rules

import (
	"bytes"
	"hash/maphash"
	"regexp"
	"regexp/syntax"
	"slices"
	"sync/atomic"
	"unicode/utf8"

	"github.com/band-project/band/apachelog"
)

// cond is one compiled condition on an Event. Conditions are ordered so the
// cheap ones (a table lookup, a literal) run before any regex.
type cond struct {
	cost  int
	match func(ev *apachelog.Event) bool
}

// statusSet is a table of HTTP statuses.
type statusSet [600]bool

func newStatusSet(codes []int) *statusSet {
	var s statusSet
	for _, c := range codes {
		if c >= 0 && c < len(s) {
			s[c] = true
		}
	}
	return &s
}

func (s *statusSet) has(code int) bool { return code >= 0 && code < len(s) && s[code] }

// bytesSet matches a field against a small set of literals.
type bytesSet map[string]struct{}

func (s bytesSet) has(b []byte) bool { _, ok := s[string(b)]; return ok }

// fieldRegexp is a regex on one field with a literal prefilter: a substring
// every match must contain, checked with bytes.Contains before the regex runs.
//
// When there is no such literal, sets of bytes play the part: every match
// must contain a byte of each set (for '(?i)/(\(|%28)…', one of '(' and '%'),
// which a scan with a table lookup per byte checks.
type fieldRegexp struct {
	re      *regexp.Regexp
	literal []byte
	sets    []*byteSet
}

func newFieldRegexp(re *regexp.Regexp) fieldRegexp {
	f := fieldRegexp{re: re, literal: requiredLiteral(re.String())}
	if f.literal == nil {
		f.sets = requiredByteSets(re.String())
	}
	return f
}

func (f *fieldRegexp) match(b []byte) bool {
	if len(f.literal) > 0 && !bytes.Contains(b, f.literal) {
		return false
	}
	for _, s := range f.sets {
		if !s.in(b) {
			return false
		}
	}
	return f.re.Match(b)
}

// byteSet is a set of bytes.
type byteSet [256]bool

// in reports whether b contains a byte of the set.
func (s *byteSet) in(b []byte) bool {
	for _, c := range b {
		if s[c] {
			return true
		}
	}
	return false
}

// requiredByteSets returns sets of bytes such that every match of expr
// contains a byte of each (at most 3 sets, the smallest), or nil.
func requiredByteSets(expr string) []*byteSet {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	var subs []*syntax.Regexp
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	} else {
		subs = []*syntax.Regexp{re}
	}
	type sized struct {
		s *byteSet
		n int
	}
	var found []sized
	for _, sub := range subs {
		var s byteSet
		if !firstBytes(sub, &s) {
			continue
		}
		n := 0
		for _, v := range s {
			if v {
				n++
			}
		}
		found = append(found, sized{&s, n})
	}
	slices.SortStableFunc(found, func(a, b sized) int { return a.n - b.n })
	var out []*byteSet
	for i := 0; i < len(found) && i < 3; i++ {
		if found[i].n > 16 {
			break
		}
		out = append(out, found[i].s)
	}
	return out
}

// firstBytes adds to s bytes one of which every match of re contains, and
// reports whether there are such bytes.
func firstBytes(re *syntax.Regexp, s *byteSet) bool {
	switch re.Op {
	case syntax.OpLiteral:
		if len(re.Rune) == 0 {
			return false
		}
		return addRune(s, re.Rune[0], re.Flags&syntax.FoldCase != 0)
	case syntax.OpCharClass:
		n := 0
		for i := 0; i+1 < len(re.Rune); i += 2 {
			n += int(re.Rune[i+1]-re.Rune[i]) + 1
			if n > 16 {
				return false
			}
		}
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if !addRune(s, r, false) {
					return false
				}
			}
		}
		return n > 0
	case syntax.OpCapture, syntax.OpPlus:
		return firstBytes(re.Sub[0], s)
	case syntax.OpRepeat:
		return re.Min >= 1 && firstBytes(re.Sub[0], s)
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			var t byteSet
			if firstBytes(sub, &t) {
				for i, v := range t {
					s[i] = s[i] || v
				}
				return true
			}
		}
		return false
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if !firstBytes(sub, s) {
				return false
			}
		}
		return true
	}
	return false
}

// addRune adds r's first byte (both ASCII cases when fold) to s.
func addRune(s *byteSet, r rune, fold bool) bool {
	if r >= utf8.RuneSelf {
		var buf [utf8.UTFMax]byte
		utf8.EncodeRune(buf[:], r)
		s[buf[0]] = true
		if fold {
			return false // other cases may start differently
		}
		return true
	}
	c := byte(r)
	s[c] = true
	if fold {
		s[lower(c)] = true
		if 'a' <= c && c <= 'z' {
			s[c-'a'+'A'] = true
		}
	}
	return true
}

// anyRegexp matches if any of its regexes matches.
type anyRegexp []fieldRegexp

func (a anyRegexp) match(b []byte) bool {
	for i := range a {
		if a[i].match(b) {
			return true
		}
	}
	return false
}

// requiredLiteral returns the longest literal that every match of the
// expression must contain (case-sensitive), or nil when there is none.
func requiredLiteral(expr string) []byte {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	var best []rune
	consider := func(r *syntax.Regexp) {
		if r.Op == syntax.OpLiteral && r.Flags&syntax.FoldCase == 0 && len(r.Rune) > len(best) {
			best = r.Rune
		}
	}
	switch re.Op {
	case syntax.OpLiteral:
		consider(re)
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			consider(sub)
			if sub.Op == syntax.OpCapture && len(sub.Sub) == 1 {
				consider(sub.Sub[0])
			}
		}
	case syntax.OpCapture:
		if len(re.Sub) == 1 {
			consider(re.Sub[0])
		}
	}
	if len(best) == 0 {
		return nil
	}
	return []byte(string(best))
}

// wordSet finds any of a set of literal words in a field, case-insensitively.
// Words of four bytes or more are indexed by a hash of their first four
// lower-cased bytes in a 64 Kbit filter, so a field is scanned once with a
// multiply and a bit test per byte, whatever the set's size (a list of a
// hundred bad-bot names costs what a list of five does); only positions
// passing the filter look the words up. Shorter words use a table of their
// first two bytes.
type wordSet struct {
	seed   maphash.Seed
	memo   [1024]atomic.Uint64  // hash of a field with its low bit set to the answer
	quads  [1 << 16 / 64]uint64 // filter over hashes of the first four bytes
	byQuad map[uint32][][]byte  // lower-cased words by their first four bytes
	pairs  [1 << 16 / 64]uint64 // bitset of short words' first two bytes
	byTwo  map[[2]byte][][]byte // lower-cased words of 2 or 3 bytes
	short  [][]byte             // words of one byte
}

func newWordSet(words []string) *wordSet {
	w := &wordSet{seed: maphash.MakeSeed(), byQuad: make(map[uint32][][]byte), byTwo: make(map[[2]byte][][]byte)}
	for _, s := range words {
		b := bytes.ToLower([]byte(s))
		switch {
		case len(b) == 0:
			continue
		case len(b) == 1:
			w.short = append(w.short, b)
		case len(b) < 4:
			k := pairIndex(b[0], b[1])
			w.pairs[k/64] |= 1 << (k % 64)
			w.byTwo[[2]byte{b[0], b[1]}] = append(w.byTwo[[2]byte{b[0], b[1]}], b)
		default:
			q := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			h := quadHash(q)
			w.quads[h/64] |= 1 << (h % 64)
			w.byQuad[q] = append(w.byQuad[q], b)
		}
	}
	return w
}

func quadHash(q uint32) uint32 { return (q * 0x9E3779B1) >> 16 }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// match reports whether b holds any of the words. User agents repeat line
// after line, so answers are remembered by a hash of the field in a small
// direct-mapped table (atomic, so the set stays safe for concurrent use):
// a repeated agent costs one hash instead of a scan.
func (w *wordSet) match(b []byte) bool {
	h := maphash.Bytes(w.seed, b) &^ 1
	slot := &w.memo[h%uint64(len(w.memo))]
	if v := slot.Load(); v&^1 == h && v != 0 {
		return v&1 == 1
	}
	found := w.scan(b)
	v := h
	if found {
		v |= 1
	}
	slot.Store(v)
	return found
}

func (w *wordSet) scan(b []byte) bool {
	for _, s := range w.short {
		for _, c := range b {
			if lower(c) == s[0] {
				return true
			}
		}
	}
	if len(w.byTwo) > 0 {
		for i := 0; i+1 < len(b); i++ {
			c, d := lower(b[i]), lower(b[i+1])
			if k := pairIndex(c, d); w.pairs[k/64]&(1<<(k%64)) == 0 {
				continue
			}
			for _, word := range w.byTwo[[2]byte{c, d}] {
				if hasFoldPrefix(b[i:], word) {
					return true
				}
			}
		}
	}
	if len(w.byQuad) > 0 && len(b) >= 4 {
		var q uint32
		for i, c := range b {
			q = q<<8 | uint32(lower(c))
			if i < 3 {
				continue
			}
			if h := quadHash(q); w.quads[h/64]&(1<<(h%64)) == 0 {
				continue
			}
			for _, word := range w.byQuad[q] {
				if hasFoldPrefix(b[i-3:], word) {
					return true
				}
			}
		}
	}
	return false
}

func pairIndex(a, b byte) uint { return uint(a)<<8 | uint(b) }

// hasFoldPrefix reports whether b starts with the lower-case word, ignoring
// ASCII case.
func hasFoldPrefix(b, word []byte) bool {
	if len(b) < len(word) {
		return false
	}
	for i, c := range word {
		if lower(b[i]) != c {
			return false
		}
	}
	return true
}

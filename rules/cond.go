package rules

import (
	"bytes"
	"regexp"
	"regexp/syntax"

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
type fieldRegexp struct {
	re      *regexp.Regexp
	literal []byte
}

func newFieldRegexp(re *regexp.Regexp) fieldRegexp {
	return fieldRegexp{re: re, literal: requiredLiteral(re.String())}
}

func (f *fieldRegexp) match(b []byte) bool {
	if len(f.literal) > 0 && !bytes.Contains(b, f.literal) {
		return false
	}
	return f.re.Match(b)
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
// Words are indexed by their first two lower-cased bytes so a field is
// scanned once, with a table lookup per position, whatever the set's size.
type wordSet struct {
	pairs [1 << 16 / 64]uint64 // bitset of the words' first two bytes
	byTwo map[[2]byte][][]byte // lower-cased words by their first two bytes
	short [][]byte             // words of one byte
}

func newWordSet(words []string) *wordSet {
	w := &wordSet{byTwo: make(map[[2]byte][][]byte)}
	for _, s := range words {
		b := bytes.ToLower([]byte(s))
		switch len(b) {
		case 0:
			continue
		case 1:
			w.short = append(w.short, b)
		default:
			w.pairs[pairIndex(b[0], b[1])/64] |= 1 << (pairIndex(b[0], b[1]) % 64)
			k := [2]byte{b[0], b[1]}
			w.byTwo[k] = append(w.byTwo[k], b)
		}
	}
	return w
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func (w *wordSet) match(b []byte) bool {
	for _, s := range w.short {
		for _, c := range b {
			if lower(c) == s[0] {
				return true
			}
		}
	}
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

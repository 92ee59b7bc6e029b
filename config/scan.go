package config

import (
	"strconv"
	"strings"
)

// keyLines maps a key path (see joinKey) to the line it is written on.
// Arrays of tables and array elements get a numeric component:
// "source", "0", "path" and "jail", "x", "path", "2".
type keyLines map[string]int

// joinKey makes a map key of a key path.
func joinKey(path ...string) string { return strings.Join(path, "\x00") }

// scanKeyLines finds the line of every key, table header and array element
// in a TOML document. BurntSushi/toml keeps key positions private, so this is
// a small structural scanner; it runs only on text the TOML parser accepted,
// and gives up quietly (keeping what it found) on anything it does not follow.
func scanKeyLines(src string) keyLines {
	s := &scanner{src: src, line: 1, out: keyLines{}, arrays: map[string]int{}}
	s.document()
	return s.out
}

type scanner struct {
	src    string
	i      int
	line   int
	out    keyLines
	arrays map[string]int // array-of-tables path → number of elements so far
}

func (s *scanner) peek(n int) string {
	if s.i+n > len(s.src) {
		return s.src[s.i:]
	}
	return s.src[s.i : s.i+n]
}

func (s *scanner) advance() {
	if s.src[s.i] == '\n' {
		s.line++
	}
	s.i++
}

func (s *scanner) record(path []string, line int) {
	k := joinKey(path...)
	if _, ok := s.out[k]; !ok {
		s.out[k] = line
	}
}

// skipSpace skips blanks and, with newlines, also newlines and comments.
func (s *scanner) skipSpace(newlines bool) {
	for s.i < len(s.src) {
		switch c := s.src[s.i]; {
		case c == ' ' || c == '\t' || c == '\r':
			s.i++
		case newlines && c == '\n':
			s.advance()
		case newlines && c == '#':
			s.skipLine()
		default:
			return
		}
	}
}

// skipLine moves to the start of the next line.
func (s *scanner) skipLine() {
	for s.i < len(s.src) && s.src[s.i] != '\n' {
		s.i++
	}
	if s.i < len(s.src) {
		s.advance()
	}
}

func (s *scanner) document() {
	var table []string
	for {
		s.skipSpace(true)
		if s.i >= len(s.src) {
			return
		}
		line := s.line
		if s.peek(2) == "[[" {
			s.i += 2
			key, ok := s.key()
			if !ok {
				return
			}
			p := s.resolve(key, true)
			k := joinKey(p...)
			n := s.arrays[k]
			s.arrays[k] = n + 1
			s.record(p, line)
			table = append(p, strconv.Itoa(n))
			s.record(table, line)
			s.skipLine()
			continue
		}
		if s.src[s.i] == '[' {
			s.i++
			key, ok := s.key()
			if !ok {
				return
			}
			table = s.resolve(key, false)
			for n := 1; n <= len(table); n++ {
				s.record(table[:n], line)
			}
			s.skipLine()
			continue
		}
		key, ok := s.key()
		if !ok || s.i >= len(s.src) || s.src[s.i] != '=' {
			return
		}
		s.i++
		p := append(append([]string(nil), table...), key...)
		for n := len(table) + 1; n <= len(p); n++ {
			s.record(p[:n], line)
		}
		if !s.value(p) {
			return
		}
		s.skipLine()
	}
}

// resolve inserts the current element index after every prefix of key that
// names an array of tables ([[source]] then [source.x] means source[last].x).
func (s *scanner) resolve(key []string, isArray bool) []string {
	var p []string
	for i, k := range key {
		p = append(p, k)
		if isArray && i == len(key)-1 {
			break
		}
		if n, ok := s.arrays[joinKey(p...)]; ok {
			p = append(p, strconv.Itoa(n-1))
		}
	}
	return p
}

// key reads a possibly dotted, possibly quoted key and the blanks after it.
func (s *scanner) key() ([]string, bool) {
	var parts []string
	for {
		s.skipSpace(false)
		if s.i >= len(s.src) {
			return nil, false
		}
		switch s.src[s.i] {
		case '"':
			start := s.i
			s.i++
			for s.i < len(s.src) && s.src[s.i] != '"' && s.src[s.i] != '\n' {
				if s.src[s.i] == '\\' {
					s.i++
				}
				s.i++
			}
			if s.i >= len(s.src) || s.src[s.i] != '"' {
				return nil, false
			}
			s.i++
			v, err := strconv.Unquote(s.src[start:s.i])
			if err != nil {
				v = s.src[start+1 : s.i-1]
			}
			parts = append(parts, v)
		case '\'':
			s.i++
			start := s.i
			for s.i < len(s.src) && s.src[s.i] != '\'' && s.src[s.i] != '\n' {
				s.i++
			}
			if s.i >= len(s.src) || s.src[s.i] != '\'' {
				return nil, false
			}
			parts = append(parts, s.src[start:s.i])
			s.i++
		default:
			start := s.i
			for s.i < len(s.src) && isBare(s.src[s.i]) {
				s.i++
			}
			if s.i == start {
				return nil, false
			}
			parts = append(parts, s.src[start:s.i])
		}
		s.skipSpace(false)
		if s.i < len(s.src) && s.src[s.i] == '.' {
			s.i++
			continue
		}
		return parts, true
	}
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// value skips one value, recording the lines of array elements and of the
// keys of inline tables under path.
func (s *scanner) value(path []string) bool {
	s.skipSpace(false)
	if s.i >= len(s.src) {
		return false
	}
	switch {
	case s.peek(3) == `"""` || s.peek(3) == "'''":
		q := s.peek(3)
		s.i += 3
		for s.i < len(s.src) {
			if q == `"""` && s.src[s.i] == '\\' {
				s.advance()
				if s.i < len(s.src) {
					s.advance()
				}
				continue
			}
			if s.peek(3) == q {
				s.i += 3
				// A closing delimiter may be followed by up to two more quotes.
				for s.i < len(s.src) && s.src[s.i] == q[0] {
					s.i++
				}
				return true
			}
			s.advance()
		}
		return false
	case s.src[s.i] == '"' || s.src[s.i] == '\'':
		q := s.src[s.i]
		s.i++
		for s.i < len(s.src) && s.src[s.i] != q && s.src[s.i] != '\n' {
			if q == '"' && s.src[s.i] == '\\' {
				s.i++
			}
			s.i++
		}
		if s.i >= len(s.src) || s.src[s.i] != q {
			return false
		}
		s.i++
		return true
	case s.src[s.i] == '[':
		s.i++
		for n := 0; ; n++ {
			s.skipSpace(true)
			if s.i >= len(s.src) {
				return false
			}
			if s.src[s.i] == ']' {
				s.i++
				return true
			}
			el := append(append([]string(nil), path...), strconv.Itoa(n))
			s.record(el, s.line)
			start := s.i
			if !s.value(el) || s.i == start {
				return false
			}
			s.skipSpace(true)
			if s.i < len(s.src) && s.src[s.i] == ',' {
				s.i++
			}
		}
	case s.src[s.i] == '{':
		s.i++
		for {
			s.skipSpace(true)
			if s.i >= len(s.src) {
				return false
			}
			if s.src[s.i] == '}' {
				s.i++
				return true
			}
			line := s.line
			key, ok := s.key()
			if !ok || s.i >= len(s.src) || s.src[s.i] != '=' {
				return false
			}
			s.i++
			p := append(append([]string(nil), path...), key...)
			for n := len(path) + 1; n <= len(p); n++ {
				s.record(p[:n], line)
			}
			if !s.value(p) {
				return false
			}
			s.skipSpace(true)
			if s.i < len(s.src) && s.src[s.i] == ',' {
				s.i++
			}
		}
	default:
		// A number, boolean or date: runs to a delimiter.
		start := s.i
		for s.i < len(s.src) && !strings.ContainsRune(",]}#\n", rune(s.src[s.i])) {
			s.i++
		}
		return s.i > start
	}
}

package apachelog

import "bytes"

// accessState carries what is decided across items of one line.
type accessState struct {
	statusPrio int8
	tp         tparts
	timeStart  int
	timeEnd    int
	req        []byte
	hasReq     bool
}

func (p *Parser) parseAccess(line []byte, ev *Event) (int, string) {
	ev.Kind = Access
	var st accessState
	st.timeStart = -1
	i := 0
	for k := range p.items {
		it := &p.items[k]
		if it.kind == kLit {
			if !bytes.HasPrefix(line[i:], it.lit) {
				return i, "expected " + litName(it.lit)
			}
			i += len(it.lit)
			continue
		}
		rest := line[i:]
		var n int // length of the value's extent
		v := rest
		switch it.scan {
		case scanQuoted:
			n = quotedEnd(rest)
			if n < 0 {
				return i, it.dir + ": unterminated quoted field"
			}
			v = rest[:n]
		case scanBracket:
			if len(rest) == 0 || rest[0] != '[' {
				return i, it.dir + ": expected '[' before time"
			}
			e := bytes.IndexByte(rest, ']')
			if e < 0 {
				return i, it.dir + ": unterminated time"
			}
			v, n = rest[1:e], e+1
		case scanNumber:
			n = numberEnd(rest)
			if n == 0 {
				return i, it.dir + ": expected a number or '-'"
			}
			v = rest[:n]
		case scanStrftime:
			var ok bool
			n, ok = it.tf.scan(rest, &st.tp)
			if !ok {
				return i + n, it.dir + ": time does not fit the format"
			}
			v = rest[:n]
		case scanUntil:
			n = bytes.Index(rest, it.lit)
			if n < 0 {
				return i, it.dir + ": not followed by " + litName(it.lit)
			}
			v = rest[:n]
		case scanSpace:
			n = bytes.IndexByte(rest, ' ')
			if n < 0 {
				n = len(rest)
			}
			v = rest[:n]
		case scanPath:
			for n < len(rest) && rest[n] != '?' && rest[n] != ' ' {
				n++
			}
			v = rest[:n]
		case scanEnd:
			n = len(rest)
		}
		if msg := p.apply(it, v, ev, &st); msg != "" {
			return i, it.dir + ": " + msg
		}
		if it.kind == kTime || it.kind == kStrftime {
			if st.timeStart < 0 {
				st.timeStart = i
			}
			st.timeEnd = i + n
			if it.kind == kTime {
				st.timeStart, st.timeEnd = i+1, i+n-1
			}
		}
		i += n
	}
	if i != len(line) {
		return i, "unexpected text after the last directive"
	}
	if st.tp.set {
		t, ok := st.tp.time(p.loc, p.zones)
		if !ok {
			return st.timeStart, "time out of range"
		}
		ev.Time = t
		ev.fields[FieldTime] = line[st.timeStart:st.timeEnd]
	}
	if st.hasReq {
		m, path, q, proto := splitRequest(st.req)
		if !p.hasMethod {
			ev.fields[FieldMethod] = m
		}
		if !p.hasPath {
			ev.fields[FieldPath] = path
		}
		if !p.hasQuery {
			ev.fields[FieldQuery] = q
		}
		if !p.hasProto {
			ev.fields[FieldProtocol] = proto
		}
	}
	return 0, ""
}

// apply stores one value; it returns a message if the value is invalid.
func (p *Parser) apply(it *item, v []byte, ev *Event, st *accessState) string {
	switch it.kind {
	case kText:
		if it.field != FieldNone {
			ev.fields[it.field] = dash(v)
		}
	case kHost:
		ev.fields[FieldRemoteHost] = dash(v)
		if p.clientFrom == 'h' {
			ev.Client = parseAddr(v)
		}
	case kAddr:
		ev.fields[FieldRemoteAddr] = dash(v)
		ev.Client = parseAddr(v)
	case kPeer:
		ev.fields[FieldPeerAddr] = dash(v)
		ev.Peer = parseAddr(v)
	case kStatus:
		n, ok := number(v)
		if !ok || n > 999 {
			return "bad status"
		}
		if it.prio >= st.statusPrio {
			st.statusPrio = it.prio
			ev.Status = int(n)
			ev.fields[FieldStatus] = dash(v)
		}
	case kBytes:
		n, ok := number(v)
		if !ok {
			return "bad byte count"
		}
		ev.Bytes = n
		ev.fields[FieldBytes] = dash(v)
	case kBytesOut:
		n, ok := number(v)
		if !ok {
			return "bad byte count"
		}
		ev.fields[FieldBytesOut] = dash(v)
		if !p.hasB {
			ev.Bytes = n
			ev.fields[FieldBytes] = dash(v)
		}
	case kNum:
		if _, ok := number(v); !ok {
			return "expected a number or '-'"
		}
		if it.field != FieldNone {
			ev.fields[it.field] = dash(v)
		}
	case kTime:
		if !parseCLFTime(v, &st.tp) {
			return "bad time, want [02/Jan/2006:15:04:05 -0700]"
		}
	case kRequest:
		ev.fields[FieldRequest] = dash(v)
		st.req, st.hasReq = v, true
	case kQuery:
		if len(v) > 0 && v[0] == '?' {
			v = v[1:]
		}
		ev.fields[FieldQuery] = dash(v)
	case kHeader:
		ev.Headers = append(ev.Headers, Header{Name: it.name, Response: it.resp, Value: dash(v)})
	}
	return ""
}

// splitRequest splits a request line "GET /p?q HTTP/1.1". A line that does
// not look like a request (junk, TLS bytes, "-") yields nothing.
func splitRequest(r []byte) (method, path, query, proto []byte) {
	sp := bytes.IndexByte(r, ' ')
	if sp <= 0 || !isMethod(r[:sp]) {
		return nil, nil, nil, nil
	}
	uri := r[sp+1:]
	if ls := bytes.LastIndexByte(uri, ' '); ls >= 0 && bytes.HasPrefix(uri[ls+1:], []byte("HTTP/")) {
		uri, proto = uri[:ls], uri[ls+1:]
	}
	if len(uri) == 0 {
		return nil, nil, nil, nil
	}
	method = r[:sp]
	if q := bytes.IndexByte(uri, '?'); q >= 0 {
		path, query = uri[:q], uri[q+1:]
		if len(query) == 0 {
			query = nil
		}
	} else {
		path = uri
	}
	if len(path) == 0 {
		path = nil
	}
	return method, path, query, proto
}

func isMethod(b []byte) bool {
	if len(b) == 0 || len(b) > 32 {
		return false
	}
	for _, c := range b {
		if !('A' <= c && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// quotedEnd returns the index of the first '"' in b not escaped by Apache
// (\" ; a backslash is itself written \\), or -1.
func quotedEnd(b []byte) int {
	off := 0
	for {
		j := bytes.IndexByte(b[off:], '"')
		if j < 0 {
			return -1
		}
		j += off
		k := j
		for k > 0 && b[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 {
			return j
		}
		off = j + 1
	}
}

// numberEnd returns the length of a leading "-" or run of digits.
func numberEnd(b []byte) int {
	if len(b) > 0 && b[0] == '-' {
		return 1
	}
	n := 0
	for n < len(b) && '0' <= b[n] && b[n] <= '9' {
		n++
	}
	return n
}

// number parses "-" (0) or up to 18 decimal digits.
func number(b []byte) (int64, bool) {
	if len(b) == 1 && b[0] == '-' {
		return 0, true
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// dash returns nil for "-" and empty values, which Apache writes for
// "not available".
func dash(b []byte) []byte {
	if len(b) == 0 || len(b) == 1 && b[0] == '-' {
		return nil
	}
	return b
}

func litName(l []byte) string {
	switch string(l) {
	case " ":
		return "a space"
	case `"`:
		return "a quote"
	}
	return "\"" + string(l) + "\""
}

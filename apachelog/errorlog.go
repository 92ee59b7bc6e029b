package apachelog

import "bytes"

// parseError reads an error-log line in Apache's default ErrorLogFormat:
//
//	2.4: [Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1234:tid 5678] [client 192.0.2.1:5432] AH00128: File does not exist: /x
//	2.2: [Wed Oct 11 14:32:52 2000] [error] [client 192.0.2.1] File does not exist: /x
//
// The stamp may also be ErrorLogFormat's %{cu}t: [2000-10-11 14:32:52.123456].
//
// The client address is read only from the [client …] token in its place
// after the pid (and an optional "(errno)text: " and debug "file.c(n): "),
// never from the message, which clients partly control.
func (p *Parser) parseError(line []byte, ev *Event) (int, string) {
	ev.Kind = Error
	if len(line) == 0 || line[0] != '[' {
		return 0, "expected '[' starting an error-log time"
	}
	end := bytes.IndexByte(line, ']')
	if end < 0 {
		return 0, "unterminated error-log time"
	}
	var tp tparts
	if !parseCtime(line[1:end], &tp) && !parseISOStamp(line[1:end], &tp) {
		return 1, "bad error-log time, want Wed Oct 11 14:32:52.123456 2000"
	}
	t, ok := tp.time(p.loc, p.zones)
	if !ok {
		return 1, "time out of range"
	}
	ev.Time = t
	ev.fields[FieldTime] = line[1:end]
	i := end + 1

	// [module:level] (2.4) or [level] (2.2)
	if !bytes.HasPrefix(line[i:], []byte(" [")) {
		return i, "expected ' [' before the level"
	}
	i += 2
	e := bytes.IndexByte(line[i:], ']')
	if e <= 0 {
		return i, "expected [module:level] or [level]"
	}
	tok := line[i : i+e]
	is24 := false
	if c := bytes.IndexByte(tok, ':'); c >= 0 {
		ev.fields[FieldModule] = dash(tok[:c])
		tok, is24 = tok[c+1:], true
	}
	if !isWord(tok) {
		return i, "bad log level"
	}
	ev.fields[FieldLevel] = tok
	i += e + 1

	// [pid N] or [pid N:tid M] (2.4)
	if bytes.HasPrefix(line[i:], []byte(" [pid ")) {
		i += 6
		e := bytes.IndexByte(line[i:], ']')
		if e < 0 {
			return i, "unterminated [pid …]"
		}
		pid := line[i : i+e]
		if c := bytes.IndexByte(pid, ':'); c >= 0 {
			pid = pid[:c]
		}
		if !allDigits(pid) {
			return i, "bad pid"
		}
		ev.fields[FieldPid] = pid
		i += e + 1
		is24 = true
	}
	if i < len(line) {
		if line[i] != ' ' {
			return i, "expected a space after the header tokens"
		}
		i++
	}

	if is24 {
		// debug levels: "mod_x.c(123): "
		if sp := bytes.IndexByte(line[i:], ' '); sp > 3 && bytes.HasSuffix(line[i:i+sp], []byte("):")) &&
			bytes.Contains(line[i:i+sp], []byte(".c(")) {
			i += sp + 1
		}
		// "(13)Permission denied: " before [client …]
		if j := skipErrno(line[i:]); j > 0 && (bytes.HasPrefix(line[i+j:], []byte("[client ")) ||
			bytes.HasPrefix(line[i+j:], []byte("[remote "))) {
			i += j
		}
	}

	// One [client …] or [remote …] token; a second one (ModSecurity repeats
	// [client …]) is message text and never replaces the first.
	if client := bytes.HasPrefix(line[i:], []byte("[client ")); client ||
		bytes.HasPrefix(line[i:], []byte("[remote ")) {
		j := i + 8
		e := addrTokenEnd(line[j:])
		if e < 0 {
			return j, "unterminated [client …]"
		}
		text, a := splitAddrPort(line[j:j+e], is24)
		if client {
			ev.fields[FieldRemoteAddr], ev.Client = dash(text), a
		} else {
			ev.fields[FieldPeerAddr], ev.Peer = dash(text), a
		}
		i = j + e + 1
		if i < len(line) && line[i] == ' ' {
			i++
		}
	}

	if rest := line[i:]; len(rest) >= 8 && rest[0] == 'A' && rest[1] == 'H' && allDigits(rest[2:7]) && rest[7] == ':' {
		ev.fields[FieldErrorCode] = rest[:7]
		i += 8
		if i < len(line) && line[i] == ' ' {
			i++
		}
	}
	msg := line[i:]
	if r := bytes.LastIndex(msg, []byte(", referer: ")); r >= 0 {
		ev.fields[FieldReferer] = dash(msg[r+11:])
		msg = msg[:r]
	}
	if len(msg) > 0 {
		ev.fields[FieldMessage] = msg
	}
	return 0, ""
}

// addrTokenEnd finds the ']' closing a [client …] token, allowing one
// bracketed IPv6 address inside it.
func addrTokenEnd(b []byte) int {
	if len(b) > 0 && b[0] == '[' {
		c := bytes.IndexByte(b, ']')
		if c < 0 {
			return -1
		}
		e := bytes.IndexByte(b[c+1:], ']')
		if e < 0 {
			return -1
		}
		return c + 1 + e
	}
	return bytes.IndexByte(b, ']')
}

// skipErrno returns the length of a leading "(13)Permission denied: ", or 0.
func skipErrno(b []byte) int {
	if len(b) < 4 || b[0] != '(' {
		return 0
	}
	n := 1
	if b[n] == '-' {
		n++
	}
	_, k := readDigits(b[n:], 10)
	if k == 0 || n+k >= len(b) || b[n+k] != ')' {
		return 0
	}
	c := bytes.Index(b[n+k:], []byte(": "))
	if c < 0 {
		return 0
	}
	return n + k + c + 2
}

func isWord(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isAlpha(c) && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

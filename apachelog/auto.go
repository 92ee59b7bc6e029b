package apachelog

import "bytes"

// parseAuto picks a built-in format by the line's shape, not by trying
// every format: '[' starts an error-log line; a first token "name:port"
// followed by a host (not "-") is vhost_combined; a line ending in a quote
// is combined, otherwise common. Only a line that fails vhost_combined is
// tried again as combined/common.
func (p *Parser) parseAuto(line []byte, ev *Event) (int, string) {
	if len(line) == 0 {
		return 0, "empty line"
	}
	if line[0] == '[' {
		return p.errlog.parseError(line, ev)
	}
	if sp := bytes.IndexByte(line, ' '); sp > 0 && hasPortSuffix(line[:sp]) &&
		!bytes.HasPrefix(line[sp:], []byte(" - ")) {
		_, msg := p.vhost.parseAccess(line, ev)
		if msg == "" {
			return 0, ""
		}
		ev.Reset()
		ev.Line = line
	}
	if line[len(line)-1] == '"' {
		return p.combined.parseAccess(line, ev)
	}
	return p.common.parseAccess(line, ev)
}

// hasPortSuffix reports whether b ends in ":digits" after something.
func hasPortSuffix(b []byte) bool {
	c := bytes.LastIndexByte(b, ':')
	return c > 0 && allDigits(b[c+1:])
}

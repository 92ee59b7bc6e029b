package apachelog

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrMalformed is wrapped by every error Parse returns for a line that does
// not fit the parser's format.
var ErrMalformed = errors.New("malformed log line")

// ParseError says where and why a line did not fit the format. It unwraps to
// ErrMalformed.
type ParseError struct {
	Pos int    // byte offset in the line where parsing stopped
	Msg string // what was expected there
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("malformed log line at byte %d: %s", e.Pos, e.Msg)
}

// Unwrap returns ErrMalformed.
func (e *ParseError) Unwrap() error { return ErrMalformed }

// Built-in format strings, as Debian's apache2.conf defines them. Upstream
// Apache uses %b where Debian uses %O; both parse the same way.
const (
	FormatCommon        = `%h %l %u %t "%r" %>s %O`
	FormatCombined      = `%h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"`
	FormatVhostCombined = `%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"`
)

// Option configures a Parser.
type Option func(*Parser)

// WithLocation sets the zone for times written without an offset: error-log
// stamps and %{format}t without %z. The default is time.Local.
func WithLocation(loc *time.Location) Option {
	return func(p *Parser) {
		if loc != nil {
			p.loc = loc
		}
	}
}

type mode uint8

const (
	modeAccess mode = iota + 1
	modeError
	modeAuto
)

// Parser turns lines of one log format into Events. A Parser holds small
// caches (time zones by offset) and must be used by one goroutine at a time;
// compile one per log file being followed.
type Parser struct {
	format string
	mode   mode
	loc    *time.Location
	zones  *zoneCache

	// access formats
	items      []item
	has        [NumFields]bool
	clientFrom byte // 'a' (%a), 'h' (%h) or 0
	hasB       bool // %b or %B present: ev.Bytes comes from them, not %O
	hasMethod  bool
	hasPath    bool
	hasQuery   bool
	hasProto   bool
	nHeaders   int

	// auto
	common, combined, vhost, errlog *Parser
}

// Compile returns a Parser for format: a built-in name ("common", "combined",
// "vhost_combined", "error", "auto") or an Apache LogFormat string such as
// `%h %l %u %t "%r" %>s %b`. "error" reads Apache 2.2 and 2.4 error logs in
// their default ErrorLogFormat; "auto" recognises common, combined,
// vhost_combined and error-log lines line by line.
func Compile(format string, opts ...Option) (*Parser, error) {
	p := &Parser{format: format, loc: time.Local, zones: newZoneCache()}
	for _, o := range opts {
		o(p)
	}
	switch format {
	case "common":
		return p, p.compileAccess(FormatCommon)
	case "combined":
		return p, p.compileAccess(FormatCombined)
	case "vhost_combined":
		return p, p.compileAccess(FormatVhostCombined)
	case "error":
		p.mode = modeError
		p.has[FieldTime], p.has[FieldRemoteAddr], p.has[FieldPeerAddr] = true, true, true
		p.has[FieldModule], p.has[FieldLevel], p.has[FieldPid] = true, true, true
		p.has[FieldErrorCode], p.has[FieldMessage], p.has[FieldReferer] = true, true, true
		return p, nil
	case "auto":
		p.mode = modeAuto
		for _, sub := range []struct {
			dst **Parser
			f   string
		}{{&p.common, "common"}, {&p.combined, "combined"}, {&p.vhost, "vhost_combined"}, {&p.errlog, "error"}} {
			s, err := Compile(sub.f)
			if err != nil {
				return nil, fmt.Errorf("compiling %s for auto: %w", sub.f, err)
			}
			s.loc, s.zones = p.loc, p.zones
			for f, ok := range s.has {
				p.has[f] = p.has[f] || ok
			}
			*sub.dst = s
		}
		return p, nil
	}
	if strings.TrimSpace(format) == "" {
		return nil, errors.New("compiling log format: empty format")
	}
	if err := p.compileAccess(format); err != nil {
		return nil, err
	}
	return p, nil
}

// MustCompile is Compile for formats known to be valid; it panics on error.
func MustCompile(format string, opts ...Option) *Parser {
	p, err := Compile(format, opts...)
	if err != nil {
		panic(err)
	}
	return p
}

// Format returns the format as passed to Compile.
func (p *Parser) Format() string { return p.format }

// Kind returns the kind of Event the parser produces: Access or Error, or 0
// for "auto", whose lines may be either.
func (p *Parser) Kind() Kind {
	switch p.mode {
	case modeAccess:
		return Access
	case modeError:
		return Error
	}
	return 0
}

// HasClient reports whether lines of this format carry a client address
// (%a or %h in a LogFormat; always for error logs and "auto").
func (p *Parser) HasClient() bool {
	return p.mode != modeAccess || p.clientFrom != 0
}

// Has reports whether the format can fill field f.
func (p *Parser) Has(f Field) bool {
	return f < NumFields && p.has[f]
}

// Parse fills ev (after resetting it) from one line, with or without its
// trailing newline. Byte slices in ev point into line. It returns a
// *ParseError wrapping ErrMalformed when the line does not fit the format;
// ev then holds only Line. Parse does not allocate for the built-in formats.
func (p *Parser) Parse(line []byte, ev *Event) error {
	ev.Reset()
	line = trimEOL(line)
	ev.Line = line
	pos, msg := p.parse(line, ev)
	if msg != "" {
		ev.Reset()
		ev.Line = line
		return &ParseError{Pos: pos, Msg: msg}
	}
	return nil
}

func (p *Parser) parse(line []byte, ev *Event) (int, string) {
	switch p.mode {
	case modeError:
		return p.parseError(line, ev)
	case modeAuto:
		return p.parseAuto(line, ev)
	}
	if cap(ev.Headers) < p.nHeaders {
		ev.Headers = make([]Header, 0, p.nHeaders)
	}
	return p.parseAccess(line, ev)
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// Package apachelog turns Apache access and error log lines into Events, using
// Apache's own LogFormat language, without allocating per field.
//
// Compile a Parser once per log (a LogFormat string or a built-in name:
// common, combined, vhost_combined, error, auto) and call Parse with one
// reused Event per line. Client is taken only from where Apache writes the
// client (%a, %h, an error line's [client …] token), never from text a
// client controls.
package apachelog

import (
	"net/netip"
	"time"
)

// Kind says which log an Event came from.
type Kind uint8

const (
	Access Kind = iota + 1 // an access-log line (LogFormat)
	Error                  // an error-log line (Apache 2.2 or 2.4 ErrorLogFormat)
)

// String returns "access", "error" or "unknown".
func (k Kind) String() string {
	switch k {
	case Access:
		return "access"
	case Error:
		return "error"
	}
	return "unknown"
}

// Field names one parsed part of a line. Rules match on fields, never on whole
// lines when a field will do.
type Field uint8

const (
	FieldNone         Field = iota
	FieldRemoteHost         // %h as written (an address, or a name with HostnameLookups)
	FieldRemoteAddr         // %a (client address, mod_remoteip's useragent IP)
	FieldPeerAddr           // %{c}a (the TCP peer, e.g. a proxy)
	FieldIdent              // %l
	FieldUser               // %u (client-controlled)
	FieldTime               // %t or %{format}t, as written, without brackets
	FieldRequest            // %r (client-controlled)
	FieldStatus             // %>s (final status) or %s
	FieldBytes              // %b / %B, or %O when the format has neither (Debian's formats)
	FieldMethod             // %m, or from %r
	FieldPath               // %U, or the path of %r without the query (client-controlled)
	FieldQuery              // %q, or the query of %r without '?' (client-controlled)
	FieldProtocol           // %H, or from %r
	FieldVHost              // %v (canonical ServerName)
	FieldServerName         // %V (UseCanonicalName-dependent server name; client-controlled Host)
	FieldPort               // %p
	FieldReferer            // %{Referer}i (client-controlled)
	FieldUserAgent          // %{User-Agent}i (client-controlled)
	FieldForwardedFor       // %{X-Forwarded-For}i (client-controlled unless from a trusted proxy)
	FieldDuration           // %D (µs) or %T (s), as written
	FieldConnStatus         // %X
	FieldBytesIn            // %I
	FieldBytesOut           // %O
	FieldModule             // error log: module (2.4) e.g. "auth_basic"
	FieldLevel              // error log: level e.g. "error"
	FieldPid                // error log: pid
	FieldErrorCode          // error log: AHnnnnn
	FieldMessage            // error log: the message after [client …] and the AH code (partly client-controlled)
	NumFields
)

var fieldNames = [NumFields]string{
	FieldRemoteHost: "remote_host", FieldRemoteAddr: "remote_addr", FieldPeerAddr: "peer_addr",
	FieldIdent: "ident", FieldUser: "user", FieldTime: "time", FieldRequest: "request",
	FieldStatus: "status", FieldBytes: "bytes", FieldMethod: "method", FieldPath: "path",
	FieldQuery: "query", FieldProtocol: "protocol", FieldVHost: "vhost",
	FieldServerName: "server_name", FieldPort: "port", FieldReferer: "referer",
	FieldUserAgent: "user_agent", FieldForwardedFor: "x_forwarded_for", FieldDuration: "duration",
	FieldConnStatus: "conn_status", FieldBytesIn: "bytes_in", FieldBytesOut: "bytes_out",
	FieldModule: "module", FieldLevel: "level", FieldPid: "pid", FieldErrorCode: "error_code",
	FieldMessage: "message",
}

// String returns the field's name as used in jail definitions.
func (f Field) String() string {
	if f < NumFields && fieldNames[f] != "" {
		return fieldNames[f]
	}
	return "none"
}

// FieldByName returns the field a jail names, or FieldNone.
func FieldByName(name string) Field {
	for f, n := range fieldNames {
		if n == name && n != "" {
			return Field(f)
		}
	}
	return FieldNone
}

// Header is a request (%{Name}i) or response (%{Name}o) header other than the
// ones with a Field of their own.
type Header struct {
	Name     string // as written in the LogFormat, e.g. "Cookie"
	Response bool   // %{Name}o
	Value    []byte
}

// Event is one parsed line. Byte slices point into the line passed to Parse
// and are valid only until the next call with the same Event; an Event is
// reused line after line so that parsing does not allocate.
type Event struct {
	Kind Kind
	// Client is the address Apache recorded for the client: %a if the format
	// has it, else %h when it is an address; for error lines the [client …]
	// address. It is never taken from a client-controlled field.
	Client netip.Addr
	// Peer is %{c}a when logged: the TCP peer (a proxy when mod_remoteip is on).
	Peer netip.Addr
	// Time is the line's own time, in the offset written in the line; error-log
	// lines, which carry none, are in the parser's location (WithLocation).
	Time   time.Time
	Status int   // final status, 0 if not logged or "-"
	Bytes  int64 // response size, 0 for "-"

	Line    []byte // the whole line, without the trailing newline
	fields  [NumFields][]byte
	Headers []Header // other logged headers, in format order
}

// Get returns the text of a field as written in the line (nil if not logged
// or "-").
func (e *Event) Get(f Field) []byte {
	if f >= NumFields {
		return nil
	}
	return e.fields[f]
}

// Set stores a field's text; parsers and tests use it.
func (e *Event) Set(f Field, v []byte) {
	if f < NumFields {
		e.fields[f] = v
	}
}

// Header returns the value of a logged header other than those with their
// own Field (case-insensitive name), or nil.
func (e *Event) Header(name string, response bool) []byte {
	for i := range e.Headers {
		h := &e.Headers[i]
		if h.Response == response && equalFold(h.Name, name) {
			return h.Value
		}
	}
	return nil
}

// Reset clears the Event for reuse, keeping its buffers.
func (e *Event) Reset() {
	e.Kind = 0
	e.Client, e.Peer = netip.Addr{}, netip.Addr{}
	e.Time = time.Time{}
	e.Status, e.Bytes = 0, 0
	e.Line = nil
	e.fields = [NumFields][]byte{}
	e.Headers = e.Headers[:0]
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

package apachelog

import (
	"bufio"
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// want is what a test expects of a parsed line; zero members are not checked
// except fields, which must match exactly when non-nil (unlisted fields nil).
type want struct {
	client  string
	peer    string
	status  int
	bytes   int64
	time    string // RFC3339Nano
	fields  map[Field]string
	headers []Header
}

func check(t *testing.T, ev *Event, w want) {
	t.Helper()
	if got := addrString(ev.Client); got != w.client {
		t.Errorf("Client: got %q, want %q", got, w.client)
	}
	if got := addrString(ev.Peer); got != w.peer {
		t.Errorf("Peer: got %q, want %q", got, w.peer)
	}
	if w.status != 0 && ev.Status != w.status {
		t.Errorf("Status: got %d, want %d", ev.Status, w.status)
	}
	if w.bytes != 0 && ev.Bytes != w.bytes {
		t.Errorf("Bytes: got %d, want %d", ev.Bytes, w.bytes)
	}
	if w.time != "" {
		if got := ev.Time.Format(time.RFC3339Nano); got != w.time {
			t.Errorf("Time: got %s, want %s", got, w.time)
		}
	}
	if w.fields != nil {
		for f := Field(1); f < NumFields; f++ {
			got := ev.Get(f)
			if want, ok := w.fields[f]; string(got) != want || (got == nil) == ok {
				t.Errorf("%s: got %q, want %q", f, got, want)
			}
		}
	}
	if w.headers != nil {
		if len(ev.Headers) != len(w.headers) {
			t.Fatalf("Headers: got %d, want %d", len(ev.Headers), len(w.headers))
		}
		for i, h := range w.headers {
			g := ev.Headers[i]
			if g.Name != h.Name || g.Response != h.Response || string(g.Value) != string(h.Value) {
				t.Errorf("Headers[%d]: got %s=%q (resp %v), want %s=%q (resp %v)",
					i, g.Name, g.Value, g.Response, h.Name, h.Value, h.Response)
			}
		}
	}
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

const clfTime = "[10/Oct/2000:13:55:36 -0700]"

func TestDirectives(t *testing.T) {
	tests := []struct {
		name   string
		format string
		line   string
		want   want
	}{
		{"h address", `%h`, `192.0.2.1`, want{client: "192.0.2.1",
			fields: map[Field]string{FieldRemoteHost: "192.0.2.1"}}},
		{"h name", `%h`, `crawl-1.example.com`, want{
			fields: map[Field]string{FieldRemoteHost: "crawl-1.example.com"}}},
		{"h IPv6", `%h`, `2001:db8::1`, want{client: "2001:db8::1",
			fields: map[Field]string{FieldRemoteHost: "2001:db8::1"}}},
		{"h mapped", `%h`, `::ffff:192.0.2.1`, want{client: "192.0.2.1",
			fields: map[Field]string{FieldRemoteHost: "::ffff:192.0.2.1"}}},
		{"a wins over h", `%h %a`, `proxy.example.com 192.0.2.5`, want{client: "192.0.2.5",
			fields: map[Field]string{FieldRemoteHost: "proxy.example.com", FieldRemoteAddr: "192.0.2.5"}}},
		{"a before h", `%a %h`, `192.0.2.5 192.0.2.6`, want{client: "192.0.2.5",
			fields: map[Field]string{FieldRemoteHost: "192.0.2.6", FieldRemoteAddr: "192.0.2.5"}}},
		{"c a peer", `%a %{c}a`, `192.0.2.5 203.0.113.1`, want{client: "192.0.2.5", peer: "203.0.113.1",
			fields: map[Field]string{FieldRemoteAddr: "192.0.2.5", FieldPeerAddr: "203.0.113.1"}}},
		{"c h peer", `%{c}h`, `203.0.113.1`, want{peer: "203.0.113.1",
			fields: map[Field]string{FieldPeerAddr: "203.0.113.1"}}},
		{"l u", `%l %u`, `ident bob`, want{fields: map[Field]string{FieldIdent: "ident", FieldUser: "bob"}}},
		{"l u dash", `%l %u`, `- -`, want{fields: map[Field]string{}}},
		{"t", `%t`, clfTime, want{time: "2000-10-10T13:55:36-07:00",
			fields: map[Field]string{FieldTime: "10/Oct/2000:13:55:36 -0700"}}},
		{"t begin", `%{begin:}t`, clfTime, want{time: "2000-10-10T13:55:36-07:00",
			fields: map[Field]string{FieldTime: "10/Oct/2000:13:55:36 -0700"}}},
		{"t strftime clf", `[%{%d/%b/%Y:%H:%M:%S %z}t]`, clfTime, want{time: "2000-10-10T13:55:36-07:00",
			fields: map[Field]string{FieldTime: "10/Oct/2000:13:55:36 -0700"}}},
		{"t strftime iso", `%{%Y-%m-%dT%H:%M:%S%z}t`, `2024-03-12T06:25:14+01:00`,
			want{time: "2024-03-12T06:25:14+01:00", fields: map[Field]string{FieldTime: "2024-03-12T06:25:14+01:00"}}},
		{"t strftime with spaces", `%{%a %b %e %T %Y}t %h`, `Tue Mar  5 06:25:14 2024 192.0.2.1`,
			want{client: "192.0.2.1", time: "2024-03-05T06:25:14Z",
				fields: map[Field]string{FieldTime: "Tue Mar  5 06:25:14 2024", FieldRemoteHost: "192.0.2.1"}}},
		{"t 12 hour", `%{%D %r}t`, `03/12/24 06:25:14 PM`, want{time: "2024-03-12T18:25:14Z",
			fields: map[Field]string{FieldTime: "03/12/24 06:25:14 PM"}}},
		{"t msec_frac", `[%{%d/%b/%Y:%H:%M:%S}t.%{msec_frac}t %{%z}t]`, `[10/Oct/2000:13:55:36.123 -0700]`,
			want{time: "2000-10-10T13:55:36.123-07:00",
				fields: map[Field]string{FieldTime: "10/Oct/2000:13:55:36.123 -0700"}}},
		{"t usec_frac end", `%{end:%Y-%m-%d %H:%M:%S}t.%{end:usec_frac}t`, `2024-03-12 06:25:14.000042`,
			want{time: "2024-03-12T06:25:14.000042Z", fields: map[Field]string{FieldTime: "2024-03-12 06:25:14.000042"}}},
		{"t sec", `%{sec}t`, `971211336`, want{time: "2000-10-10T20:55:36Z", fields: map[Field]string{FieldTime: "971211336"}}},
		{"t msec", `%{msec}t`, `971211336123`, want{time: "2000-10-10T20:55:36.123Z",
			fields: map[Field]string{FieldTime: "971211336123"}}},
		{"t usec", `%{begin:usec}t`, `971211336123456`, want{time: "2000-10-10T20:55:36.123456Z",
			fields: map[Field]string{FieldTime: "971211336123456"}}},
		{"r", `"%r"`, `"GET /a/b?c=1&d HTTP/1.1"`, want{fields: map[Field]string{
			FieldRequest: "GET /a/b?c=1&d HTTP/1.1", FieldMethod: "GET", FieldPath: "/a/b", FieldQuery: "c=1&d",
			FieldProtocol: "HTTP/1.1"}}},
		{"final status", `%>s`, `404`, want{status: 404, fields: map[Field]string{FieldStatus: "404"}}},
		{"s", `%s`, `301`, want{status: 301, fields: map[Field]string{FieldStatus: "301"}}},
		{"original status", `%<s`, `301`, want{status: 301, fields: map[Field]string{FieldStatus: "301"}}},
		{"final beats original", `%>s %s %<s`, `404 301 302`, want{status: 404,
			fields: map[Field]string{FieldStatus: "404"}}},
		{"status dash", `%>s`, `-`, want{fields: map[Field]string{}}},
		{"b", `%b`, `2326`, want{bytes: 2326, fields: map[Field]string{FieldBytes: "2326"}}},
		{"b dash", `%b`, `-`, want{fields: map[Field]string{}}},
		{"B", `%B`, `0`, want{fields: map[Field]string{FieldBytes: "0"}}},
		{"O alone gives bytes", `%O`, `512`, want{bytes: 512,
			fields: map[Field]string{FieldBytes: "512", FieldBytesOut: "512"}}},
		{"b beats O", `%b %O`, `100 512`, want{bytes: 100,
			fields: map[Field]string{FieldBytes: "100", FieldBytesOut: "512"}}},
		{"I O", `%I %O`, `300 512`, want{bytes: 512,
			fields: map[Field]string{FieldBytesIn: "300", FieldBytes: "512", FieldBytesOut: "512"}}},
		{"D", `%D`, `1234`, want{fields: map[Field]string{FieldDuration: "1234"}}},
		{"T", `%T`, `1`, want{fields: map[Field]string{FieldDuration: "1"}}},
		{"T ms", `%{ms}T`, `15`, want{fields: map[Field]string{FieldDuration: "15"}}},
		{"v p", `%v:%p`, `www.example.com:443`, want{fields: map[Field]string{
			FieldVHost: "www.example.com", FieldPort: "443"}}},
		{"V canonical local remote p", `%V %{canonical}p %{local}p %{remote}p`, `example.org 80 8080 51234`,
			want{fields: map[Field]string{FieldServerName: "example.org", FieldPort: "8080"}}},
		{"m U q H", `%m %U%q %H`, `POST /login.php?next=/ HTTP/1.1`, want{fields: map[Field]string{
			FieldMethod: "POST", FieldPath: "/login.php", FieldQuery: "next=/", FieldProtocol: "HTTP/1.1"}}},
		{"U q empty", `%U%q %H`, `/x HTTP/1.0`, want{fields: map[Field]string{FieldPath: "/x", FieldProtocol: "HTTP/1.0"}}},
		{"U q H beat r", `%U %q %H %m "%r"`, `/real ?a=1 HTTP/1.0 GET "POST /fake?b=2 HTTP/1.1"`,
			want{fields: map[Field]string{FieldPath: "/real", FieldQuery: "a=1", FieldProtocol: "HTTP/1.0",
				FieldMethod: "GET", FieldRequest: "POST /fake?b=2 HTTP/1.1"}}},
		{"q empty still wins", `%q "%r"`, ` "GET /a?b=1 HTTP/1.1"`,
			want{fields: map[Field]string{FieldMethod: "GET", FieldPath: "/a", FieldProtocol: "HTTP/1.1",
				FieldRequest: "GET /a?b=1 HTTP/1.1"}}},
		{"headers", `"%{Referer}i" "%{user-agent}i" "%{X-FORWARDED-FOR}i" "%{Cookie}i" %{Content-Type}o`,
			`"http://x/" "curl/8" "198.51.100.1, 192.0.2.1" "a=b; c=d" text/html`,
			want{fields: map[Field]string{FieldReferer: "http://x/", FieldUserAgent: "curl/8",
				FieldForwardedFor: "198.51.100.1, 192.0.2.1"},
				headers: []Header{{Name: "Cookie", Value: []byte("a=b; c=d")},
					{Name: "Content-Type", Response: true, Value: []byte("text/html")}}}},
		{"header dash", `"%{Cookie}i"`, `"-"`, want{fields: map[Field]string{},
			headers: []Header{{Name: "Cookie"}}}},
		{"X", `%X`, `+`, want{fields: map[Field]string{FieldConnStatus: "+"}}},
		{"P", `%P %{tid}P %{hextid}P`, `1234 140234 7f00`, want{fields: map[Field]string{FieldPid: "1234"}}},
		{"f e", `%f %{HOME}e %e`, `/var/www/index.html /root x`, want{fields: map[Field]string{}}},
		{"percent", `%% %h %%`, `% 192.0.2.1 %`, want{client: "192.0.2.1",
			fields: map[Field]string{FieldRemoteHost: "192.0.2.1"}}},
		{"status conditions", `"%400,501{User-agent}i" "%!200,304{Referer}i"`, `"curl" "-"`,
			want{fields: map[Field]string{FieldUserAgent: "curl"}}},
		{"redirect flags", `%<u %>u`, `first last`, want{fields: map[Field]string{FieldUser: "last"}}},
		{"skipped directives", `%k %L %R %{n}n %{c}C %{SSL_PROTOCOL}x %{Trailer}^ti %S`,
			`0 WxYz cgi-script - - TLSv1.3 - 812`, want{fields: map[Field]string{}}},
		{"escapes in format", `%h\t\"%u\"`, "192.0.2.1\t\"bob\"", want{client: "192.0.2.1",
			fields: map[Field]string{FieldRemoteHost: "192.0.2.1", FieldUser: "bob"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.format, WithLocation(time.UTC))
			if err != nil {
				t.Fatalf("Compile(%q): %v", tt.format, err)
			}
			var ev Event
			if err := p.Parse([]byte(tt.line), &ev); err != nil {
				t.Fatalf("Parse(%q): %v", tt.line, err)
			}
			if ev.Kind != Access {
				t.Errorf("Kind: got %v, want access", ev.Kind)
			}
			check(t, &ev, tt.want)
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name, format, msg string
	}{
		{"unknown letter", `%h %Z`, `"%Z" at position 3`},
		{"unknown with arg", `%h %{x}J`, `"%{x}J" at position 3`},
		{"unterminated brace", `%h %{Referer`, `unterminated %{ at position 3`},
		{"trailing percent", `%h %`, `incomplete directive`},
		{"bad address kind", `%{x}a`, `unknown address kind`},
		{"bad port kind", `%{x}p`, `unknown port kind`},
		{"header without name", `%i`, `needs a header name`},
		{"env without name", `%n`, `needs a name`},
		{"bad strftime", `%{%Q}t`, `unsupported conversion %Q`},
		{"arg on r", `%{x}r`, `takes no {x}`},
		{"empty", ``, `empty format`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.format)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Compile(%q): got %v, want error containing %q", tt.format, err, tt.msg)
			}
		})
	}
}

func TestParserInfo(t *testing.T) {
	tests := []struct {
		format    string
		kind      Kind
		hasClient bool
		has, not  Field
	}{
		{"common", Access, true, FieldPath, FieldUserAgent},
		{"combined", Access, true, FieldUserAgent, FieldVHost},
		{"vhost_combined", Access, true, FieldVHost, FieldMessage},
		{"error", Error, true, FieldMessage, FieldPath},
		{"auto", 0, true, FieldMessage, FieldDuration},
		{`%v %U %>s`, Access, false, FieldPath, FieldRemoteHost},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			p := MustCompile(tt.format)
			if p.Format() != tt.format {
				t.Errorf("Format: got %q, want %q", p.Format(), tt.format)
			}
			if p.Kind() != tt.kind {
				t.Errorf("Kind: got %v, want %v", p.Kind(), tt.kind)
			}
			if p.HasClient() != tt.hasClient {
				t.Errorf("HasClient: got %v, want %v", p.HasClient(), tt.hasClient)
			}
			if !p.Has(tt.has) || p.Has(tt.not) {
				t.Errorf("Has: got %v for %s and %v for %s", p.Has(tt.has), tt.has, p.Has(tt.not), tt.not)
			}
		})
	}
}

func TestBuiltinFormats(t *testing.T) {
	const (
		debianCommon = `%h %l %u %t "%r" %>s %O`
		upstreamComb = `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"`
	)
	line := `192.0.2.10 - - [12/Mar/2024:06:25:14 +0100] "GET /?a=b HTTP/1.1" 200 10956 "-" "Mozilla/5.0"`
	base := want{client: "192.0.2.10", status: 200, bytes: 10956, time: "2024-03-12T06:25:14+01:00"}
	for _, format := range []string{"combined", FormatCombined, upstreamComb, "auto"} {
		t.Run(format, func(t *testing.T) {
			var ev Event
			if err := MustCompile(format).Parse([]byte(line), &ev); err != nil {
				t.Fatal(err)
			}
			check(t, &ev, base)
			if string(ev.Get(FieldUserAgent)) != "Mozilla/5.0" || string(ev.Get(FieldQuery)) != "a=b" {
				t.Errorf("got UA %q query %q", ev.Get(FieldUserAgent), ev.Get(FieldQuery))
			}
		})
	}
	common := `192.0.2.10 - - [12/Mar/2024:06:25:14 +0100] "GET / HTTP/1.1" 200 10956`
	for _, format := range []string{"common", debianCommon, `%h %l %u %t "%r" %>s %b`, "auto"} {
		t.Run(format, func(t *testing.T) {
			var ev Event
			if err := MustCompile(format).Parse([]byte(common+"\n"), &ev); err != nil {
				t.Fatal(err)
			}
			check(t, &ev, base)
			if string(ev.Line) != common {
				t.Errorf("Line: got %q, want %q", ev.Line, common)
			}
		})
	}
}

func TestEscapedQuotes(t *testing.T) {
	p := MustCompile("combined")
	tests := []struct {
		name, line    string
		path, ua, ref string
	}{
		{"quote in UA", `192.0.2.1 - - ` + clfTime + ` "GET / HTTP/1.1" 200 1 "-" "Mozilla \"quoted\""`,
			"/", `Mozilla \"quoted\"`, ""},
		{"backslash before closing quote", `192.0.2.1 - - ` + clfTime + ` "GET / HTTP/1.1" 200 1 "x\\" "ua\\\\"`,
			"/", `ua\\\\`, `x\\`},
		{"quotes in request", `192.0.2.1 - - ` + clfTime + ` "GET /\" 200 1 \"-\" \"x HTTP/1.1" 200 1 "-" "ua"`,
			`/\" 200 1 \"-\" \"x`, "ua", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev Event
			if err := p.Parse([]byte(tt.line), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Client != netip.MustParseAddr("192.0.2.1") || ev.Status != 200 || ev.Bytes != 1 {
				t.Errorf("got client %v status %d bytes %d", ev.Client, ev.Status, ev.Bytes)
			}
			if string(ev.Get(FieldPath)) != tt.path || string(ev.Get(FieldUserAgent)) != tt.ua ||
				string(ev.Get(FieldReferer)) != tt.ref {
				t.Errorf("got path %q ua %q ref %q, want %q %q %q", ev.Get(FieldPath), ev.Get(FieldUserAgent),
					ev.Get(FieldReferer), tt.path, tt.ua, tt.ref)
			}
		})
	}
}

func TestSplitRequest(t *testing.T) {
	tests := []struct {
		name, req                 string
		method, path, query, prot string
	}{
		{"plain", "GET / HTTP/1.1", "GET", "/", "", "HTTP/1.1"},
		{"query", "GET /a?b=c&d HTTP/1.0", "GET", "/a", "b=c&d", "HTTP/1.0"},
		{"empty query", "GET /a? HTTP/1.0", "GET", "/a", "", "HTTP/1.0"},
		{"HTTP/0.9", "GET /old", "GET", "/old", "", ""},
		{"star", "OPTIONS * HTTP/1.1", "OPTIONS", "*", "", "HTTP/1.1"},
		{"proxy", "CONNECT example.com:443 HTTP/1.1", "CONNECT", "example.com:443", "", "HTTP/1.1"},
		{"space in uri", "GET /a b HTTP/1.1", "GET", "/a b", "", "HTTP/1.1"},
		{"dash", "-", "", "", "", ""},
		{"tls", `\x16\x03\x01\x02`, "", "", "", ""},
		{"tls with space", `\x16\x03\x01 \x02`, "", "", "", ""},
		{"lowercase", "get / HTTP/1.1", "", "", "", ""},
		{"method only", "GET ", "", "", "", ""},
		{"empty", "", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, p, q, h := splitRequest([]byte(tt.req))
			if string(m) != tt.method || string(p) != tt.path || string(q) != tt.query || string(h) != tt.prot {
				t.Errorf("got %q %q %q %q, want %q %q %q %q", m, p, q, h, tt.method, tt.path, tt.query, tt.prot)
			}
		})
	}
}

func TestJunkRequestLines(t *testing.T) {
	for _, req := range []string{`-`, `\x16\x03\x01\x02\x00\x01`, `\x80\x9f\x01`, `GARBAGE`} {
		t.Run(req, func(t *testing.T) {
			line := `192.0.2.1 - - ` + clfTime + ` "` + req + `" 400 226 "-" "-"`
			var ev Event
			if err := MustCompile("combined").Parse([]byte(line), &ev); err != nil {
				t.Fatalf("junk request must parse: %v", err)
			}
			check(t, &ev, want{client: "192.0.2.1", status: 400, bytes: 226})
			if ev.Get(FieldMethod) != nil || ev.Get(FieldPath) != nil {
				t.Errorf("got method %q path %q, want none", ev.Get(FieldMethod), ev.Get(FieldPath))
			}
		})
	}
}

func TestErrorLog(t *testing.T) {
	tests := []struct {
		name, line string
		want       want
	}{
		{"2.4 file not found", `[Tue Mar 12 06:25:14.123456 2024] [core:error] [pid 1234:tid 140234] [client 192.0.2.10:54321] AH00128: File does not exist: /var/www/html/favicon.ico`,
			want{client: "192.0.2.10", time: "2024-03-12T06:25:14.123456Z", fields: map[Field]string{
				FieldTime: "Tue Mar 12 06:25:14.123456 2024", FieldModule: "core", FieldLevel: "error",
				FieldPid: "1234", FieldRemoteAddr: "192.0.2.10", FieldErrorCode: "AH00128",
				FieldMessage: "File does not exist: /var/www/html/favicon.ico"}}},
		{"2.4 user not found", `[Tue Mar 12 06:26:01.000001 2024] [auth_basic:error] [pid 1235:tid 140235] [client 198.51.100.7:40112] AH01618: user bob not found: /private`,
			want{client: "198.51.100.7", fields: map[Field]string{
				FieldTime: "Tue Mar 12 06:26:01.000001 2024", FieldModule: "auth_basic", FieldLevel: "error",
				FieldPid: "1235", FieldRemoteAddr: "198.51.100.7", FieldErrorCode: "AH01618",
				FieldMessage: "user bob not found: /private"}}},
		{"2.4 password mismatch with referer", `[Tue Mar 12 06:26:02.654321 2024] [auth_basic:error] [pid 1235:tid 140236] [client 198.51.100.7:40113] AH01617: user bob: authentication failure for "/private": Password Mismatch, referer: https://www.example.com/`,
			want{client: "198.51.100.7", fields: map[Field]string{
				FieldTime: "Tue Mar 12 06:26:02.654321 2024", FieldModule: "auth_basic", FieldLevel: "error",
				FieldPid: "1235", FieldRemoteAddr: "198.51.100.7", FieldErrorCode: "AH01617",
				FieldMessage: `user bob: authentication failure for "/private": Password Mismatch`,
				FieldReferer: "https://www.example.com/"}}},
		{"2.4 denied IPv6", `[Tue Mar 12 06:26:03.100000 2024] [authz_core:error] [pid 1236:tid 140237] [client 2001:db8::1:51234] AH01630: client denied by server configuration: /var/www/x`,
			want{client: "2001:db8::1", fields: map[Field]string{
				FieldTime: "Tue Mar 12 06:26:03.100000 2024", FieldModule: "authz_core", FieldLevel: "error",
				FieldPid: "1236", FieldRemoteAddr: "2001:db8::1", FieldErrorCode: "AH01630",
				FieldMessage: "client denied by server configuration: /var/www/x"}}},
		{"2.4 bracketed IPv6", `[Tue Mar 12 06:26:04.000000 2024] [authz_core:error] [pid 1] [client [2001:db8::2]:51235] AH01630: denied`,
			want{client: "2001:db8::2"}},
		{"2.4 mapped", `[Tue Mar 12 06:26:09.000000 2024] [php:error] [pid 1239] [client ::ffff:192.0.2.21:2222] PHP Fatal error: x`,
			want{client: "192.0.2.21", fields: map[Field]string{
				FieldTime: "Tue Mar 12 06:26:09.000000 2024", FieldModule: "php", FieldLevel: "error",
				FieldPid: "1239", FieldRemoteAddr: "::ffff:192.0.2.21", FieldMessage: "PHP Fatal error: x"}}},
		{"2.4 no client", `[Tue Mar 12 06:26:05.000000 2024] [mpm_event:notice] [pid 1:tid 2] AH00489: Apache/2.4.57 configured`,
			want{fields: map[Field]string{
				FieldTime: "Tue Mar 12 06:26:05.000000 2024", FieldModule: "mpm_event", FieldLevel: "notice",
				FieldPid: "1", FieldErrorCode: "AH00489", FieldMessage: "Apache/2.4.57 configured"}}},
		{"2.4 remote peer", `[Tue Mar 12 06:26:07.000000 2024] [proxy_http:error] [pid 1237:tid 140238] (111)Connection refused: [remote 203.0.113.5:8080] AH01102: error reading status line`,
			want{peer: "203.0.113.5", fields: map[Field]string{
				FieldTime: "Tue Mar 12 06:26:07.000000 2024", FieldModule: "proxy_http", FieldLevel: "error",
				FieldPid: "1237", FieldPeerAddr: "203.0.113.5", FieldErrorCode: "AH01102",
				FieldMessage: "error reading status line"}}},
		{"2.4 errno before client", `[Tue Mar 12 06:26:08.000000 2024] [core:error] [pid 1238:tid 140239] (13)Permission denied: [client 192.0.2.20:1111] AH00035: access to /secret/ denied`,
			want{client: "192.0.2.20"}},
		{"2.4 errno without client", `[Tue Mar 12 06:26:08.000000 2024] [core:error] [pid 1] (2)No such file or directory: AH02291: Cannot access directory`,
			want{fields: map[Field]string{
				FieldTime: "Tue Mar 12 06:26:08.000000 2024", FieldModule: "core", FieldLevel: "error", FieldPid: "1",
				FieldMessage: "(2)No such file or directory: AH02291: Cannot access directory"}}},
		{"2.4 debug file", `[Tue Mar 12 06:26:10.000000 2024] [authz_core:debug] [pid 1240:tid 140240] mod_authz_core.c(820): [client 192.0.2.22:3333] AH01626: authorization result: granted`,
			want{client: "192.0.2.22"}},
		{"2.4 empty module", `[Tue Mar 12 06:26:10.000000 2024] [:error] [pid 1] [client 192.0.2.22:3333] PHP Warning: x`,
			want{client: "192.0.2.22", fields: map[Field]string{
				FieldTime: "Tue Mar 12 06:26:10.000000 2024", FieldLevel: "error", FieldPid: "1",
				FieldRemoteAddr: "192.0.2.22", FieldMessage: "PHP Warning: x"}}},
		{"2.4 ISO stamp", `[2024-03-12 06:25:14.123456] [core:error] [pid 1234:tid 140234] [client 192.0.2.10:54321] AH00128: x`,
			want{client: "192.0.2.10", time: "2024-03-12T06:25:14.123456Z"}},
		{"2.2 user not found", `[Tue Mar 12 06:26:01 2024] [error] [client 198.51.100.7] user admin not found: /private`,
			want{client: "198.51.100.7", time: "2024-03-12T06:26:01Z", fields: map[Field]string{
				FieldTime: "Tue Mar 12 06:26:01 2024", FieldLevel: "error", FieldRemoteAddr: "198.51.100.7",
				FieldMessage: "user admin not found: /private"}}},
		{"2.2 IPv6 ending in digits", `[Tue Mar 12 06:26:03 2024] [error] [client 2001:db8::1] client denied by server configuration: /var/www/x`,
			want{client: "2001:db8::1"}},
		{"2.2 padded day and referer", `[Tue Mar  5 06:26:05 2024] [error] [client 192.0.2.11] (13)Permission denied: access to /x denied, referer: http://www.example.com/`,
			want{client: "192.0.2.11", time: "2024-03-05T06:26:05Z", fields: map[Field]string{
				FieldTime: "Tue Mar  5 06:26:05 2024", FieldLevel: "error", FieldRemoteAddr: "192.0.2.11",
				FieldMessage: "(13)Permission denied: access to /x denied", FieldReferer: "http://www.example.com/"}}},
		{"2.2 no client", `[Tue Mar 12 06:26:04 2024] [notice] Apache/2.2.22 (Debian) configured`,
			want{fields: map[Field]string{FieldTime: "Tue Mar 12 06:26:04 2024", FieldLevel: "notice",
				FieldMessage: "Apache/2.2.22 (Debian) configured"}}},
	}
	for _, format := range []string{"error", "auto"} {
		p := MustCompile(format, WithLocation(time.UTC))
		for _, tt := range tests {
			t.Run(format+"/"+tt.name, func(t *testing.T) {
				var ev Event
				if err := p.Parse([]byte(tt.line), &ev); err != nil {
					t.Fatal(err)
				}
				if ev.Kind != Error {
					t.Errorf("Kind: got %v, want error", ev.Kind)
				}
				check(t, &ev, tt.want)
			})
		}
	}
}

func TestErrorLogLocation(t *testing.T) {
	loc := time.FixedZone("test", -5*3600)
	var ev Event
	line := `[Tue Mar 12 06:26:01 2024] [error] [client 192.0.2.1] x`
	if err := MustCompile("error", WithLocation(loc)).Parse([]byte(line), &ev); err != nil {
		t.Fatal(err)
	}
	if got, want := ev.Time.Format(time.RFC3339), "2024-03-12T06:26:01-05:00"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestZoneCache(t *testing.T) {
	p := MustCompile("common")
	var a, b, c Event
	for _, x := range []struct {
		ev   *Event
		line string
	}{
		{&a, `192.0.2.1 - - [12/Mar/2024:06:25:14 +0530] "GET / HTTP/1.1" 200 1`},
		{&b, `192.0.2.1 - - [12/Mar/2024:06:25:15 -0000] "GET / HTTP/1.1" 200 1`},
		{&c, `192.0.2.1 - - [12/Mar/2024:06:25:16 +0530] "GET / HTTP/1.1" 200 1`},
	} {
		if err := p.Parse([]byte(x.line), x.ev); err != nil {
			t.Fatal(err)
		}
	}
	if a.Time.Location() != c.Time.Location() {
		t.Errorf("same offset gave two locations")
	}
	if _, off := a.Time.Zone(); off != 5*3600+30*60 {
		t.Errorf("offset: got %d, want %d", off, 5*3600+30*60)
	}
	if b.Time.Location() != time.UTC {
		t.Errorf("zero offset: got %v, want UTC", b.Time.Location())
	}
}

func TestIPv6(t *testing.T) {
	tests := []struct {
		format, line, client string
	}{
		{"common", `2001:db8::1 - - ` + clfTime + ` "GET / HTTP/1.1" 200 1`, "2001:db8::1"},
		{"combined", `2001:db8:85a3::8a2e:370:7334 - - ` + clfTime + ` "GET / HTTP/1.1" 200 1 "-" "-"`, "2001:db8:85a3::8a2e:370:7334"},
		{"vhost_combined", `www.example.com:443 2001:db8::42 - - ` + clfTime + ` "GET / HTTP/1.1" 200 1 "-" "-"`, "2001:db8::42"},
		{"auto", `2001:db8::1 - - ` + clfTime + ` "GET / HTTP/1.1" 200 1`, "2001:db8::1"},
		{"auto", `2001:db8::2 - - ` + clfTime + ` "GET / HTTP/1.1" 200 1 "-" "-"`, "2001:db8::2"},
		{"auto", `www.example.com:443 2001:db8::42 - - ` + clfTime + ` "GET / HTTP/1.1" 200 1 "-" "-"`, "2001:db8::42"},
		{"common", `::ffff:192.0.2.33 - - ` + clfTime + ` "GET / HTTP/1.1" 200 1`, "192.0.2.33"},
		{"common", `fe80::1%eth0 - - ` + clfTime + ` "GET / HTTP/1.1" 200 1`, ""},
		{"error", `[Tue Mar 12 06:26:03.100000 2024] [authz_core:error] [pid 1] [client 2001:db8::1:51234] AH01630: x`, "2001:db8::1"},
		{"error", `[Tue Mar 12 06:26:03.100000 2024] [authz_core:error] [pid 1] [client [2001:db8::3]:51234] AH01630: x`, "2001:db8::3"},
		{"error", `[Tue Mar 12 06:26:03.100000 2024] [authz_core:error] [pid 1] [client 2001:db8::4] AH01630: x`, "2001:db8::4"},
		{"error", `[Tue Mar 12 06:26:03 2024] [error] [client 2001:db8::1:5] x`, "2001:db8::1:5"},
	}
	for _, tt := range tests {
		t.Run(tt.format+"/"+tt.client, func(t *testing.T) {
			var ev Event
			if err := MustCompile(tt.format).Parse([]byte(tt.line), &ev); err != nil {
				t.Fatal(err)
			}
			if got := addrString(ev.Client); got != tt.client {
				t.Errorf("got %q, want %q", got, tt.client)
			}
		})
	}
}

// TestSpoof checks that text a client controls never becomes Client.
func TestSpoof(t *testing.T) {
	const spoof = "[client 192.0.2.99]"
	tests := []struct {
		name, format, line, client string
	}{
		{"path", "combined", `192.0.2.1 - - ` + clfTime + ` "GET /` + spoof + ` HTTP/1.1" 404 1 "-" "-"`, "192.0.2.1"},
		{"ua", "combined", `192.0.2.1 - - ` + clfTime + ` "GET / HTTP/1.1" 404 1 "192.0.2.99 - -" "` + spoof + ` 192.0.2.99 - - "`, "192.0.2.1"},
		{"user", "common", `192.0.2.1 - 192.0.2.99 ` + clfTime + ` "GET / HTTP/1.1" 401 1`, "192.0.2.1"},
		{"user with space auto", "auto", `2001:db8::1 - 192.0.2.99 x ` + clfTime + ` "GET / HTTP/1.1" 401 1`, ""},
		{"request breakout", "combined", `192.0.2.1 - - ` + clfTime + ` "GET /\" 200 1 \"-\" \"x\n192.0.2.99 - - HTTP/1.1" 404 1 "-" "-"`, "192.0.2.1"},
		{"error message", "error", `[Tue Mar 12 06:26:11.000000 2024] [core:info] [pid 1] [client 192.0.2.23:4444] AH00128: File does not exist: /var/www/html/` + spoof, "192.0.2.23"},
		{"error message no client", "error", `[Tue Mar 12 06:26:11.000000 2024] [core:notice] [pid 1] AH00094: Command line: '` + spoof + `'`, ""},
		{"error message no AH", "error", `[Tue Mar 12 06:26:11.000000 2024] [core:notice] [pid 1] x ` + spoof, ""},
		{"error 2.2 user", "error", `[Tue Mar 12 06:26:01 2024] [error] [client 198.51.100.7] user ` + spoof + ` not found: /private`, "198.51.100.7"},
		{"error 2.2 no client", "auto", `[Tue Mar 12 06:26:01 2024] [notice] caught SIGTERM ` + spoof, ""},
		{"error second client", "error", `[Tue Mar 12 06:26:11.000000 2024] [:error] [pid 1] [client 192.0.2.23:4444] ` + spoof + ` ModSecurity: Access denied`, "192.0.2.23"},
		{"error second client 2.2", "error", `[Tue Mar 12 06:26:01 2024] [error] [client 198.51.100.7] ` + spoof + ` x`, "198.51.100.7"},
		{"error referer", "error", `[Tue Mar 12 06:26:01.0 2024] [a:error] [pid 1] [client 192.0.2.1:1] x, referer: ` + spoof, "192.0.2.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev Event
			_ = MustCompile(tt.format).Parse([]byte(tt.line), &ev)
			if got := addrString(ev.Client); got != tt.client {
				t.Errorf("Client: got %q, want %q", got, tt.client)
			}
		})
	}
}

func readLines(t testing.TB, name string) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines [][]byte
	s := bufio.NewScanner(f)
	for s.Scan() {
		lines = append(lines, bytes.Clone(s.Bytes()))
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

var testdataFormats = []struct{ file, format string }{
	{"access_common.log", "common"},
	{"access_combined.log", "combined"},
	{"access_vhost_combined.log", "vhost_combined"},
	{"error24.log", "error"},
	{"error22.log", "error"},
}

// TestTestdata parses every sample line with its own format and with
// "auto", which must agree.
func TestTestdata(t *testing.T) {
	auto := MustCompile("auto")
	for _, td := range testdataFormats {
		p := MustCompile(td.format)
		for i, line := range readLines(t, td.file) {
			t.Run(td.file+"/"+string(rune('a'+i)), func(t *testing.T) {
				var ev, ae Event
				if err := p.Parse(line, &ev); err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				if ev.Kind != p.Kind() {
					t.Errorf("Kind: got %v, want %v", ev.Kind, p.Kind())
				}
				if p.Kind() == Access && !ev.Client.IsValid() {
					t.Errorf("no client in %s", line)
				}
				if err := auto.Parse(line, &ae); err != nil {
					t.Fatalf("auto: %s: %v", line, err)
				}
				if !sameEvent(&ev, &ae) {
					t.Errorf("auto disagrees on %s", line)
				}
			})
		}
	}
}

func sameEvent(a, b *Event) bool {
	if a.Kind != b.Kind || a.Client != b.Client || a.Peer != b.Peer || !a.Time.Equal(b.Time) ||
		a.Status != b.Status || a.Bytes != b.Bytes || !bytes.Equal(a.Line, b.Line) {
		return false
	}
	for f := range NumFields {
		if !bytes.Equal(a.Get(f), b.Get(f)) {
			return false
		}
	}
	return true
}

func TestMalformed(t *testing.T) {
	lines := readLines(t, "garbage.log")
	lines = append(lines, []byte{0xff, 0xfe, 0x00}, []byte("\n"), []byte(`192.0.2.1 - - [`))
	for _, format := range []string{"common", "combined", "vhost_combined", "error", "auto",
		`%{%Y-%m-%d}t %h "%r" %{Cookie}i`} {
		p := MustCompile(format)
		for i, line := range lines {
			t.Run(format+"/"+string(rune('a'+i)), func(t *testing.T) {
				var ev Event
				err := p.Parse(line, &ev)
				var pe *ParseError
				if !errors.Is(err, ErrMalformed) || !errors.As(err, &pe) {
					t.Fatalf("Parse(%q): got %v, want a ParseError", line, err)
				}
				if ev.Client.IsValid() || ev.Get(FieldPath) != nil || ev.Kind != 0 {
					t.Errorf("partial event left after error: %+v", ev)
				}
			})
		}
	}
}

// TestTruncated cuts every sample line at every byte: no panics, and a
// successful parse never yields a Client the full line did not have.
func TestTruncated(t *testing.T) {
	auto := MustCompile("auto")
	for _, td := range testdataFormats {
		p := MustCompile(td.format)
		for _, line := range readLines(t, td.file) {
			var full Event
			if err := p.Parse(line, &full); err != nil {
				t.Fatal(err)
			}
			for n := range len(line) {
				for _, q := range []*Parser{p, auto} {
					var ev Event
					if q.Parse(line[:n], &ev) == nil && ev.Client.IsValid() && ev.Client != full.Client {
						t.Errorf("%q: client %v, full line has %v", line[:n], ev.Client, full.Client)
					}
				}
			}
		}
	}
}

func TestZeroAlloc(t *testing.T) {
	tests := []struct {
		name, format string
		line         []byte
	}{
		{"common", "common", readLines(t, "access_common.log")[0]},
		{"common IPv6", "common", readLines(t, "access_common.log")[6]},
		{"combined", "combined", readLines(t, "access_combined.log")[1]},
		{"combined IPv6", "combined", readLines(t, "access_combined.log")[6]},
		{"vhost_combined", "vhost_combined", readLines(t, "access_vhost_combined.log")[0]},
		{"error 2.4", "error", readLines(t, "error24.log")[2]},
		{"error 2.4 IPv6", "error", readLines(t, "error24.log")[3]},
		{"error 2.2", "error", readLines(t, "error22.log")[1]},
		{"auto access", "auto", readLines(t, "access_combined.log")[0]},
		{"auto vhost", "auto", readLines(t, "access_vhost_combined.log")[2]},
		{"auto error", "auto", readLines(t, "error24.log")[1]},
		{"headers", `%h %l %u %t "%r" %>s %b "%{Cookie}i" "%{Accept}i" %D`,
			[]byte(`192.0.2.1 - - ` + clfTime + ` "GET / HTTP/1.1" 200 1 "a=b" "*/*" 1234`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := MustCompile(tt.format)
			var ev Event
			if err := p.Parse(tt.line, &ev); err != nil { // warms the zone cache and Headers
				t.Fatal(err)
			}
			if n := testing.AllocsPerRun(100, func() { _ = p.Parse(tt.line, &ev) }); n != 0 {
				t.Errorf("got %v allocs per line, want 0", n)
			}
		})
	}
}

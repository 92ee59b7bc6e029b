package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// sources is a valid [[source]] list of four lines for the tests' band.toml.
const sources = `[[source]]
name = "access"
path = "/var/log/apache2/access.log"
format = "combined"
`

func TestErrors(t *testing.T) {
	tests := []struct {
		name  string
		main  string            // band.toml
		jailD map[string]string // jail.d files
		want  []string          // errors, $D standing for the config directory
	}{
		{
			name: "syntax error",
			main: sources + "[jail.x]\nenabled = true\npath = ['^/a'\n",
			want: []string{`$D/band.toml:7: syntax error: expected a comma (',') or array terminator (']'), but got end of file`},
		},
		{
			name:  "syntax error in a drop-in and a bad key elsewhere",
			main:  sources + "[daemon]\nlog_levle = \"debug\"\n",
			jailD: map[string]string{"a.toml": "[jail.apache-auth]\nenabled = = true\n"},
			want: []string{
				`$D/band.toml:6: unknown key daemon.log_levle (did you mean log_level?)`,
				`$D/jail.d/a.toml:2: syntax error: expected value but found '=' instead`,
			},
		},
		{
			name: "unknown jail key with suggestion",
			main: sources + "[jail.login-flood]\nkind = \"rate\"\ntreshold = 10\nwindow = \"1s\"\n",
			want: []string{
				`$D/band.toml:5: jail.login-flood: a rate jail needs a threshold`,
				`$D/band.toml:7: unknown key jail.login-flood.treshold (did you mean threshold?)`,
			},
		},
		{
			name: "unknown top-level key",
			main: sources + "[jails.x]\nenabled = true\n",
			want: []string{`$D/band.toml:5: unknown key jails (did you mean jail?)`},
		},
		{
			name: "bad duration",
			main: sources + "[defaults]\nbantime = \"10 minutes\"\nfindtime = 600\n",
			want: []string{
				`$D/band.toml:6: defaults.bantime: "10 minutes" is not a duration (write e.g. "90s", "10m", "1h", "1d")`,
				`$D/band.toml:7: defaults.findtime: "600" is not a duration (write e.g. "90s", "10m", "1h", "1d")`,
			},
		},
		{
			name: "wrong type",
			main: sources + "[jail.x]\nenabled = \"yes\"\nstatus = 404\n",
			want: []string{
				`$D/band.toml:6: jail.x.enabled: must be true or false, got a string`,
				`$D/band.toml:7: jail.x.status: must be a list of integers, got an integer`,
			},
		},
		{
			name: "bad enums",
			main: sources + "[firewall]\nbackend = \"nft\"\nverdict = \"deny\"\nhooks = [\"input\", \"output\"]\n" +
				"[daemon]\nlog_format = \"jsn\"\n" +
				"[jail.x]\nkind = \"rates\"\nstatus = [404]\n",
			want: []string{
				`$D/band.toml:6: firewall.backend: must be one of auto, nftables, iptables, dryrun, got "nft"`,
				`$D/band.toml:7: firewall.verdict: must be one of drop, reject, got "deny"`,
				`$D/band.toml:8: firewall.hooks: must be one of input, forward, got "output"`,
				`$D/band.toml:10: daemon.log_format: must be one of text, json, got "jsn" (did you mean "json"?)`,
				`$D/band.toml:12: jail.x.kind: must be one of match, rate, recidive, got "rates" (did you mean "rate"?)`,
			},
		},
		{
			name: "bad source format",
			main: "[[source]]\nname = \"a\"\npath = \"/var/log/a.log\"\nformat = \"combine\"\n",
			want: []string{`$D/band.toml:4: source.a.format: must be one of common, combined, vhost_combined, error, auto or a LogFormat string with % directives, got "combine"`},
		},
		{
			name: "bad CIDR in defaults and jail",
			main: sources + "[defaults]\nignoreip = [\n  \"192.0.2.1\",\n  \"198.51.100.0/33\",\n]\n" +
				"[jail.apache-auth]\nignoreip = [\"localhost\"]\n",
			want: []string{
				`$D/band.toml:8: defaults.ignoreip: "198.51.100.0/33" is not an address or CIDR prefix (e.g. "192.0.2.7", "198.51.100.0/24", "2001:db8::/32")`,
				`$D/band.toml:11: jail.apache-auth.ignoreip: "localhost" is not an address or CIDR prefix (e.g. "192.0.2.7", "198.51.100.0/24", "2001:db8::/32")`,
			},
		},
		{
			name: "regex that does not compile, in a multi-line array",
			main: sources + "[jail.x]\npath = [\n  '^/ok',\n  '^/(broken',\n]\n",
			want: []string{"$D/band.toml:8: jail.x.path: regex \"^/(broken\" does not compile: error parsing regexp: missing closing ): `^/(broken`"},
		},
		{
			name: "HOST misuse",
			main: sources + "[jail.x]\nuser_agent = ['<HOST> bot']\nregex = [\n  '^<HOST> .* <HOST>',\n  '^\\S+ (no host)',\n  '^<HOST> \"GET /x',\n]\n",
			want: []string{
				`$D/band.toml:6: jail.x.user_agent: <HOST> is only allowed in raw-line regex entries; this regex runs on one field: "<HOST> bot"`,
				`$D/band.toml:8: jail.x.regex: a raw-line regex needs <HOST> exactly once, found 2 in "^<HOST> .* <HOST>"`,
				`$D/band.toml:9: jail.x.regex: a raw-line regex needs <HOST> exactly once, found 0 in "^\\S+ (no host)"`,
			},
		},
		{
			name: "rate jail values",
			main: sources + "[jail.login-flood]\nkind = \"rate\"\nper = \"ip\"\nthreshold = -3\nwindow = \"0s\"\nexclude_ext = [\"css\"]\nexclude_status = [99]\n",
			want: []string{
				`$D/band.toml:7: jail.login-flood.per: must be one of page, site, client, got "ip"`,
				`$D/band.toml:8: jail.login-flood.threshold: must be a positive number of requests, got -3`,
				`$D/band.toml:9: jail.login-flood.window: must be a positive duration, got 0s`,
				`$D/band.toml:10: jail.login-flood.exclude_ext: must be an extension with its dot, like ".css", got "css"`,
				`$D/band.toml:11: jail.login-flood.exclude_status: must be an HTTP status from 100 to 599, got 99`,
			},
		},
		{
			name: "match jail values",
			main: sources + "[jail.x]\nstatus = [404, 600]\nmaxretry = 0\nfindtime = \"0s\"\nerror_code = [\"AH1\"]\nmethod = [\"get\"]\n[jail.y]\nenabled = true\n",
			want: []string{
				`$D/band.toml:6: jail.x.status: must be an HTTP status from 100 to 599, got 600`,
				`$D/band.toml:7: jail.x.maxretry: must be a positive number of failures, got 0`,
				`$D/band.toml:8: jail.x.findtime: must be a positive duration, got 0s`,
				`$D/band.toml:9: jail.x.error_code: must be an Apache error code like "AH01617", got "AH1"`,
				`$D/band.toml:10: jail.x.method: must be an upper-case request method like "POST", got "get"`,
				`$D/band.toml:11: jail.y: a match jail needs at least one condition (status, method, path, path_prefix, path_suffix, query, user_agent, agent_words, message, error_code, fields, any_fields or regex)`,
			},
		},
		{
			name: "unknown field name",
			main: sources + "[jail.x]\n[jail.x.fields]\nreferer = 'spam'\nuseragent = 'x'\n",
			want: []string{`$D/band.toml:8: jail.x.fields.useragent: unknown field "useragent" (did you mean user_agent?)`},
		},
		{
			name:  "duplicate jail across two files",
			main:  sources + "\n[jail.wp]\nenabled = true\npath = ['^/wp-login\\.php$']\n",
			jailD: map[string]string{"wp.toml": "# again\n[jail.wp]\nmaxretry = 3\n"},
			want:  []string{`$D/jail.d/wp.toml:2: jail.wp: already defined at $D/band.toml:6 (only built-in jails may be tuned in more than one file)`},
		},
		{
			name:  "duplicate source",
			main:  sources,
			jailD: map[string]string{"a.toml": "[[source]]\nname = \"x\"\npath = \"/x\"\nformat = \"error\"\n[[source]]\nname = \"access\"\npath = \"/y\"\nformat = \"error\"\n"},
			want:  []string{`$D/jail.d/a.toml:6: source.access.name: duplicate source name "access", already defined at $D/band.toml:1`},
		},
		{
			name: "unknown source in an enabled jail",
			main: sources + "[jail.apache-auth]\nenabled = true\n[jail.mine]\nenabled = true\nsources = [\"access\", \"acces\"]\nstatus = [403]\n",
			want: []string{
				`<builtin>:24: jail.apache-auth.sources: unknown source "error" (sources: access)`,
				`$D/band.toml:9: jail.mine.sources: unknown source "acces" (sources: access)`,
			},
		},
		{
			name: "daemon values",
			main: sources + "[daemon]\nsocket = \"band.sock\"\nmax_tracked = 0\nmetrics = \"9591\"\n[firewall]\nset4 = \"band-set-with-a-name-far-too-long\"\n",
			want: []string{
				`$D/band.toml:6: daemon.socket: must be an absolute path, got "band.sock"`,
				`$D/band.toml:7: daemon.max_tracked: must be a positive number of keys, got 0`,
				`$D/band.toml:8: daemon.metrics: must be a listen address like "127.0.0.1:9591" or empty, got "9591"`,
				`$D/band.toml:10: firewall.set4: must be a letter then up to 30 letters, digits, '_', '.' or '-', got "band-set-with-a-name-far-too-long"`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.main, tc.jailD)
			dir := filepath.Dir(path)
			_, err := Load(path)
			if err == nil {
				t.Fatalf("Load: no error, want %q", tc.want)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Load: %T %v, want an ErrorList", err, err)
			}
			got := strings.Split(strings.ReplaceAll(err.Error(), dir, "$D"), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestErrorListAs(t *testing.T) {
	path := writeConfig(t, sources+"[jail.login-flood]\nkind = \"rate\"\nthreshold = -3\nwindow = \"2x\"\n", nil)
	_, err := Load(path)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("errors.As(%v, *Error) = false", err)
	}
	want := []Error{
		{File: path, Line: 7, Key: "jail.login-flood.threshold", Msg: "must be a positive number of requests, got -3"},
		{File: path, Line: 8, Key: "jail.login-flood.window", Msg: `"2x" is not a duration (write e.g. "90s", "10m", "1h", "1d")`},
	}
	list := err.(ErrorList)
	if len(list) != len(want) {
		t.Fatalf("%d errors, want %d: %v", len(list), len(want), err)
	}
	for i := range want {
		if *list[i] != want[i] {
			t.Errorf("error %d = %+v, want %+v", i, *list[i], want[i])
		}
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  Error
		want string
	}{
		{"full", Error{"/etc/band/jail.d/wp.toml", 7, "jail.login-flood.threshold", "must be positive"}, "/etc/band/jail.d/wp.toml:7: jail.login-flood.threshold: must be positive"},
		{"no key", Error{"band.toml", 3, "", "syntax error: x"}, "band.toml:3: syntax error: x"},
		{"no line", Error{"band.toml", 0, "source", "at least one"}, "band.toml: source: at least one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"threshold", "window", "maxretry", "findtime", "bantime"}
	for _, tc := range []struct{ in, want string }{
		{"treshold", "threshold"},
		{"windwo", "window"},
		{"max_retry", "maxretry"},
		{"colour", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := suggest(tc.in, known); got != tc.want {
				t.Errorf("suggest(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

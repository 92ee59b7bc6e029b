package config

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestScanKeyLines(t *testing.T) {
	const doc = `# comment with [brackets] and key = "value"
top = 1

[daemon]
socket = "/run/x # not a comment ]"   # a comment [
log_level = 'info'

[jail."my jail"]
path = [
  '^/a',   # first
  # a comment line inside the array
  "^/b\"]",
  '''^/c
multi''',
]
comment = """
line one
line two ]
"""
enabled = true

[jail.x]
fields = { referer = 'spam', user_agent = 'bot' }
limits.soft = 3
"quoted.key" = 4
status = [ [1, 2],
  [3] ]

[[source]]
name = "a"

[[source]]
name = "b"
path = "/b"

[jail.x.more]
k = 1
`
	lines := scanKeyLines(doc)
	for _, tc := range []struct {
		key  []string
		want int
	}{
		{[]string{"top"}, 2},
		{[]string{"daemon"}, 4},
		{[]string{"daemon", "socket"}, 5},
		{[]string{"daemon", "log_level"}, 6},
		{[]string{"jail", "my jail"}, 8},
		{[]string{"jail", "my jail", "path"}, 9},
		{[]string{"jail", "my jail", "path", "0"}, 10},
		{[]string{"jail", "my jail", "path", "1"}, 12},
		{[]string{"jail", "my jail", "path", "2"}, 13},
		{[]string{"jail", "my jail", "comment"}, 16},
		{[]string{"jail", "my jail", "enabled"}, 20},
		{[]string{"jail", "x"}, 22},
		{[]string{"jail", "x", "fields", "referer"}, 23},
		{[]string{"jail", "x", "fields", "user_agent"}, 23},
		{[]string{"jail", "x", "limits", "soft"}, 24},
		{[]string{"jail", "x", "quoted.key"}, 25},
		{[]string{"jail", "x", "status", "1"}, 27},
		{[]string{"source", "0", "name"}, 30},
		{[]string{"source", "1"}, 32},
		{[]string{"source", "1", "path"}, 34},
		{[]string{"jail", "x", "more", "k"}, 37},
	} {
		t.Run(keyString(tc.key), func(t *testing.T) {
			if got, ok := lines[joinKey(tc.key...)]; !ok || got != tc.want {
				t.Errorf("line = %d (found %v), want %d", got, ok, tc.want)
			}
		})
	}
}

func TestWhere(t *testing.T) {
	path := writeConfig(t, `[[source]]
name = "access"
path = "/var/log/apache2/access.log"
format = "combined"

[jail."login-flood"]
enabled = true
kind = "rate"
path = [
  '^/login',
  '^/wp-login\.php$',
]
threshold = 10
window = "10s"
`, nil)
	c := mustLoad(t, path)
	for _, tc := range []struct {
		key  []string
		file string
		line int
	}{
		{[]string{"jail", "login-flood"}, path, 6},
		{[]string{"jail", "login-flood", "path"}, path, 9},
		{[]string{"jail", "login-flood", "path", "1"}, path, 11},
		{[]string{"jail", "login-flood", "threshold"}, path, 13},
		{[]string{"jail", "login-flood", "exclude_ext"}, path, 6}, // unset: the jail's header
		{[]string{"source", "access", "format"}, path, 4},
		{[]string{"jail", "http-flood", "threshold"}, BuiltinFile, lineOf(t, BuiltinTOML(), "[jail.http-flood]") + 6},
		{[]string{"daemon", "socket"}, "", 0},
		{[]string{"nothing"}, "", 0},
	} {
		t.Run(keyString(tc.key), func(t *testing.T) {
			file, line := c.Where(tc.key...)
			if file != tc.file || line != tc.line {
				t.Errorf("Where = %s:%d, want %s:%d", file, line, tc.file, tc.line)
			}
		})
	}
}

// FuzzScanKeyLines checks that the scanner never panics and that every key
// the TOML parser sees in a document gets a line within it.
func FuzzScanKeyLines(f *testing.F) {
	f.Add(string(BuiltinTOML()))
	f.Add(string(DefaultTOML()))
	f.Add("a = [\n1,\n2]\n[b]\nc = { d = 1 }\n[[e]]\nf = '''x\ny'''\n")
	f.Fuzz(func(t *testing.T, doc string) {
		var v map[string]any
		md, err := toml.Decode(doc, &v)
		if err != nil {
			return
		}
		lines := scanKeyLines(doc)
		n := strings.Count(doc, "\n") + 1
		for _, ln := range lines {
			if ln < 1 || ln > n {
				t.Fatalf("line %d outside 1..%d", ln, n)
			}
		}
		for _, k := range md.Keys() {
			if md.Type(k...) == "ArrayHash" {
				continue // indexed in lines, not by name alone
			}
			if _, ok := lines[joinKey(k...)]; !ok && !underArrayOfTables(md, k) {
				t.Fatalf("no line for key %v", k)
			}
		}
	})
}

func underArrayOfTables(md toml.MetaData, k toml.Key) bool {
	for n := 1; n < len(k); n++ {
		if md.Type(k[:n]...) == "ArrayHash" {
			return true
		}
	}
	return false
}

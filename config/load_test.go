package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeConfig writes band.toml (if main is not empty) and jail.d files into
// a temporary directory and returns the path of band.toml.
func writeConfig(t *testing.T, main string, jailD map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "band.toml")
	if err := os.WriteFile(path, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(jailD) > 0 {
		if err := os.Mkdir(filepath.Join(dir, "jail.d"), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, text := range jailD {
			if err := os.WriteFile(filepath.Join(dir, "jail.d", name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return path
}

// lineOf returns the 1-based line of the first line of text equal to s.
func lineOf(t *testing.T, text []byte, s string) int {
	t.Helper()
	for i, l := range strings.Split(string(text), "\n") {
		if l == s {
			return i + 1
		}
	}
	t.Fatalf("no line %q", s)
	return 0
}

func mustLoad(t *testing.T, path string) *Config {
	t.Helper()
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%q): %v", path, err)
	}
	return c
}

func TestLoadEmbeddedDefault(t *testing.T) {
	c := mustLoad(t, "")
	want := []string{"apache-auth", "apache-badbots", "apache-botsearch", "apache-noscript",
		"apache-noscript-404", "apache-overflows", "apache-shellshock", "apache-shellshock-error",
		"http-404-scan", "http-flood", "http-site-flood"}
	if got := c.EnabledJails(); !slices.Equal(got, want) {
		t.Errorf("EnabledJails() = %v, want %v", got, want)
	}
	if got, want := c.Files, []string{BuiltinFile, DefaultFile}; !slices.Equal(got, want) {
		t.Errorf("Files = %v, want %v", got, want)
	}
	if c.Daemon.Socket != DefaultSocket || c.Daemon.MaxTracked != DefaultMaxTracked || c.Firewall.Backend != "auto" {
		t.Errorf("daemon/firewall = %+v %+v, want defaults", c.Daemon, c.Firewall)
	}
	if len(c.Sources) != 2 || c.Sources[0].Name != "access" || c.Sources[1].Format != "error" {
		t.Errorf("Sources = %+v, want access and error", c.Sources)
	}
	auth := c.Jails["apache-auth"]
	if auth.Kind != "match" || auth.MaxRetry != 5 || auth.BanTime.D() != 10*time.Minute || len(auth.Message) == 0 {
		t.Errorf("apache-auth = %+v, want a match jail with defaults and messages", auth)
	}
	if j := c.Jails["http-flood"]; j.Kind != "rate" || j.Per != "page" || j.Threshold != 30 || j.Window.D() != 2*time.Second {
		t.Errorf("http-flood = %+v", j)
	}
	if j := c.Jails["apache-badbots"]; j.MaxRetry != 1 || j.BanTime.D() != 48*time.Hour {
		t.Errorf("apache-badbots maxretry, bantime = %d, %v, want 1, 48h", j.MaxRetry, j.BanTime.D())
	}
}

// TestBuiltinJailsValid enables every built-in jail: each must pass
// validation against the default sources.
func TestBuiltinJailsValid(t *testing.T) {
	var b strings.Builder
	c := mustLoad(t, "")
	for name := range c.Jails {
		b.WriteString("[jail." + name + "]\nenabled = true\n")
	}
	path := writeConfig(t, "", map[string]string{"all.toml": b.String()})
	c = mustLoad(t, path)
	if got, want := len(c.EnabledJails()), len(c.Jails); got != want {
		t.Errorf("enabled %d jails, want %d", got, want)
	}
	if len(c.Jails) < 10 {
		t.Errorf("built-in library has %d jails, want at least 10", len(c.Jails))
	}
}

func TestMergeBuiltinPerKey(t *testing.T) {
	path := writeConfig(t, "", map[string]string{"auth.toml": `
[jail.apache-auth]
enabled = true
maxretry = 2
`})
	c := mustLoad(t, path)
	builtin := mustLoad(t, "").Jails["apache-auth"]
	j := c.Jails["apache-auth"]
	if !j.Enabled || j.MaxRetry != 2 {
		t.Errorf("enabled, maxretry = %v, %d, want true, 2", j.Enabled, j.MaxRetry)
	}
	if !slices.Equal(j.Message, builtin.Message) || !slices.Equal(j.Sources, builtin.Sources) || j.Comment != builtin.Comment {
		t.Errorf("built-in keys lost: %+v", j)
	}
	if j.FindTime.D() != 10*time.Minute {
		t.Errorf("findtime = %v, want the default 10m", j.FindTime.D())
	}
	jd := filepath.Join(filepath.Dir(path), "jail.d", "auth.toml")
	for _, tc := range []struct {
		key  []string
		file string
		line int
	}{
		{[]string{"jail", "apache-auth", "maxretry"}, jd, 4},
		{[]string{"jail", "apache-auth", "enabled"}, jd, 3},
		{[]string{"jail", "apache-auth"}, jd, 2},
		{[]string{"jail", "apache-auth", "message"}, BuiltinFile, lineOf(t, BuiltinTOML(), "[jail.apache-auth]") + 4},
	} {
		file, line := c.Where(tc.key...)
		if file != tc.file || line != tc.line {
			t.Errorf("Where(%v) = %s:%d, want %s:%d", tc.key, file, line, tc.file, tc.line)
		}
	}
}

func TestDisableBuiltinFromJailD(t *testing.T) {
	path := writeConfig(t, `
[[source]]
name = "access"
path = "/var/log/apache2/access.log"
format = "combined"

[jail.apache-botsearch]
enabled = true
[jail.http-flood]
enabled = true
`, map[string]string{"10-off.toml": "[jail.apache-botsearch]\nenabled = false\n"})
	c := mustLoad(t, path)
	if got, want := c.EnabledJails(), []string{"http-flood"}; !slices.Equal(got, want) {
		t.Errorf("EnabledJails() = %v, want %v", got, want)
	}
}

func TestLaterDropInWins(t *testing.T) {
	path := writeConfig(t, "", map[string]string{
		"20-b.toml": "[jail.apache-auth]\nmaxretry = 7\n",
		"10-a.toml": "[jail.apache-auth]\nenabled = true\nmaxretry = 3\n",
	})
	c := mustLoad(t, path)
	if j := c.Jails["apache-auth"]; !j.Enabled || j.MaxRetry != 7 {
		t.Errorf("enabled, maxretry = %v, %d, want true, 7", j.Enabled, j.MaxRetry)
	}
}

func TestDefaultsInherited(t *testing.T) {
	path := writeConfig(t, `[defaults]
bantime = "1h"
maxretry = 4
ignoreip = ["192.0.2.0/24"]

[[source]]
name = "access"
path = "/var/log/apache2/*access.log"
format = "vhost_combined"

[jail.wp]
enabled = true
path = ['^/wp-login\.php$']
method = ["POST"]
maxretry = 6
ignoreip = ["198.51.100.7", "192.0.2.0/24"]
`, nil)
	c := mustLoad(t, path)
	j := c.Jails["wp"]
	if j.BanTime.D() != time.Hour || j.FindTime.D() != 10*time.Minute || j.MaxRetry != 6 || j.Kind != "match" {
		t.Errorf("wp = bantime %v findtime %v maxretry %d kind %q", j.BanTime.D(), j.FindTime.D(), j.MaxRetry, j.Kind)
	}
	if want := []string{"192.0.2.0/24", "198.51.100.7"}; !slices.Equal(j.IgnoreIP, want) {
		t.Errorf("ignoreip = %v, want %v", j.IgnoreIP, want)
	}
	if file, line := c.Where("jail", "wp", "bantime"); file != path || line != 2 {
		t.Errorf("Where(jail.wp.bantime) = %s:%d, want %s:2 (inherited from [defaults])", file, line, path)
	}
	if got := c.Jails["apache-auth"].MaxRetry; got != 4 {
		t.Errorf("apache-auth maxretry = %d, want 4 from [defaults]", got)
	}
	if len(c.Sources) != 1 || c.Sources[0].Name != "access" {
		t.Errorf("Sources = %+v, want only band.toml's", c.Sources)
	}
}

func TestSources(t *testing.T) {
	t.Run("main file without sources keeps the defaults", func(t *testing.T) {
		c := mustLoad(t, writeConfig(t, "[daemon]\nlog_level = \"debug\"\n", nil))
		if len(c.Sources) != 2 || c.Daemon.LogLevel != "debug" {
			t.Errorf("Sources = %+v, log_level %q", c.Sources, c.Daemon.LogLevel)
		}
		if file, line := c.Where("source", "access", "path"); file != DefaultFile || line == 0 {
			t.Errorf("Where(source.access.path) = %s:%d, want in %s", file, line, DefaultFile)
		}
	})
	t.Run("jail.d adds sources", func(t *testing.T) {
		path := writeConfig(t, "", map[string]string{"shop.toml": `
[[source]]
name = "shop"
path = "/var/log/apache2/shop-access.log"
format = "%h %l %u %t \"%r\" %>s %b"

[jail.shop-login]
enabled = true
sources = ["shop"]
path_prefix = ["/login"]
status = [403]
`})
		c := mustLoad(t, path)
		if len(c.Sources) != 3 || c.Sources[2].Name != "shop" {
			t.Errorf("Sources = %+v, want access, error, shop", c.Sources)
		}
		jd := filepath.Join(filepath.Dir(path), "jail.d", "shop.toml")
		if file, line := c.Where("source", "shop", "format"); file != jd || line != 5 {
			t.Errorf("Where(source.shop.format) = %s:%d, want %s:5", file, line, jd)
		}
	})
}

func TestMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "band.toml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want an error wrapping os.ErrNotExist", err)
	}
}

func TestDurationValues(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90s", 90 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"2d", 48 * time.Hour, true},
		{"1w", 7 * 24 * time.Hour, true},
		{"10", 0, false},
		{"-1m", 0, false},
		{"1.5d", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}

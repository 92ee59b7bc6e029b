package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/band-project/band/internal/cmdtest"
)

func TestVersionAndCheck(t *testing.T) {
	r := cmdtest.Run(t, "band", "--version")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "band ") {
		t.Errorf("--version: code %d, stdout %q", r.Code, r.Stdout)
	}
	r = cmdtest.Run(t, "band", "--check")
	if r.Code != 0 || !strings.Contains(r.Stdout, "OK") || !strings.Contains(r.Stdout, "apache-auth") {
		t.Errorf("--check on the embedded config: code %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "band.toml")
	os.WriteFile(bad, []byte("[defaults]\nbantime = \"10 minutes\"\n\n[jail.x]\nkind = \"rate\"\nthreshold = 5\nwindow = \"1s\"\npath = ['(']\n"), 0o644)
	r = cmdtest.Run(t, "band", "--check", "--config", bad)
	if r.Code == 0 {
		t.Fatal("--check accepted a bad configuration")
	}
	for _, want := range []string{bad + ":2", "bantime", bad + ":8", "path"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("--check error %q does not mention %q", r.Stderr, want)
		}
	}
}

// configFile writes dir/band.toml for a test: the control socket and the
// state in dir (plus daemon, more [daemon] keys), the dry-run backend, an
// "access" and an "error" source at the paths given, then body (defaults
// and jails).
func configFile(t *testing.T, dir, daemon, access, errlog, body string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
[daemon]
socket = %q
state_dir = %q
%s
[firewall]
backend = "dryrun"

[[source]]
name = "access"
path = %q
format = "combined"

[[source]]
name = "error"
path = %q
format = "error"
%s`, filepath.Join(dir, "band.sock"), filepath.Join(dir, "state"), daemon, access, errlog, body)
	path := filepath.Join(dir, "band.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeConfig writes a band.toml like the embedded default but reading
// logs in dir/logs (every *access.log), with the dry-run backend.
func writeConfig(t *testing.T, dir string, extra string) string {
	t.Helper()
	return configFile(t, dir, "", filepath.Join(dir, "logs", "*access.log"), filepath.Join(dir, "logs", "error.log"), `
[defaults]
bantime = "10m"
findtime = "10m"
maxretry = 5

[jail.apache-auth]
enabled = true

[jail.http-flood]
enabled = true
`+extra)
}

func appendLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		fmt.Fprintln(f, l)
	}
}

func authFailure(client string, t time.Time) string {
	return fmt.Sprintf(`[%s] [auth_basic:error] [pid 1:tid 2] [client %s:40000] AH01618: user admin not found: /private`,
		t.Format("Mon Jan 02 15:04:05.000000 2006"), client)
}

func request(client, path string, t time.Time) string {
	return fmt.Sprintf(`%s - - [%s] "GET %s HTTP/1.1" 200 100 "-" "curl/8"`, client, t.Format("02/Jan/2006:15:04:05 -0700"), path)
}

func TestDaemonWaitsForLogsThenBans(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")
	band := cmdtest.Start(t, "band", "--config", cfg)
	band.WaitFor(t, "waiting for log file", "error.log")
	band.WaitFor(t, "band started", "backend=dryrun")

	// The logs appear, as when Apache is installed after band.
	logs := filepath.Join(dir, "logs")
	os.MkdirAll(logs, 0o755)
	now := time.Now()
	var lines []string
	for i := 0; i < 5; i++ {
		lines = append(lines, authFailure("192.0.2.10", now.Add(time.Duration(i)*time.Second)))
	}
	appendLines(t, filepath.Join(logs, "error.log"), lines...)
	band.WaitFor(t, "msg=ban", "addr=192.0.2.10", "jail=apache-auth", "ttl=10m0s", "hits=5", "AH01618")

	// A second access log matching the glob: a page flood is banned.
	var flood []string
	for i := 0; i < 40; i++ {
		flood = append(flood, request("198.51.100.66", "/search", now))
	}
	appendLines(t, filepath.Join(logs, "other_access.log"), flood...)
	band.WaitFor(t, "msg=ban", "addr=198.51.100.66", "jail=http-flood")

	// Loopback is never banned.
	flood = flood[:0]
	for i := 0; i < 40; i++ {
		flood = append(flood, request("127.0.0.1", "/search", now))
	}
	appendLines(t, filepath.Join(logs, "other_access.log"), flood...)

	// SIGTERM stops cleanly, after the lines already read.
	band.Cmd.Process.Signal(syscall.SIGTERM)
	if code := band.Wait(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if n := band.Count("msg=ban", "addr=127.0.0.1"); n != 0 {
		t.Error("loopback was banned")
	}
	if band.Count("band stopped") != 1 {
		t.Error("no clean stop logged")
	}
}

func TestReloadKeepsWindowsAndAddsJails(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	os.MkdirAll(logs, 0o755)
	errlog := filepath.Join(logs, "error.log")
	access := filepath.Join(logs, "access.log")
	appendLines(t, errlog)
	appendLines(t, access)
	cfg := writeConfig(t, dir, "")
	band := cmdtest.Start(t, "band", "--config", cfg)
	band.WaitFor(t, "following log file", "error.log")
	band.WaitFor(t, "following log file", "access.log")

	now := time.Now()
	// Three failures before the reload…
	for i := 0; i < 3; i++ {
		appendLines(t, errlog, authFailure("192.0.2.20", now.Add(time.Duration(i)*time.Second)))
	}
	// …then a reload that adds a jail of our own in jail.d.
	os.MkdirAll(filepath.Join(dir, "jail.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "jail.d", "login.toml"), []byte(`
[jail.login-flood]
enabled = true
kind = "rate"
sources = ["access"]
per = "page"
path = ['^/wp-login\.php$']
threshold = 3
window = "2s"
bantime = "1h"
`), 0o644)
	band.Cmd.Process.Signal(syscall.SIGHUP)
	band.WaitFor(t, "configuration reloaded", "login-flood")
	// …and two after it: the window survived the reload.
	for i := 3; i < 5; i++ {
		appendLines(t, errlog, authFailure("192.0.2.20", now.Add(time.Duration(i)*time.Second)))
	}
	band.WaitFor(t, "msg=ban", "addr=192.0.2.20", "jail=apache-auth", "hits=5")
	for i := 0; i < 4; i++ {
		appendLines(t, access, request("203.0.113.7", "/wp-login.php", now))
	}
	band.WaitFor(t, "msg=ban", "addr=203.0.113.7", "jail=login-flood", "ttl=1h0m0s")

	// A broken config on reload is refused and the running one stays.
	os.WriteFile(filepath.Join(dir, "jail.d", "broken.toml"), []byte("[jail.login-flood]\nthreshold = \"many\"\n"), 0o644)
	band.Cmd.Process.Signal(syscall.SIGHUP)
	band.WaitFor(t, "reload failed", "broken.toml")
}

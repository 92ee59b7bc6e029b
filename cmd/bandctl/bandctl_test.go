package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/band-project/band/internal/cmdtest"
	"github.com/band-project/band/internal/loggen"
)

func genLogs(t *testing.T) (string, string) {
	t.Helper()
	l := loggen.Generate(7, 12)
	dir := t.TempDir()
	a, e := filepath.Join(dir, "access.log"), filepath.Join(dir, "error.log")
	for name, lines := range map[string][]string{a: l.Access, e: l.Error} {
		f, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		loggen.Write(f, lines)
		f.Close()
	}
	return a, e
}

type jsonReport struct {
	Lines       int `json:"lines"`
	ParseErrors int `json:"parse_errors"`
	Matches     []struct {
		Jail, Addr, File string
		Time             string
		Line             int
	} `json:"matches"`
	Bans []struct {
		Jail, Addr, Time string
		Count            int
	} `json:"bans"`
}

func TestTestJSON(t *testing.T) {
	access, errlog := genLogs(t)
	t.Setenv("TZ", "Etc/GMT+7") // the generator's error-log lines are in UTC-7
	r := cmdtest.Run(t, "bandctl", "test", "-o", "json", "--matches", access, errlog)
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	var rep jsonReport
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, r.Stdout)
	}
	if rep.ParseErrors != 2 || rep.Lines < 1000 {
		t.Errorf("lines %d, parse errors %d; want many lines and 2 errors", rep.Lines, rep.ParseErrors)
	}
	var got, want []string
	for _, b := range rep.Bans {
		got = append(got, b.Jail+" "+b.Addr)
		ts, err := time.Parse(time.RFC3339, b.Time)
		if err != nil {
			t.Errorf("ban time %q is not RFC 3339", b.Time)
		} else if _, off := ts.Zone(); off != -7*3600 {
			t.Errorf("ban time %q lost the line's offset", b.Time)
		}
	}
	for jail, addrs := range loggen.Expected {
		for _, a := range addrs {
			want = append(want, jail+" "+a)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("bans\n got %v\nwant %v", got, want)
	}
	if len(rep.Matches) == 0 || rep.Matches[0].File == "" || rep.Matches[0].Line == 0 {
		t.Errorf("matches missing or without file and line: %+v", rep.Matches[:min(1, len(rep.Matches))])
	}
	// Without --matches the list is empty, not absent.
	r = cmdtest.Run(t, "bandctl", "test", "-o", "json", "--jail", "apache-auth", errlog)
	if !strings.Contains(r.Stdout, `"matches":[]`) {
		t.Errorf("matches not an empty list without --matches: %s", r.Stdout)
	}
}

func TestTestText(t *testing.T) {
	access, _ := genLogs(t)
	r := cmdtest.Run(t, "bandctl", "test", access, "--jail", "http-flood")
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	for _, want := range []string{"lines read:", "http-flood", loggen.PageFlooder} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.Stdout)
		}
	}
	if strings.Contains(r.Stdout, "apache-auth") {
		t.Errorf("--jail http-flood still reports apache-auth:\n%s", r.Stdout)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "band.toml")
	os.WriteFile(bad, []byte("[jail.mine]\nenabled = true\nstatus = [404]\nmaxretry = -1\n"), 0o644)
	tests := []struct {
		name       string
		args       []string
		code       int
		stderrPart string
	}{
		{"no command", nil, exitUsage, "no command"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"test without files", []string{"test"}, exitUsage, "give at least one log file"},
		{"missing file", []string{"test", filepath.Join(dir, "nope.log")}, exitError, "nope.log"},
		{"bad output", []string{"test", "-o", "yaml", "x"}, exitUsage, "text or json"},
		{"unknown jail", []string{"test", "--jail", "nope", bad}, exitError, `no jail named "nope"`},
		{"bad config", []string{"check", "--config", bad}, exitConfig, bad + ":4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cmdtest.Run(t, "bandctl", tt.args...)
			if r.Code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.Code, tt.code, r.Stderr)
			}
			if !strings.Contains(r.Stderr, tt.stderrPart) {
				t.Errorf("stderr %q lacks %q", r.Stderr, tt.stderrPart)
			}
			if r.Stdout != "" && tt.code != 0 {
				t.Errorf("stdout not empty on error: %q", r.Stdout)
			}
		})
	}
	r := cmdtest.Run(t, "bandctl", "check")
	if r.Code != 0 || !strings.Contains(r.Stdout, "OK") {
		t.Errorf("check of the embedded config: %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
}

func TestCompletion(t *testing.T) {
	r := cmdtest.Run(t, "bandctl", "completion", "bash")
	if r.Code != 0 || !strings.Contains(r.Stdout, "complete -F _bandctl bandctl") {
		t.Fatalf("bash completion: %d %q", r.Code, r.Stderr)
	}
	script := filepath.Join(t.TempDir(), "bandctl.bash")
	os.WriteFile(script, []byte(r.Stdout), 0o644)
	// The script loads in bash and completes the commands.
	out, err := exec.Command("bash", "-c", `source "$1"; COMP_WORDS=(bandctl un); COMP_CWORD=1; _bandctl; echo "${COMPREPLY[@]}"`, "bash", script).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "unban" {
		t.Errorf("completing 'bandctl un': %q %v", out, err)
	}
	r = cmdtest.Run(t, "bandctl", "completion", "zsh")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "#compdef bandctl") {
		t.Errorf("zsh completion: %d %q", r.Code, r.Stdout[:min(40, len(r.Stdout))])
	}
	if r = cmdtest.Run(t, "bandctl", "completion", "fish"); r.Code != exitUsage {
		t.Errorf("completion fish: exit %d, want %d", r.Code, exitUsage)
	}
}

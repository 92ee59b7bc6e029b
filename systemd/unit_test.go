package systemd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/band-project/band/internal/cmdtest"
)

func TestMain(m *testing.M) { os.Exit(cmdtest.Main(m)) }

// settings reads a unit's [Service] key=value lines; repeated keys are
// joined with a space.
func settings(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, _ := strings.Cut(line, "=")
			if out[k] != "" {
				v = out[k] + " " + v
			}
			out[k] = v
		}
	}
	return out
}

func TestUnitSettings(t *testing.T) {
	s := settings(t, "band.service")
	tests := []struct{ key, want string }{
		{"Type", "notify"},
		{"ExecStartPre", "/usr/sbin/band --check --config /etc/band/band.toml"},
		{"ExecStart", "/usr/sbin/band --config /etc/band/band.toml"},
		{"ExecReload", "/bin/kill -HUP $MAINPID"},
		{"Restart", "on-failure"},
		{"WatchdogSec", "30s"},
		{"StateDirectory", "band"},
		{"RuntimeDirectory", "band"},
		{"CapabilityBoundingSet", "CAP_NET_ADMIN CAP_NET_RAW CAP_DAC_READ_SEARCH CAP_CHOWN"},
		{"NoNewPrivileges", "yes"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"RestrictAddressFamilies", "AF_UNIX AF_NETLINK AF_INET AF_INET6"},
		{"SystemCallFilter", "@system-service ~@privileged @resources @chown"},
	}
	for _, tt := range tests {
		if got := s[tt.key]; got != tt.want {
			t.Errorf("%s=%s, want %s", tt.key, got, tt.want)
		}
	}
}

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd)")
	}
	return path
}

// TestVerify runs systemd-analyze verify on the unit, pointed at a freshly
// built band and at the man pages in packaging/man.
func TestVerify(t *testing.T) {
	analyze := systemdAnalyze(t)
	band := filepath.Join(cmdtest.Build(t), "band")
	unit, err := os.ReadFile("band.service")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	test := filepath.Join(dir, "band.service")
	if err := os.WriteFile(test, []byte(strings.ReplaceAll(string(unit), "/usr/sbin/band", band)), 0o644); err != nil {
		t.Fatal(err)
	}
	man, err := filepath.Abs("../packaging/man")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", test)
	cmd.Env = append(os.Environ(), "MANPATH="+man, "SYSTEMD_LOG_LEVEL=notice")
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

var exposure = regexp.MustCompile(`Overall exposure level for band.service: ([0-9.]+)`)

// TestSecurity holds the sandbox's exposure score to at most 3.0.
func TestSecurity(t *testing.T) {
	analyze := systemdAnalyze(t)
	out, err := exec.Command(analyze, "security", "--offline=true", "--no-pager", "band.service").CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposure.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exposure %.1f", score)
	if score > 3.0 {
		t.Errorf("exposure %.1f, want at most 3.0:\n%s", score, out)
	}
}

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/band-project/band/internal/cmdtest"
)

// writeMetricsConfig writes a band.toml with metrics on a free loopback
// port, the dry-run backend, logs in dir/logs and two jails.
func writeMetricsConfig(t *testing.T, dir string) string {
	t.Helper()
	return configFile(t, dir, `metrics = "127.0.0.1:0"`, filepath.Join(dir, "logs", "access.log"), filepath.Join(dir, "logs", "error.log"), `
[jail.apache-auth]
enabled = true
maxretry = 5

[jail.http-flood]
enabled = true
`)
}

// scrape fetches url and returns each sample as "name{labels}" → value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

var metricsURL = regexp.MustCompile(`url=(http://\S+/metrics)`)

func TestMetricsAfterLines(t *testing.T) {
	dir := t.TempDir()
	band := cmdtest.Start(t, "band", "--config", writeMetricsConfig(t, dir))
	url := metricsURL.FindStringSubmatch(band.WaitFor(t, "serving metrics"))[1]
	// The logs appear after band looked for them, so it reads them from the start.
	band.WaitFor(t, "waiting for log file", "access.log")
	band.WaitFor(t, "waiting for log file", "error.log")

	logs := filepath.Join(dir, "logs")
	os.MkdirAll(logs, 0o755)
	now := time.Now()
	// access: 3 lines that do not parse, then 31 requests for one page in
	// one second; the 31st tips http-flood (more than 30 in 2 s).
	access := []string{"garbage", "GET / HTTP/1.1", "- - - -"}
	for i := 0; i < 31; i++ {
		access = append(access, request("198.51.100.66", "/search", now))
	}
	appendLines(t, filepath.Join(logs, "access.log"), access...)
	// error: 5 failed logins; the 5th tips apache-auth.
	var errs []string
	for i := 0; i < 5; i++ {
		errs = append(errs, authFailure("192.0.2.10", now.Add(time.Duration(i)*time.Second)))
	}
	appendLines(t, filepath.Join(logs, "error.log"), errs...)
	// Each ban is made on its file's last line, so once both are logged
	// every line has been processed.
	band.WaitFor(t, "msg=ban", "addr=198.51.100.66", "jail=http-flood", "hits=31")
	band.WaitFor(t, "msg=ban", "addr=192.0.2.10", "jail=apache-auth", "hits=5")

	got := scrape(t, url)
	want := map[string]float64{
		`band_lines_total{source="access"}`:                                         34,
		`band_lines_total{source="error"}`:                                          5,
		`band_parse_errors_total{source="access"}`:                                  3,
		`band_parse_errors_total{source="error"}`:                                   0,
		`band_matches_total{jail="http-flood"}`:                                     31,
		`band_matches_total{jail="apache-auth"}`:                                    5,
		`band_bans_total{jail="http-flood"}`:                                        1,
		`band_bans_total{jail="apache-auth"}`:                                       1,
		`band_active_bans{jail="http-flood"}`:                                       1,
		`band_active_bans{jail="apache-auth"}`:                                      1,
		`band_detector_evictions_total{jail="http-flood"}`:                          0,
		`band_detector_evictions_total{jail="apache-auth"}`:                         0,
		`band_firewall_operations_total{backend="dryrun",op="setup",result="ok"}`:   1,
		`band_firewall_operations_total{backend="dryrun",op="ban",result="ok"}`:     2,
		`band_firewall_operation_duration_seconds_count{backend="dryrun",op="ban"}`: 2,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: got %v (present %v), want %v", k, g, ok, v)
		}
	}
	// Gauges whose value depends on timing: present, and sane.
	for _, k := range []string{
		`band_detector_tracked_keys{jail="http-flood"}`,
		`band_detector_tracked_keys{jail="apache-auth"}`,
		fmt.Sprintf(`band_tail_lag_bytes{file=%q,source="access"}`, filepath.Join(logs, "access.log")),
		fmt.Sprintf(`band_tail_lag_seconds{file=%q,source="error"}`, filepath.Join(logs, "error.log")),
		`band_firewall_operations_total{backend="dryrun",op="list",result="ok"}`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if g, ok := got[k]; !ok || g < 0 {
			t.Errorf("%s: got %v (present %v), want a value ≥ 0", k, g, ok)
		}
	}

	band.Cmd.Process.Signal(syscall.SIGTERM)
	if code := band.Wait(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	// The metrics server stopped with band.
	if resp, err := http.Get(url); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Errorf("GET %s after stop: %s, want a refused connection", url, resp.Status)
	}
}

func TestMetricsOffByDefault(t *testing.T) {
	dir := t.TempDir()
	band := cmdtest.Start(t, "band", "--config", writeConfig(t, dir, ""))
	band.WaitFor(t, "band started")
	if n := band.Count("serving metrics"); n != 0 {
		t.Errorf("metrics served without [daemon] metrics")
	}
}

func TestJSONBanLog(t *testing.T) {
	dir := t.TempDir()
	band := cmdtest.Start(t, "band", "--config", writeConfig(t, dir, ""), "--log-format", "json")
	band.WaitFor(t, `"msg":"waiting for log file"`, "error.log")
	logs := filepath.Join(dir, "logs")
	os.MkdirAll(logs, 0o755)
	now := time.Now()
	long := "/private/" + strings.Repeat("x", 300)
	var lines []string
	for i := 0; i < 5; i++ {
		lines = append(lines, strings.Replace(authFailure("192.0.2.44", now.Add(time.Duration(i)*time.Second)), "/private", long, 1))
	}
	appendLines(t, filepath.Join(logs, "error.log"), lines...)
	raw := band.WaitFor(t, `"msg":"ban"`, "192.0.2.44")

	var ban struct {
		Time  string `json:"time"`
		Level string `json:"level"`
		Msg   string `json:"msg"`
		Addr  string `json:"addr"`
		Jail  string `json:"jail"`
		TTL   string `json:"ttl"`
		Hits  int    `json:"hits"`
		Line  string `json:"line"`
	}
	if err := json.Unmarshal([]byte(raw), &ban); err != nil {
		t.Fatalf("ban log line is not JSON: %v\n%s", err, raw)
	}
	if ban.Msg != "ban" || ban.Level != "INFO" || ban.Addr != "192.0.2.44/32" || ban.Jail != "apache-auth" || ban.TTL != "10m0s" || ban.Hits != 5 {
		t.Errorf("ban log %+v, want msg ban, level INFO, addr 192.0.2.44/32, jail apache-auth, ttl 10m0s, hits 5", ban)
	}
	// The tipping line, cut at 200 bytes.
	if want := lines[4][:200] + "…"; ban.Line != want {
		t.Errorf("ban log line field\n got %q\nwant %q", ban.Line, want)
	}
}

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/band-project/band/control"
	"github.com/band-project/band/internal/cmdtest"
	"github.com/band-project/band/state"
)

// stateConfig writes a band.toml reading dir/access.log and dir/error.log,
// with a counting jail that never bans (every 401 is a match) and extra.
func stateConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	return configFile(t, dir, "", filepath.Join(dir, "access.log"), filepath.Join(dir, "error.log"), `
[jail.count401]
enabled = true
sources = ["access"]
status = [401]
maxretry = 1000000
findtime = "1h"
`+extra)
}

func unauthorized(n int, from int) []string {
	lines := make([]string, n)
	now := time.Now().Format("02/Jan/2006:15:04:05 -0700")
	for i := range lines {
		lines[i] = fmt.Sprintf(`198.51.100.%d - - [%s] "GET /private/%d HTTP/1.1" 401 100 "-" "curl/8"`, 10+(from+i)%200, now, from+i)
	}
	return lines
}

// waitCounts polls the status until the access source has read at least
// lines lines, and returns the lines read and the matches of count401.
func waitCounts(t *testing.T, socket string, lines uint64) (uint64, uint64) {
	t.Helper()
	c := control.NewClient(socket)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := c.Status(context.Background())
		if err == nil {
			var got, matches uint64
			for _, s := range st.Sources {
				if s.Name == "access" {
					got = s.Lines
				}
			}
			for _, j := range st.Jails {
				if j.Name == "count401" {
					matches = j.Matches
				}
			}
			if got >= lines {
				return got, matches
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d lines read within 20s", got, lines)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("status: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling the daemon, not waiting for a window
	}
}

func stop(t *testing.T, p *cmdtest.Proc) {
	t.Helper()
	p.Cmd.Process.Signal(syscall.SIGTERM)
	if code := p.Wait(t); code != 0 {
		t.Fatalf("band exited %d after SIGTERM", code)
	}
}

func TestStopStartLosesAndDoublesNothing(t *testing.T) {
	dir := t.TempDir()
	access := filepath.Join(dir, "access.log")
	appendLines(t, access, unauthorized(20, 0)...) // history before band: not read
	cfg := stateConfig(t, dir, "")
	socket := filepath.Join(dir, "band.sock")

	band := cmdtest.Start(t, "band", "--config", cfg)
	band.WaitFor(t, "band started")
	appendLines(t, access, unauthorized(100, 20)...)
	if got, m := waitCounts(t, socket, 100); got != 100 || m != 100 {
		t.Fatalf("before the stop: %d lines, %d matches; want 100, 100", got, m)
	}
	stop(t, band)

	appendLines(t, access, unauthorized(50, 120)...) // written while band is down
	band = cmdtest.Start(t, "band", "--config", cfg)
	band.WaitFor(t, "band started")
	appendLines(t, access, unauthorized(30, 170)...)
	if got, m := waitCounts(t, socket, 180); got != 180 || m != 180 {
		t.Errorf("after the restart: %d lines, %d matches; want exactly 180, 180", got, m)
	}

	// Rotation while stopped: lines written to the old file before the
	// rotation are finished from the rotated file, then the new file is read.
	stop(t, band)
	appendLines(t, access, unauthorized(40, 200)...)
	if err := os.Rename(access, access+".1"); err != nil {
		t.Fatal(err)
	}
	appendLines(t, access, unauthorized(25, 240)...)
	band = cmdtest.Start(t, "band", "--config", cfg)
	band.WaitFor(t, "finished a log rotated while band was stopped", "lines=40")
	if got, m := waitCounts(t, socket, 245); got != 245 || m != 245 {
		t.Errorf("after a rotation while stopped: %d lines, %d matches; want exactly 245, 245", got, m)
	}
}

func TestRestartKeepsFailureCounts(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "stop", true: "kill -9"}[crash], func(t *testing.T) { restartKeepsFailureCounts(t, crash) })
	}
}

func restartKeepsFailureCounts(t *testing.T, crash bool) {
	dir := t.TempDir()
	errlog := filepath.Join(dir, "error.log")
	appendLines(t, errlog)
	cfg := stateConfig(t, dir, "\n[jail.apache-auth]\nenabled = true\nmaxretry = 5\nfindtime = \"10m\"\n")
	band := cmdtest.Start(t, "band", "--config", cfg)
	band.WaitFor(t, "following log file", "error.log")
	now := time.Now()
	for i := 0; i < 3; i++ {
		appendLines(t, errlog, authFailure("192.0.2.30", now.Add(time.Duration(i)*time.Second)))
	}
	waitMatches(t, filepath.Join(dir, "band.sock"), "apache-auth", 3)
	// Let a checkpoint pass, so the crash leaves a saved position behind
	// (lines after it are read again, with the windows saved with it).
	waitCheckpoint(t, filepath.Join(dir, "band.sock"), time.Now())
	// A crash, not a clean stop: the failures are counted again from the
	// last checkpoint's position, with the windows saved with it.
	if crash {
		band.Cmd.Process.Kill()
		band.Wait(t)
	} else {
		stop(t, band)
	}
	band = cmdtest.Start(t, "band", "--config", cfg)
	band.WaitFor(t, "band started")
	for i := 3; i < 5; i++ {
		appendLines(t, errlog, authFailure("192.0.2.30", now.Add(time.Duration(i)*time.Second)))
	}
	band.WaitFor(t, "msg=ban", "addr=192.0.2.30", "jail=apache-auth", "hits=5")
}

func waitCheckpoint(t *testing.T, socket string, after time.Time) {
	t.Helper()
	c := control.NewClient(socket)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := c.Status(context.Background()); err == nil && st.State.Saved.After(after) {
			return
		}
		time.Sleep(20 * time.Millisecond) // polling the daemon
	}
	t.Fatal("no checkpoint within 20s")
}

func waitMatches(t *testing.T, socket, jail string, n uint64) {
	t.Helper()
	c := control.NewClient(socket)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := c.Status(context.Background()); err == nil {
			for _, j := range st.Jails {
				if j.Name == jail && j.Matches >= n {
					return
				}
			}
		}
		time.Sleep(20 * time.Millisecond) // polling the daemon
	}
	t.Fatalf("jail %s did not reach %d matches", jail, n)
}

func TestKillDuringFloodKeepsListedBans(t *testing.T) {
	dir := t.TempDir()
	access := filepath.Join(dir, "access.log")
	appendLines(t, access)
	cfg := stateConfig(t, dir, `
[jail.http-flood]
enabled = true
threshold = 5
window = "10s"
bantime = "1h"
`)
	socket := filepath.Join(dir, "band.sock")
	band := cmdtest.Start(t, "band", "--config", cfg)
	band.WaitFor(t, "following log file", "access.log")
	c := control.NewClient(socket)

	// A flood from 300 addresses, written in bursts; the list is read
	// between bursts, and band is killed right after a list.
	now := time.Now().Format("02/Jan/2006:15:04:05 -0700")
	var listed []control.Ban
	for burst := 0; burst < 10; burst++ {
		var lines []string
		for a := burst * 30; a < burst*30+30; a++ {
			for k := 0; k < 6; k++ {
				lines = append(lines, fmt.Sprintf(`203.0.113.%d - - [%s] "GET /flood HTTP/1.1" 200 100 "-" "x"`, a%250+1, now))
				if a >= 250 {
					lines[len(lines)-1] = strings.Replace(lines[len(lines)-1], "203.0.113.", "198.51.100.", 1)
				}
			}
		}
		appendLines(t, access, lines...)
		bans, err := c.List(context.Background(), "", "")
		if err != nil {
			t.Fatal(err)
		}
		listed = bans
	}
	if len(listed) == 0 {
		t.Fatal("nothing was listed before the kill")
	}
	band.Cmd.Process.Kill()
	band.Wait(t)

	band = cmdtest.Start(t, "band", "--config", cfg)
	band.WaitFor(t, "band started")
	after, err := c.List(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]control.Ban{}
	for _, b := range after {
		if _, dup := have[b.Addr]; dup {
			t.Errorf("%s listed twice after the restart", b.Addr)
		}
		have[b.Addr] = b
	}
	for _, b := range listed {
		got, ok := have[b.Addr]
		if !ok {
			t.Errorf("%s was listed before kill -9 and is gone after the restart", b.Addr)
			continue
		}
		if !got.Expiry.Equal(b.Expiry) {
			t.Errorf("%s expiry %v after restart, was %v", b.Addr, got.Expiry, b.Expiry)
		}
	}
	t.Logf("%d bans listed before kill -9, %d after the restart", len(listed), len(after))
}

func TestCorruptStateFile(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "state"), 0o755)
	os.WriteFile(filepath.Join(dir, "state", state.FileName), []byte(strings.Repeat("garbage!", 4096)), 0o600)
	cfg := stateConfig(t, dir, "")
	band := cmdtest.Start(t, "band", "--config", cfg)
	band.WaitFor(t, "state file unreadable; moved aside, starting with an empty ban book")
	band.WaitFor(t, "band started")
	r := cmdtest.Run(t, "bandctl", "--socket", filepath.Join(dir, "band.sock"), "ban", "192.0.2.99")
	if r.Code != 0 {
		t.Errorf("ban after a corrupt state file: %d %s", r.Code, r.Stderr)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, "state", state.FileName+".corrupt-*"))
	if len(aside) != 1 {
		t.Errorf("corrupt file not kept aside: %v", aside)
	}
}

func TestEscalation(t *testing.T) {
	dir := t.TempDir()
	access := filepath.Join(dir, "access.log")
	appendLines(t, access)
	cfg := stateConfig(t, dir, `
[defaults]
bantime_increment = true
bantime_factor = 2
bantime_max = "25m"

[jail.evilbot]
enabled = true
sources = ["access"]
agent_words = ["EvilBot"]
maxretry = 1
bantime = "10m"
`)
	socket := filepath.Join(dir, "band.sock")
	band := cmdtest.Start(t, "band", "--config", cfg)
	band.WaitFor(t, "following log file", "access.log")
	c := control.NewClient(socket)
	var got []time.Duration
	for i := 0; i < 3; i++ {
		appendLines(t, access, fmt.Sprintf(`192.0.2.66 - - [%s] "GET / HTTP/1.1" 200 1 "-" "EvilBot/%d"`, time.Now().Format("02/Jan/2006:15:04:05 -0700"), i))
		band.WaitFor(t, "msg=ban", "addr=192.0.2.66/32", fmt.Sprintf("EvilBot/%d", i))
		bans, err := c.List(context.Background(), "evilbot", "")
		if err != nil || len(bans) != 1 {
			t.Fatalf("list: %v %v", bans, err)
		}
		got = append(got, bans[0].Expiry.Sub(bans[0].Start))
		if _, err := c.Unban(context.Background(), control.UnbanRequest{Addrs: []string{"192.0.2.66"}}); err != nil {
			t.Fatal(err)
		}
	}
	want := []time.Duration{10 * time.Minute, 20 * time.Minute, 25 * time.Minute}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ban %d lasted %v, want %v", i+1, got[i], want[i])
		}
	}
	// The history survives a restart: the fourth ban is still capped at 25m.
	stop(t, band)
	band = cmdtest.Start(t, "band", "--config", cfg)
	band.WaitFor(t, "band started")
	appendLines(t, access, fmt.Sprintf(`192.0.2.66 - - [%s] "GET / HTTP/1.1" 200 1 "-" "EvilBot/9"`, time.Now().Format("02/Jan/2006:15:04:05 -0700")))
	band.WaitFor(t, "msg=ban", "addr=192.0.2.66/32", "EvilBot/9")
	bans, _ := c.List(context.Background(), "evilbot", "")
	if len(bans) != 1 || bans[0].Expiry.Sub(bans[0].Start) != 25*time.Minute {
		t.Errorf("ban after restart: %+v, want 25m", bans)
	}
}

// A full disk: band reports it and keeps banning, in memory and in the
// kernel, and writes the bans once there is room again.
func TestFullDiskKeepsBanning(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small file system")
	}
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	os.MkdirAll(stateDir, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", stateDir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", stateDir).Run() })
	cfg := stateConfig(t, dir, "")
	band := cmdtest.Start(t, "band", "--config", cfg)
	band.WaitFor(t, "band started")
	// Fill the disk.
	filler := filepath.Join(stateDir, "filler")
	f, _ := os.Create(filler)
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	f.Close()
	c := control.NewClient(filepath.Join(dir, "band.sock"))
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		if _, err := c.Ban(ctx, control.BanRequest{Addr: fmt.Sprintf("198.51.100.%d", i), Reason: strings.Repeat("r", 200)}); err != nil {
			t.Fatalf("ban with a full disk: %v", err)
		}
	}
	bans, err := c.List(ctx, "", "")
	if err != nil || len(bans) != 200 {
		t.Fatalf("list with a full disk: %d bans, %v; want 200", len(bans), err)
	}
	st, _ := c.Status(ctx)
	if !strings.Contains(st.State.Error, "no space left") {
		t.Errorf("status does not report the full disk: %+v", st.State)
	}
	band.WaitFor(t, "cannot write the state file; bans are kept in memory")
	// Room again: the next flush writes them and the error clears.
	os.Remove(filler)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ = c.Status(ctx)
		if st.State.Error == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling the daemon
	}
	if st.State.Error != "" {
		t.Fatalf("error still reported after freeing space: %s", st.State.Error)
	}
	stop(t, band)
	band = cmdtest.Start(t, "band", "--config", cfg)
	band.WaitFor(t, "restored bans", "count=200")
}

package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/band-project/band/internal/cmdtest"
)

// notifications listens where NOTIFY_SOCKET points, as systemd does, and
// delivers each datagram.
func notifications(t *testing.T, dir string) <-chan string {
	t.Helper()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", sock)
	msgs := make(chan string, 1024)
	go func() {
		defer close(msgs)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return msgs
}

// nextState returns the next notification other than WATCHDOG=1, counting
// the watchdog pings skipped in *pings.
func nextState(t *testing.T, msgs <-chan string, pings *int) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatal("notify socket closed")
			}
			if m == "WATCHDOG=1" {
				*pings++
				continue
			}
			return m
		case <-deadline:
			t.Fatal("no notification within 20s")
		}
	}
}

func TestSystemdNotify(t *testing.T) {
	dir := t.TempDir()
	msgs := notifications(t, dir)
	// A 100 ms watchdog: band pings every 50 ms.
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", "")

	band := cmdtest.Start(t, "band", "--config", writeConfig(t, dir, ""))
	pings := 0
	if m := nextState(t, msgs, &pings); m != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", m)
	}
	band.WaitFor(t, "band started")

	// Watchdog pings keep coming while band runs.
	for pings < 3 {
		select {
		case m := <-msgs:
			if m != "WATCHDOG=1" {
				t.Fatalf("notification %q while idle, want WATCHDOG=1", m)
			}
			pings++
		case <-time.After(20 * time.Second):
			t.Fatalf("%d watchdog pings within 20s, want 3", pings)
		}
	}

	// SIGHUP: RELOADING=1 (with the monotonic time of the request), then READY=1.
	band.Cmd.Process.Signal(syscall.SIGHUP)
	m := nextState(t, msgs, &pings)
	if lines := strings.Split(m, "\n"); lines[0] != "RELOADING=1" || len(lines) != 2 || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("notification after SIGHUP %q, want RELOADING=1 and MONOTONIC_USEC=…", m)
	}
	if m := nextState(t, msgs, &pings); m != "READY=1" {
		t.Fatalf("notification after reloading %q, want READY=1", m)
	}
	band.WaitFor(t, "configuration reloaded")

	// A failed reload keeps the running configuration: band is ready again.
	os.MkdirAll(filepath.Join(dir, "jail.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "jail.d", "broken.toml"), []byte("[jail.apache-auth]\nmaxretry = \"many\"\n"), 0o644)
	band.Cmd.Process.Signal(syscall.SIGHUP)
	if m := nextState(t, msgs, &pings); !strings.HasPrefix(m, "RELOADING=1\n") {
		t.Fatalf("notification after second SIGHUP %q, want RELOADING=1", m)
	}
	if m := nextState(t, msgs, &pings); m != "READY=1" {
		t.Fatalf("notification after a failed reload %q, want READY=1", m)
	}

	band.Cmd.Process.Signal(syscall.SIGTERM)
	if m := nextState(t, msgs, &pings); m != "STOPPING=1" {
		t.Fatalf("notification after SIGTERM %q, want STOPPING=1", m)
	}
	if code := band.Wait(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

func TestNoNotifySocket(t *testing.T) {
	// Outside systemd band runs and stops without complaint.
	t.Setenv("NOTIFY_SOCKET", "")
	dir := t.TempDir()
	band := cmdtest.Start(t, "band", "--config", writeConfig(t, dir, ""))
	band.WaitFor(t, "band started")
	band.Cmd.Process.Signal(syscall.SIGTERM)
	if code := band.Wait(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if n := band.Count("cannot notify systemd"); n != 0 {
		t.Errorf("%d notify warnings without NOTIFY_SOCKET", n)
	}
}

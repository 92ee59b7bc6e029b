package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/band-project/band/control"
	"github.com/band-project/band/internal/cmdtest"
)

type daemon struct {
	dir, socket, config, access string
	proc                        *cmdtest.Proc
}

func startBand(t *testing.T, extra string) *daemon {
	t.Helper()
	return startBandGroup(t, "root", extra)
}

func startBandGroup(t *testing.T, group, extra string) *daemon {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755) // so other users can reach the socket
	d := &daemon{dir: dir, socket: filepath.Join(dir, "run", "band.sock"), access: filepath.Join(dir, "access.log")}
	os.WriteFile(d.access, nil, 0o644)
	d.config = filepath.Join(dir, "band.toml")
	cfg := fmt.Sprintf(`
[daemon]
socket = %q
socket_group = %q
state_dir = %q

[firewall]
backend = "dryrun"

[defaults]
bantime = "10m"
ignoreip = ["203.0.113.0/24"]

[[source]]
name = "access"
path = %q
format = "combined"

[jail.http-flood]
enabled = true
%s`, d.socket, group, dir, d.access, extra)
	os.WriteFile(d.config, []byte(cfg), 0o644)
	d.proc = cmdtest.Start(t, "band", "--config", d.config)
	d.proc.WaitFor(t, "band started")
	return d
}

func (d *daemon) ctl(t *testing.T, args ...string) cmdtest.Result {
	t.Helper()
	return cmdtest.Run(t, "bandctl", append([]string{"--socket", d.socket}, args...)...)
}

func TestControlEndToEnd(t *testing.T) {
	d := startBand(t, "")
	r := d.ctl(t, "list")
	if r.Code != 0 || !strings.Contains(r.Stdout, "no active bans") {
		t.Fatalf("empty list: %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
	r = d.ctl(t, "ban", "192.0.2.7", "--for", "1h", "--reason", "seen probing")
	if r.Code != 0 || !strings.Contains(r.Stdout, "banned 192.0.2.7/32 for 1h0m") {
		t.Fatalf("ban: %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
	d.ctl(t, "ban", "2001:db8::/64", "--jail", "http-flood")
	r = d.ctl(t, "list")
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ADDRESS") {
		t.Fatalf("list:\n%s", r.Stdout)
	}
	for _, l := range lines {
		if len([]rune(l)) > 80 {
			t.Errorf("line wider than 80 columns: %q", l)
		}
	}
	if !strings.Contains(lines[1], "192.0.2.7/32") || !strings.Contains(lines[1], "manual") || !strings.Contains(lines[1], "seen probing") {
		t.Errorf("list row %q", lines[1])
	}
	if !strings.Contains(lines[1], "59m5") && !strings.Contains(lines[1], "1h0m") {
		t.Errorf("list row %q: want about 1h to expiry", lines[1])
	}
	if !strings.Contains(lines[2], "2001:db8::/64") || !strings.Contains(lines[2], "http-flood") || !(strings.Contains(lines[2], "9m5") || strings.Contains(lines[2], "10m0s")) {
		t.Errorf("list row %q: want the jail's 10m bantime", lines[2])
	}

	r = d.ctl(t, "list", "-o", "json", "--jail", "http-flood")
	var bans []control.Ban
	if err := json.Unmarshal([]byte(r.Stdout), &bans); err != nil || len(bans) != 1 {
		t.Fatalf("list -o json --jail: %v %q", err, r.Stdout)
	}
	if exp := time.Until(bans[0].Expiry); exp < 9*time.Minute || exp > 10*time.Minute {
		t.Errorf("expiry in %v, want ~10m", exp)
	}
	r = d.ctl(t, "list", "--addr", "2001:db8::5", "-o", "json")
	if err := json.Unmarshal([]byte(r.Stdout), &bans); err != nil || len(bans) != 1 || bans[0].Addr != "2001:db8::/64" {
		t.Errorf("list --addr inside a prefix: %v %q", err, r.Stdout)
	}

	r = d.ctl(t, "unban", "192.0.2.7", "192.0.2.8")
	if r.Code != 0 || !strings.Contains(r.Stdout, "unbanned 192.0.2.7/32") || !strings.Contains(r.Stdout, "192.0.2.8/32 was not banned") {
		t.Errorf("unban: %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
	d.ctl(t, "ban", "192.0.2.9")
	r = d.ctl(t, "unban", "--all", "--jail", "http-flood")
	if !strings.Contains(r.Stdout, "unbanned 2001:db8::/64") || strings.Contains(r.Stdout, "192.0.2.9") {
		t.Errorf("unban --all --jail: %q", r.Stdout)
	}
	r = d.ctl(t, "unban", "--all")
	if !strings.Contains(r.Stdout, "unbanned 192.0.2.9/32") {
		t.Errorf("unban --all: %q", r.Stdout)
	}
	if r = d.ctl(t, "list"); !strings.Contains(r.Stdout, "no active bans") {
		t.Errorf("list after unban --all: %q", r.Stdout)
	}

	// status shows lines read after lines are appended to a watched log.
	f, _ := os.OpenFile(d.access, os.O_APPEND|os.O_WRONLY, 0)
	for i := 0; i < 7; i++ {
		fmt.Fprintf(f, "198.51.100.%d - - [%s] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"\n", 10+i, time.Now().Format("02/Jan/2006:15:04:05 -0700"))
	}
	fmt.Fprintln(f, "garbage")
	f.Close()
	var st control.Status
	deadline := time.Now().Add(15 * time.Second)
	for {
		r = d.ctl(t, "status", "-o", "json")
		if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
			t.Fatalf("status -o json: %v %q", err, r.Stdout)
		}
		if len(st.Sources) == 1 && st.Sources[0].Lines == 8 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling the daemon, not waiting for a window
	}
	if st.Sources[0].Lines != 8 || st.Sources[0].ParseErrors != 1 || st.Backend != "dryrun" {
		t.Errorf("status: %+v", st)
	}
	if len(st.Sources[0].Files) != 1 || st.Sources[0].Files[0].Offset == 0 || st.Sources[0].Files[0].LagBytes != 0 {
		t.Errorf("status files: %+v", st.Sources[0].Files)
	}
	r = d.ctl(t, "status")
	for _, want := range []string{"band ", "dryrun", "access.log", "http-flood", "JAIL"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("status text lacks %q:\n%s", want, r.Stdout)
		}
	}
	if r = d.ctl(t, "status", "http-flood"); r.Code != 0 || !strings.Contains(r.Stdout, "http-flood") {
		t.Errorf("status JAIL: %d %q", r.Code, r.Stdout)
	}

	// reload picks up a new jail.
	os.MkdirAll(filepath.Join(d.dir, "jail.d"), 0o755)
	os.WriteFile(filepath.Join(d.dir, "jail.d", "x.toml"), []byte("[jail.apache-badbots]\nenabled = true\nsources = [\"access\"]\n"), 0o644)
	if r = d.ctl(t, "reload"); r.Code != 0 {
		t.Fatalf("reload: %d %q", r.Code, r.Stderr)
	}
	if r = d.ctl(t, "status", "apache-badbots"); r.Code != 0 {
		t.Errorf("new jail not in status after reload: %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
	os.WriteFile(filepath.Join(d.dir, "jail.d", "y.toml"), []byte("[jail.apache-badbots]\nmaxretry = \"x\"\n"), 0o644)
	if r = d.ctl(t, "reload"); r.Code == 0 || !strings.Contains(r.Stderr, "y.toml:2") {
		t.Errorf("bad reload: %d %q", r.Code, r.Stderr)
	}
	os.Remove(filepath.Join(d.dir, "jail.d", "y.toml"))

	// The errors an admin meets, each with its message and exit code.
	errCases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"not an address", []string{"ban", "example.com"}, exitUsage, `"example.com" is not an IP address`},
		{"whitelisted", []string{"ban", "203.0.113.5"}, exitRefused, "whitelisted (ignoreip); add --force"},
		{"loopback", []string{"ban", "127.0.0.1", "--force"}, exitRefused, "never bans it"},
		{"no such jail", []string{"ban", "192.0.2.1", "--jail", "nope"}, exitNotFound, `no jail named "nope"`},
		{"no such jail in list", []string{"list", "--jail", "nope"}, exitNotFound, `no jail named "nope"`},
		{"bad duration", []string{"ban", "192.0.2.1", "--for", "soon"}, exitUsage, `"soon"`},
		{"unban nothing", []string{"unban"}, exitUsage, "--all"},
	}
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			r := d.ctl(t, c.args...)
			if r.Code != c.code || !strings.Contains(r.Stderr, c.msg) || r.Stdout != "" {
				t.Errorf("exit %d stderr %q stdout %q; want exit %d and %q", r.Code, r.Stderr, r.Stdout, c.code, c.msg)
			}
		})
	}
	if r = d.ctl(t, "ban", "203.0.113.5", "--force"); r.Code != 0 {
		t.Errorf("--force on a whitelisted address: %d %q", r.Code, r.Stderr)
	}

	// A daemon that is not running.
	r = cmdtest.Run(t, "bandctl", "list", "--socket", filepath.Join(d.dir, "nope.sock"))
	if r.Code != exitNotRunning || !strings.Contains(r.Stderr, "band is not running: no socket at") {
		t.Errorf("not running: %d %q", r.Code, r.Stderr)
	}
	// The environment variable names the socket.
	cmd := exec.Command(filepath.Join(cmdtest.Build(t), "bandctl"), "list")
	cmd.Env = append(os.Environ(), "BAND_SOCKET="+d.socket)
	if out, err := cmd.Output(); err != nil || !strings.Contains(string(out), "203.0.113.5") {
		t.Errorf("BAND_SOCKET: %v %q", err, out)
	}
}

func TestControlRefusesOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run bandctl as another user")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	d := startBand(t, "")
	d.ctl(t, "ban", "192.0.2.50")
	bin := filepath.Join(cmdtest.Build(t), "bandctl")
	os.Chmod(filepath.Dir(bin), 0o755)
	asNobody := func(args ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{"--socket", d.socket}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	// The socket is 0660 root:root: nobody cannot even connect.
	fi, _ := os.Stat(d.socket)
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want 0660", fi.Mode().Perm())
	}
	out, code := asNobody("unban", "192.0.2.50")
	if code != exitPermission || !strings.Contains(out, "members of group root") {
		t.Errorf("nobody on a 0660 socket: %d %q", code, out)
	}
	// Even if the socket's mode is opened by mistake, the daemon checks the
	// peer's credentials: nobody may read but not change state.
	os.Chmod(d.socket, 0o666)
	if out, code = asNobody("list"); code != 0 || !strings.Contains(out, "192.0.2.50") {
		t.Errorf("nobody list: %d %q", code, out)
	}
	for _, args := range [][]string{{"unban", "192.0.2.50"}, {"ban", "192.0.2.51"}, {"unban", "--all"}, {"reload"}} {
		out, code = asNobody(args...)
		if code != exitPermission || !strings.Contains(out, "permission denied") {
			t.Errorf("nobody %v: %d %q", args, code, out)
		}
	}
	if r := d.ctl(t, "list"); !strings.Contains(r.Stdout, "192.0.2.50") || strings.Contains(r.Stdout, "192.0.2.51") {
		t.Errorf("a refused peer changed the bans:\n%s", r.Stdout)
	}
}

func TestControlAllowsGroupMembers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run bandctl as another user")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	g, err := user.LookupGroupId(nobody.Gid)
	if err != nil {
		t.Skip("nobody has no group")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	d := startBandGroup(t, g.Name, "")
	fi, _ := os.Stat(d.socket)
	if st := fi.Sys().(*syscall.Stat_t); int(st.Gid) != gid || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket group %d mode %v, want %d and 0660", st.Gid, fi.Mode().Perm(), gid)
	}
	bin := filepath.Join(cmdtest.Build(t), "bandctl")
	os.Chmod(filepath.Dir(bin), 0o755)
	for _, args := range [][]string{{"ban", "192.0.2.60"}, {"unban", "192.0.2.60"}, {"reload"}} {
		cmd := exec.Command(bin, append([]string{"--socket", d.socket}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("a member of group %s: bandctl %v: %v %s", g.Name, args, err, out)
		}
	}
}

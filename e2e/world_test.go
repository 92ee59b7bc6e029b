package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/band-project/band/internal/netnstest"
)

// The addresses of the scenario, all inside namespaces the test creates.
var (
	serverV4 = netip.MustParseAddr("198.51.100.1")
	serverV6 = netip.MustParseAddr("2001:db8::1")

	legitAddrs = []netip.Addr{
		netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("198.51.100.11"),
		netip.MustParseAddr("198.51.100.12"), netip.MustParseAddr("198.51.100.13"),
		netip.MustParseAddr("198.51.100.14"), netip.MustParseAddr("198.51.100.15"),
		netip.MustParseAddr("198.51.100.16"), netip.MustParseAddr("198.51.100.17"),
		netip.MustParseAddr("198.51.100.18"), netip.MustParseAddr("198.51.100.19"),
		netip.MustParseAddr("2001:db8::10"), netip.MustParseAddr("2001:db8::11"),
	}
	flooderV4 = netip.MustParseAddr("198.51.100.66")
	flooderV6 = netip.MustParseAddr("2001:db8::66")
	scannerV4 = netip.MustParseAddr("198.51.100.67")
	bruteV4   = netip.MustParseAddr("198.51.100.68")
	bruteV6   = netip.MustParseAddr("2001:db8::68")
)

// The basic-auth accounts of the protected area: legitimate members log in
// as member; the brute-forcer guesses admin's password (AH01617) and tries
// names that do not exist (AH01618).
const (
	memberUser = "member"
	memberPass = "correct horse battery staple"
	adminUser  = "admin"
	adminPass  = "a password nobody guesses"
)

// requireScenario skips the test without root and fails it when root lacks
// the programs scripts/test-deps.sh installs.
func requireScenario(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, Apache on port 80 and the kernel firewall")
	}
	if testing.Short() {
		t.Skip("the Apache scenario takes about a minute; skipped with -short")
	}
	for _, p := range []string{"apache2", "htpasswd", "ip", "ss", "nft", "iptables", "ipset"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s is not installed: as root, scripts/test-deps.sh (make test-deps) installs it", p)
		}
	}
	if _, err := os.Stat("/usr/lib/apache2/modules/mod_mpm_event.so"); err != nil {
		t.Fatalf("Apache's modules are missing (%v): install apache2 with scripts/test-deps.sh", err)
	}
}

// world is the scenario's machines: a LAN of namespaces, Apache and band in
// the server's.
type world struct {
	t       *testing.T
	dir     string // Apache's ServerRoot and band's files, readable by www-data
	bin     string // band and bandctl
	backend string

	lan                                    *netnstest.LAN
	server, legit, flooder, scanner, brute *netnstest.NS

	apache *exec.Cmd
	band   *proc
	socket string
}

func newWorld(t *testing.T, bin, backend string) *world {
	t.Helper()
	dir, err := os.MkdirTemp("", "band-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("BAND_E2E_KEEP") != "" {
			t.Logf("files of the run (Apache's logs, band's log and configuration) kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	// Apache's children run as www-data and read the site from here.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lan := netnstest.NewLAN(t,
		netnstest.Host{Name: "server", Addrs: []string{"198.51.100.1/24", "2001:db8::1/64"}},
		netnstest.Host{Name: "legit", Addrs: cidrs(legitAddrs)},
		netnstest.Host{Name: "flooder", Addrs: cidrs([]netip.Addr{flooderV4, flooderV6})},
		netnstest.Host{Name: "scanner", Addrs: cidrs([]netip.Addr{scannerV4})},
		netnstest.Host{Name: "brute", Addrs: cidrs([]netip.Addr{bruteV4, bruteV6})},
	)
	w := &world{
		t: t, dir: dir, bin: bin, backend: backend, lan: lan,
		server: lan.Hosts["server"], legit: lan.Hosts["legit"], flooder: lan.Hosts["flooder"],
		scanner: lan.Hosts["scanner"], brute: lan.Hosts["brute"],
	}
	w.startApache()
	w.startBand()
	return w
}

func cidrs(addrs []netip.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		bits := 64
		if a.Is4() {
			bits = 24
		}
		out[i] = netip.PrefixFrom(a, bits).String()
	}
	return out
}

// serverAddr is the server's HTTP address in a's family.
func serverAddr(a netip.Addr) string {
	if a.Is4() {
		return netip.AddrPortFrom(serverV4, 80).String()
	}
	return netip.AddrPortFrom(serverV6, 80).String()
}

// startApache writes the site, the password file and the configuration from
// testdata, and runs Debian's apache2 in the server's namespace until the
// test ends.
func (w *world) startApache() {
	t := w.t
	t.Helper()
	for _, d := range []string{"logs", "run"} {
		if err := os.Mkdir(filepath.Join(w.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyDir(filepath.Join("testdata", "www"), filepath.Join(w.dir, "www")); err != nil {
		t.Fatalf("copying the site: %v", err)
	}
	if err := writeLogo(filepath.Join(w.dir, "www", "logo.png")); err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(w.dir, "htpasswd")
	for i, acct := range [][2]string{{memberUser, memberPass}, {adminUser, adminPass}} {
		args := []string{"-b", "-B", "-C", "5", htpasswd, acct[0], acct[1]}
		if i == 0 {
			args[0] = "-cb"
		}
		if out, err := exec.Command("htpasswd", args...).CombinedOutput(); err != nil {
			t.Fatalf("htpasswd: %v: %s", err, out)
		}
	}
	os.Chmod(htpasswd, 0o644)

	tmpl, err := template.ParseFiles(filepath.Join("testdata", "apache2.conf.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	var conf bytes.Buffer
	if err := tmpl.Execute(&conf, struct{ Dir string }{w.dir}); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(w.dir, "apache2.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := w.server.Command("apache2", "-t", "-f", confPath).CombinedOutput(); err != nil {
		t.Fatalf("apache2 -t: %v: %s", err, out)
	}

	cmd := w.server.Command("apache2", "-f", confPath, "-DFOREGROUND")
	out, err := os.Create(filepath.Join(w.dir, "logs", "apache2.out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Apache's children outlive a parent killed by SIGKILL; in a PID
	// namespace of its own, the parent is init and they die with it.
	cmd.SysProcAttr = daemonAttr()
	cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting apache2: %v", err)
	}
	w.apache = cmd
	exited := make(chan struct{})
	go func() { cmd.Wait(); out.Close(); close(exited) }()
	t.Cleanup(func() {
		// TERM: the parent stops its children and exits.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("apache2 did not stop on SIGTERM within 10s; killing it")
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	// Ready when it accepts connections on both addresses.
	for _, a := range []netip.Addr{legitAddrs[0], legitAddrs[len(legitAddrs)-1]} {
		deadline := time.Now().Add(15 * time.Second)
		for {
			err := w.dial(w.legit, a, time.Second)
			if err == nil {
				break
			}
			select {
			case <-exited:
				b, _ := os.ReadFile(filepath.Join(w.dir, "logs", "apache2.out"))
				e, _ := os.ReadFile(filepath.Join(w.dir, "logs", "error.log"))
				t.Fatalf("apache2 exited at start:\n%s\n%s", b, e)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("apache2 does not accept connections from %s: %v", a, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
}

// writeLogo writes a small PNG, the site's image asset.
func writeLogo(path string) error {
	img := image.NewNRGBA(image.Rect(0, 0, 64, 64))
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			img.Set(x, y, color.NRGBA{uint8(4 * x), uint8(4 * y), 160, 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("encoding the logo: %w", err)
	}
	return f.Close()
}

// startBand writes band.toml (the default jails, reading Apache's logs) and
// jail.d/short-bans.toml (ban times short enough to watch them expire), and
// runs the band binary in the server's namespace until the test ends.
func (w *world) startBand() {
	t := w.t
	t.Helper()
	w.socket = filepath.Join(w.dir, "band.sock")
	cfg := fmt.Sprintf(`# band.toml of the end-to-end test: the default jails on this Apache's logs.
[daemon]
socket = %q
state_dir = %q
log_format = "json"

[firewall]
backend = %q
table = "band"
hooks = ["input"]
verdict = "drop"

[[source]]
name = "access"
path = %q
format = "combined"

[[source]]
name = "error"
path = %q
format = "error"

[jail.apache-auth]
enabled = true
[jail.apache-botsearch]
enabled = true
[jail.apache-badbots]
enabled = true
[jail.apache-shellshock]
enabled = true
[jail.apache-overflows]
enabled = true
[jail.http-flood]
enabled = true
[jail.http-site-flood]
enabled = true
`, w.socket, filepath.Join(w.dir, "state"), w.backend,
		filepath.Join(w.dir, "logs", "access.log"), filepath.Join(w.dir, "logs", "error.log"))
	// Floods and brute force are banned for a few seconds, to see the kernel
	// lift the bans by itself; the scanner's ban is long and lifted by hand.
	short := fmt.Sprintf(`[jail.http-flood]
bantime = %q
[jail.http-site-flood]
bantime = %q
[jail.apache-auth]
bantime = %q
[jail.apache-botsearch]
bantime = "1h"
`, shortBan, shortBan, shortBan)
	path := filepath.Join(w.dir, "band.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(w.dir, "jail.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "jail.d", "short-bans.toml"), []byte(short), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := w.server.Command(filepath.Join(w.bin, "band"), "--config", path)
	cmd.SysProcAttr = daemonAttr()
	w.band = startProc(t, cmd, filepath.Join(w.dir, "logs", "band.log"))
	w.band.waitFor(t, 20*time.Second, func(e logEntry) bool { return e.Msg == "band started" })
	for _, f := range []string{"access.log", "error.log"} {
		w.band.waitFor(t, 20*time.Second, func(e logEntry) bool {
			return e.Msg == "following log file" && strings.HasSuffix(e.Path, f)
		})
	}
}

// shortBan is the ban time of the flood and password jails in the test.
const shortBanD = 8 * time.Second

var shortBan = fmt.Sprintf("%ds", int(shortBanD/time.Second))

// daemonAttr puts a daemon the test starts in a process group of its own,
// so that its children are found and ended too, and has the kernel kill it
// if the test binary dies without cleaning up (killed, or timed out). The
// signal is tied to the thread that forks; Go keeps its threads, except one
// left locked in a namespace it could not leave (netnstest.Do), which is
// discarded and would end the daemon early: a failure, not a leak.
func daemonAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// dial opens and closes a TCP connection from local (an address of ns) to
// the server, in local's family, within timeout.
func (w *world) dial(ns *netnstest.NS, local netip.Addr, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := ns.DialFrom(ctx, local, "tcp", serverAddr(local))
	if err != nil {
		return err
	}
	return c.Close()
}

// dropped reports whether a dial timed out: the SYN got no answer, as when
// the kernel drops a banned client's packets (not refused, not reset).
func dropped(err error) bool {
	var ne net.Error
	return err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout())
}

// ban is one entry of `bandctl list -o json`.
type ban struct {
	Addr   string    `json:"addr"`
	Jail   string    `json:"jail"`
	Start  time.Time `json:"start"`
	Expiry time.Time `json:"expiry"`
	Hits   int       `json:"hits"`
	Origin string    `json:"origin"`
}

// bandctl runs bandctl against the test's band and returns its stdout.
func (w *world) bandctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(w.bin, "bandctl"), append([]string{"--socket", w.socket}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("bandctl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// list returns band's active bans, as `bandctl list -o json` prints them.
func (w *world) list() ([]ban, error) {
	out, err := w.bandctl("list", "-o", "json")
	if err != nil {
		return nil, err
	}
	var bans []ban
	if err := json.Unmarshal([]byte(out), &bans); err != nil {
		return nil, fmt.Errorf("reading bandctl list -o json: %w: %q", err, out)
	}
	return bans, nil
}

// apacheProcesses counts Apache's processes (the parent and its children,
// all in the parent's process group).
func (w *world) apacheProcesses() int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	n := 0
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // gone meanwhile
		}
		// After the command name: state, ppid, pgrp.
		i := bytes.LastIndexByte(b, ')')
		if f := strings.Fields(string(b[i+1:])); i >= 0 && len(f) > 2 && f[2] == strconv.Itoa(w.apache.Process.Pid) {
			n++
		}
	}
	return n
}

// cpuTime is the CPU time (user + system) a process has used so far, from
// /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("reading /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("reading /proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("reading /proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * time.Second / time.Duration(clockTicks()), nil
}

var clockTicks = sync.OnceValue(func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || n <= 0 {
		return 100
	}
	return n
})

// logEntry is one line of band's JSON log, with the keys the test reads.
type logEntry struct {
	Time time.Time `json:"time"`
	Msg  string    `json:"msg"`
	Addr string    `json:"addr"`
	Jail string    `json:"jail"`
	Path string    `json:"path"`
	raw  string
}

// proc is a daemon the test started, with its stderr (band's JSON log)
// collected line by line.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  []logEntry
	grew chan struct{}
	done chan struct{}
}

// startProc starts cmd, keeping its stderr lines in memory and in logPath.
func startProc(t *testing.T, cmd *exec.Cmd, logPath string) *proc {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Args, err)
	}
	p := &proc{cmd: cmd, grew: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			logFile.Write(append(sc.Bytes(), '\n'))
			e := logEntry{raw: sc.Text()}
			json.Unmarshal(sc.Bytes(), &e) // a line that is not JSON keeps only raw
			p.mu.Lock()
			p.log = append(p.log, e)
			p.mu.Unlock()
			select {
			case p.grew <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not stop on SIGTERM within 10s; killing it", strings.Join(cmd.Args, " "))
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Errorf("the output of %s is still open 10s after killing it", cmd.Args[0])
			}
		}
		cmd.Wait()
		if t.Failed() {
			t.Logf("band's log (also in %s):\n%s", logPath, strings.Join(tail(p.entries(), 40), "\n"))
		}
	})
	return p
}

func (p *proc) entries() []logEntry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]logEntry(nil), p.log...)
}

// waitFor waits for a log line that satisfies ok, failing the test if the
// process exits or the timeout passes first.
func (p *proc) waitFor(t *testing.T, timeout time.Duration, ok func(logEntry) bool) logEntry {
	t.Helper()
	deadline := time.After(timeout)
	seen := 0
	for {
		es := p.entries()
		for ; seen < len(es); seen++ {
			if ok(es[seen]) {
				return es[seen]
			}
		}
		select {
		case <-p.grew:
		case <-p.done:
			t.Fatalf("band exited; last lines: %v", tail(p.entries(), 5))
		case <-deadline:
			t.Fatalf("band did not log the expected line within %v; last lines: %v", timeout, tail(p.entries(), 5))
		}
	}
}

func tail(es []logEntry, n int) []string {
	var out []string
	for _, e := range es[max(len(es)-n, 0):] {
		out = append(out, e.raw)
	}
	return out
}

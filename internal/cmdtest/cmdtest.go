// Package cmdtest builds band's binaries once per test binary and runs them
// as a user would, for end-to-end tests.
package cmdtest

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Main runs a package's tests and removes the binaries Build made; call it
// from TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	return code
}

// Build compiles cmd/band and cmd/bandctl into a temporary directory (once)
// and returns the directory.
func Build(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "band-bin-")
		if buildErr != nil {
			return
		}
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir, "./cmd/band", "./cmd/bandctl")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{string(out), err}
		}
	})
	if buildErr != nil {
		t.Fatalf("building binaries: %v", buildErr)
	}
	return binDir
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// Result is a finished command.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Run runs a binary from Build's directory to completion.
func Run(t testing.TB, bin string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(filepath.Join(Build(t), bin), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s: %v", bin, err)
	}
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
}

// Proc is a running process whose stderr lines are collected.
type Proc struct {
	Cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	grew  chan struct{}
	done  chan struct{}
}

// Start starts a binary from Build's directory; the process is killed when
// the test ends.
func Start(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	return StartCommand(t, append([]string{filepath.Join(Build(t), bin)}, args...)...)
}

// Stop sends SIGTERM and waits for the process to exit.
func (p *Proc) Stop(t testing.TB) int {
	t.Helper()
	p.Cmd.Process.Signal(syscall.SIGTERM)
	return p.Wait(t)
}

// StartCommand starts argv (e.g. "ip netns exec NS band …"); the process is
// killed when the test ends.
func StartCommand(t testing.TB, argv ...string) *Proc {
	t.Helper()
	bin := filepath.Base(argv[0])
	cmd := exec.Command(argv[0], argv[1:]...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{Cmd: cmd, grew: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			select {
			case p.grew <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", bin, strings.Join(p.Lines(), "\n"))
		}
	})
	return p
}

// Lines returns the stderr lines so far.
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// WaitFor waits until a stderr line contains every one of parts, and
// returns it. It fails the test after 20 s or if the process exits first.
func (p *Proc) WaitFor(t testing.TB, parts ...string) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	seen := 0
	for {
		lines := p.Lines()
		for ; seen < len(lines); seen++ {
			if containsAll(lines[seen], parts) {
				return lines[seen]
			}
		}
		select {
		case <-p.grew:
		case <-p.done:
			lines := p.Lines()
			for ; seen < len(lines); seen++ {
				if containsAll(lines[seen], parts) {
					return lines[seen]
				}
			}
			t.Fatalf("process exited before logging %q", parts)
		case <-deadline:
			t.Fatalf("no log line with %q within 20s", parts)
		}
	}
}

// Count returns how many stderr lines so far contain every one of parts.
func (p *Proc) Count(parts ...string) int {
	n := 0
	for _, l := range p.Lines() {
		if containsAll(l, parts) {
			n++
		}
	}
	return n
}

// Wait waits for the process to exit and returns its exit code.
func (p *Proc) Wait(t testing.TB) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatal("process did not exit within 20s")
	}
	err := p.Cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return 0
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

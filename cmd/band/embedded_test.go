package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/band-project/band/internal/cmdtest"
)

// TestEmbeddedDefaultWaitsForApache runs band exactly as `make run` does —
// the embedded default configuration, no --config — on a machine where
// Apache has not written its logs yet. A private mount namespace puts empty
// directories over /var/log, /var/lib and /run, so the test neither depends
// on nor touches the host's own Apache, state or sockets.
func TestEmbeddedDefaultWaitsForApache(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private mount namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	root := t.TempDir()
	for _, d := range []string{"log", "lib", "run"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	bin := filepath.Join(cmdtest.Build(t), "band")
	script := fmt.Sprintf(`set -e
mount --make-rprivate /
mount --bind %[1]s/log /var/log
mount --bind %[1]s/lib /var/lib
mount --bind %[1]s/run /run
exec %[2]s --dry-run`, root, bin)
	band := cmdtest.StartCommand(t, "unshare", "--mount", "sh", "-c", script)
	band.WaitFor(t, "waiting for log file", "/var/log/apache2/access.log")
	band.WaitFor(t, "waiting for log file", "/var/log/apache2/error.log")
	band.WaitFor(t, "band started", "backend=dryrun")

	// Apache is installed and starts logging.
	logs := filepath.Join(root, "log", "apache2")
	os.MkdirAll(logs, 0o750)
	now := time.Now()
	var lines []string
	for i := 0; i < 5; i++ {
		lines = append(lines, authFailure("203.0.113.50", now.Add(time.Duration(i)*time.Second)))
	}
	appendLines(t, filepath.Join(logs, "error.log"), lines...)
	appendLines(t, filepath.Join(logs, "access.log"))
	band.WaitFor(t, "following log file", "/var/log/apache2/error.log")
	band.WaitFor(t, "msg=ban", "addr=203.0.113.50", "jail=apache-auth")
	band.WaitFor(t, "following log file", "/var/log/apache2/access.log")
	if code := band.Stop(t); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}

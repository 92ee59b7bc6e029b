// Command band is the Apache ban daemon: it follows Apache's logs, applies
// the jails and drops offenders in the kernel.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/band-project/band/buildinfo"
	"github.com/band-project/band/config"
	"github.com/band-project/band/pipeline"
)

func main() {
	// band's work is one pipeline goroutine fed by the tailer. With a single
	// P they hand lines to each other without waking other threads, which at
	// a steady trickle of log lines costs more than the work itself (about a
	// third of band's CPU at 400 lines/s). GOMAXPROCS in the environment
	// still decides when set.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "band:", err)
		}
		os.Exit(1)
	}
}

type flags struct {
	config    string
	check     bool
	version   bool
	dryRun    bool
	logFormat string
	logLevel  string
}

func parseFlags(args []string, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("band", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "configuration file; jail.d/*.toml beside it is merged in (default: the embedded configuration)")
	fs.BoolVar(&f.check, "check", false, "validate the configuration and exit")
	fs.BoolVar(&f.version, "version", false, "print the version and exit")
	fs.BoolVar(&f.dryRun, "dry-run", false, "log bans instead of programming the firewall (overrides [firewall] backend)")
	fs.StringVar(&f.logFormat, "log-format", "", "log format: text or json (overrides [daemon] log_format)")
	fs.StringVar(&f.logLevel, "log-level", "", "log level: debug, info, warn, error (overrides [daemon] log_level)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q (band takes only flags; see band --help)", fs.Arg(0))
	}
	return f, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if f.version {
		fmt.Fprintln(stdout, "band", buildinfo.Version())
		return nil
	}
	cfg, err := loadConfig(f.config)
	if err != nil {
		return err
	}
	if f.check {
		fmt.Fprintf(stdout, "%s: OK (%d sources, jails enabled: %s)\n", configName(f.config), len(cfg.Sources), strings.Join(cfg.EnabledJails(), ", "))
		return nil
	}
	log, err := newLogger(stderr, cfg.Daemon, f)
	if err != nil {
		return err
	}
	d, err := newDaemon(ctx, log, cfg, f)
	if err != nil {
		return err
	}
	return d.run(ctx)
}

func configName(path string) string {
	if path == "" {
		return "embedded default configuration"
	}
	return path
}

// loadConfig loads and fully validates a configuration.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if err := pipeline.Check(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

func newLogger(w io.Writer, dc config.Daemon, f flags) (*slog.Logger, error) {
	format, level := dc.LogFormat, dc.LogLevel
	if f.logFormat != "" {
		format = f.logFormat
	}
	if f.logLevel != "" {
		level = f.logLevel
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil && level != "" {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}

// ownAddrs lists the host's own addresses, which are never banned.
func ownAddrs(log *slog.Logger) []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		log.Warn("cannot list this host's addresses; only loopback is protected", "err", err)
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

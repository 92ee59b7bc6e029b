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
	"strings"
	"syscall"
	"time"

	"github.com/band-project/band/bans"
	"github.com/band-project/band/buildinfo"
	"github.com/band-project/band/config"
	"github.com/band-project/band/firewall"
	"github.com/band-project/band/pipeline"
	"github.com/band-project/band/rules"
	"github.com/band-project/band/tailer"
)

func main() {
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

// daemon is band running: the firewall, the book, the pipeline and the
// tailer, wired together.
type daemon struct {
	log        *slog.Logger
	flags      flags
	cfg        *config.Config
	backend    firewall.Backend
	book       *bans.Book
	pipe       *pipeline.Pipeline
	tail       *tailer.Tailer
	stopTail   context.CancelFunc
	tailDone   chan error
	lines      chan tailer.Line
	expireTick time.Duration
}

func newDaemon(ctx context.Context, log *slog.Logger, cfg *config.Config, f flags) (*daemon, error) {
	opts := firewallOptions(cfg.Firewall)
	if f.dryRun {
		opts.Backend = "dryrun"
	}
	backend, err := firewall.New(log, opts)
	if err != nil {
		return nil, fmt.Errorf("setting up the firewall: %w", err)
	}
	if err := backend.Setup(ctx); err != nil {
		backend.Close()
		return nil, fmt.Errorf("setting up the %s firewall: %w", backend.Name(), err)
	}
	book := bans.New(log, backend, bans.Options{Ignore: ignoreList(cfg.Defaults.IgnoreIP), Own: ownAddrs(log)})
	pipe, err := pipeline.New(log, cfg, book, pipeline.Options{MaxTracked: cfg.Daemon.MaxTracked})
	if err != nil {
		backend.Close()
		return nil, err
	}
	return &daemon{
		log: log, flags: f, cfg: cfg, backend: backend, book: book, pipe: pipe,
		lines:      make(chan tailer.Line, 4096),
		expireTick: 5 * time.Second,
	}, nil
}

func firewallOptions(fc config.Firewall) firewall.Options {
	return firewall.Options{
		Backend: fc.Backend, Table: fc.Table, Chain: fc.Chain, Set4: fc.Set4, Set6: fc.Set6,
		Hooks: fc.Hooks, Verdict: fc.Verdict,
	}
}

// ignoreList parses [defaults] ignoreip, which config.Load has validated.
func ignoreList(entries []string) []netip.Prefix {
	out, _ := rules.ParsePrefixes(entries)
	return out
}

func tailSources(cfg *config.Config) []tailer.Source {
	out := make([]tailer.Source, len(cfg.Sources))
	for i, s := range cfg.Sources {
		out[i] = tailer.Source{Name: s.Name, Path: s.Path}
	}
	return out
}

// startTailer follows cfg's sources; start gives saved positions (after a
// reload) so no line is lost or read twice.
func (d *daemon) startTailer(ctx context.Context, start map[string]tailer.Position) {
	opts := tailer.Options{Logger: d.log}
	if start != nil {
		opts.Start = func(path string) (tailer.Position, bool) { p, ok := start[path]; return p, ok }
	}
	d.tail = tailer.New(tailSources(d.cfg), opts)
	tctx, cancel := context.WithCancel(ctx)
	d.stopTail = cancel
	d.tailDone = make(chan error, 1)
	go func(t *tailer.Tailer) { d.tailDone <- t.Run(tctx, d.lines) }(d.tail)
}

func (d *daemon) stopTailer() map[string]tailer.Position {
	d.stopTail()
	<-d.tailDone
	saved := make(map[string]tailer.Position)
	for _, p := range d.tail.Positions() {
		if !p.Rotated {
			saved[p.Path] = p
		}
	}
	return saved
}

func (d *daemon) run(ctx context.Context) error {
	defer d.backend.Close()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	d.startTailer(ctx, nil)
	d.log.Info("band started", "version", buildinfo.Version(), "backend", d.backend.Name(),
		"sources", len(d.cfg.Sources), "jails", strings.Join(d.cfg.EnabledJails(), ","))
	tick := time.NewTicker(d.expireTick)
	defer tick.Stop()
	for {
		select {
		case l := <-d.lines:
			d.pipe.Line(ctx, l.Source, l.File, 0, l.Text)
		case <-tick.C:
			for _, b := range d.book.Expire() {
				d.log.Info("ban expired", "addr", b.Prefix.String(), "jail", b.Jail)
			}
			d.pipe.Expire(time.Now())
		case <-hup:
			d.reload(ctx)
		case <-ctx.Done():
			d.stopTailer()
			// Lines already read are processed before exit.
			for {
				select {
				case l := <-d.lines:
					d.pipe.Line(context.Background(), l.Source, l.File, 0, l.Text)
				default:
					d.log.Info("band stopped")
					return nil
				}
			}
		}
	}
}

// reload re-reads the configuration; on error the running one stays.
func (d *daemon) reload(ctx context.Context) {
	cfg, err := loadConfig(d.flags.config)
	if err == nil {
		err = d.pipe.Reload(cfg)
	}
	if err != nil {
		d.log.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	d.book.SetPolicy(ignoreList(cfg.Defaults.IgnoreIP), ownAddrs(d.log))
	old := d.cfg
	d.cfg = cfg
	if !sameSources(old.Sources, cfg.Sources) {
		saved := d.stopTailer()
		d.startTailer(ctx, saved)
	}
	d.log.Info("configuration reloaded", "jails", strings.Join(cfg.EnabledJails(), ","))
}

func sameSources(a, b []config.Source) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/band-project/band/bans"
	"github.com/band-project/band/buildinfo"
	"github.com/band-project/band/config"
	"github.com/band-project/band/control"
	"github.com/band-project/band/firewall"
	"github.com/band-project/band/metrics"
	"github.com/band-project/band/pipeline"
	"github.com/band-project/band/rules"
	"github.com/band-project/band/state"
	"github.com/band-project/band/tailer"
)

// daemon is band running: the firewall, the book, the pipeline, the tailer
// and the control API, wired together. One goroutine (run) feeds lines to
// the pipeline and applies reloads; the control API reads state under mu.
type daemon struct {
	log     *slog.Logger
	flags   flags
	started time.Time
	backend firewall.Backend
	book    *bans.Book
	pipe    *pipeline.Pipeline
	lines   chan tailer.Line
	reloads chan chan error
	notify  *notifier
	metrics *metrics.Metrics
	store   *state.Store // nil when the state directory is unusable

	// Used only by run's goroutine: the offset after the last line
	// processed in each file, for checkpoints.
	processed     map[string]int64
	linesSeen     uint64 // lines processed, to skip checkpoints when idle
	linesSaved    uint64 // linesSeen at the last checkpoint
	checkpointErr error
	saved         atomic.Int64 // unix nanos of the last checkpoint written

	mu       sync.Mutex // guards cfg and tail, swapped by reloads
	cfg      *config.Config
	tail     *tailer.Tailer
	stopTail context.CancelFunc
	tailDone chan error
}

var _ control.Service = (*daemon)(nil)

func newDaemon(ctx context.Context, log *slog.Logger, cfg *config.Config, f flags) (*daemon, error) {
	opts := firewallOptions(cfg.Firewall)
	if f.dryRun {
		opts.Backend = "dryrun"
	}
	backend, err := firewall.New(log, opts)
	if err != nil {
		return nil, fmt.Errorf("setting up the firewall: %w", err)
	}
	met := metrics.New()
	backend = met.InstrumentBackend(backend)
	if err := backend.Setup(ctx); err != nil {
		backend.Close()
		return nil, fmt.Errorf("setting up the %s firewall: %w", backend.Name(), err)
	}
	store := openStore(log, cfg.Daemon.StateDir)
	esc, rec, maxAge := repeatPolicy(cfg)
	bopts := bans.Options{Ignore: ignoreList(cfg.Defaults.IgnoreIP), Own: ownAddrs(log), Escalation: esc, Recidive: rec, HistoryMaxAge: maxAge}
	if store != nil {
		bopts.Journal = store
	}
	book := bans.New(log, backend, bopts)
	restoreBans(ctx, log, store, book, backend)
	var pipe *pipeline.Pipeline
	horizon := func() time.Time { return time.Now().Add(-pipe.LongestWindow()) }
	pipe, err = pipeline.New(log, cfg, book, pipeline.Options{MaxTracked: cfg.Daemon.MaxTracked, Horizon: horizon})
	if err != nil {
		backend.Close()
		if store != nil {
			store.Close()
		}
		return nil, err
	}
	return &daemon{
		log: log, flags: f, cfg: cfg, backend: backend, book: book, pipe: pipe, store: store,
		processed: make(map[string]int64),
		started:   time.Now(),
		lines:     make(chan tailer.Line, 4096),
		reloads:   make(chan chan error),
		notify:    newNotifier(log), metrics: met,
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
// reload) so no line is lost or read twice. Called with mu held.
func (d *daemon) startTailer(ctx context.Context, start map[string]tailer.Position) {
	started := make(chan struct{})
	opts := tailer.Options{Logger: d.log, Started: func() { close(started) }}
	if start != nil {
		opts.Start = func(path string) (tailer.Position, bool) { p, ok := start[path]; return p, ok }
	}
	d.tail = tailer.New(tailSources(d.cfg), opts)
	tctx, cancel := context.WithCancel(ctx)
	d.stopTail = cancel
	d.tailDone = make(chan error, 1)
	go func(t *tailer.Tailer, done chan error) { done <- t.Run(tctx, d.lines) }(d.tail, d.tailDone)
	// band is not "started" until every log is open at its position: a line
	// written after that is never skipped as history.
	select {
	case <-started:
	case err := <-d.tailDone:
		d.tailDone <- err // Run failed (a bad glob): stopTailer reads it
	case <-ctx.Done():
	}
}

// stopTailer stops following and returns each file's position. Called with
// mu held.
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

	// Without its control socket band still bans: bandctl cannot reach it,
	// but the server stays protected.
	served := make(chan error, 1)
	srv, err := control.Listen(d.log, d, control.Options{Socket: d.cfg.Daemon.Socket, Group: d.cfg.Daemon.SocketGroup})
	if err != nil {
		d.log.Error("control API unavailable; bandctl cannot reach this band", "socket", d.cfg.Daemon.Socket, "err", err)
	} else {
		sctx, stopServer := context.WithCancel(ctx)
		go func() { served <- srv.Serve(sctx) }()
		defer func() { stopServer(); <-served }()
	}
	stopMetrics, err := d.serveMetrics()
	if err != nil {
		return err
	}
	defer stopMetrics()

	defer func() {
		if d.store != nil {
			if err := d.store.Close(); err != nil {
				d.log.Error("closing the state file", "err", err)
			}
		}
	}()
	saved := d.restoreCheckpoint()
	d.catchUpRotated(ctx, saved)
	d.mu.Lock()
	d.startTailer(ctx, resumePositions(saved))
	d.mu.Unlock()
	d.log.Info("band started", "version", buildinfo.Version(), "backend", d.backend.Name(),
		"socket", d.cfg.Daemon.Socket, "sources", len(d.cfg.Sources), "jails", strings.Join(d.cfg.EnabledJails(), ","))
	d.notify.Ready()
	watchdog, stopWatchdog := d.notify.WatchdogTicker()
	defer stopWatchdog()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	flush := time.NewTicker(time.Second)
	defer flush.Stop()
	for {
		select {
		case l := <-d.lines:
			d.handle(ctx, l)
			// Lines come in bursts: take what is already there before
			// going back to the select.
		burst:
			for range 1024 {
				select {
				case l := <-d.lines:
					d.handle(ctx, l)
				default:
					break burst
				}
			}
		case <-flush.C:
			if d.store != nil {
				d.store.Flush()
			}
			d.checkpoint()
		case <-tick.C:
			d.book.PurgeHistory()
			for _, b := range d.book.Expire() {
				d.log.Info("ban expired", "addr", b.Prefix.String(), "jail", b.Jail)
			}
			d.pipe.Expire(time.Now())
		case <-watchdog:
			d.notify.Watchdog()
		case <-hup:
			if err := d.reloadNotified(ctx); err != nil {
				d.log.Error("reload failed; keeping the running configuration", "err", err)
			}
		case reply := <-d.reloads:
			err := d.reloadNotified(ctx)
			if err != nil {
				d.log.Error("reload failed; keeping the running configuration", "err", err)
			}
			reply <- err
		case err := <-served:
			return fmt.Errorf("control API stopped: %w", err)
		case <-ctx.Done():
			d.notify.Stopping()
			d.mu.Lock()
			d.stopTailer()
			d.mu.Unlock()
			// Lines already read are processed before exit.
			for {
				select {
				case l := <-d.lines:
					d.handle(context.Background(), l)
				default:
					d.checkpoint()
					d.log.Info("band stopped")
					return nil
				}
			}
		}
	}
}

// handle runs one line through the pipeline and notes the position after
// it for the next checkpoint.
func (d *daemon) handle(ctx context.Context, l tailer.Line) {
	d.pipe.Line(ctx, l.Source, l.File, 0, l.Text)
	d.processed[l.File] = l.Offset
	d.linesSeen++
}

// reload re-reads the configuration; on error the running one stays.
func (d *daemon) reload(ctx context.Context) error {
	cfg, err := loadConfig(d.flags.config)
	if err == nil {
		err = d.pipe.Reload(cfg)
	}
	if err != nil {
		return err
	}
	d.book.SetPolicy(ignoreList(cfg.Defaults.IgnoreIP), ownAddrs(d.log))
	d.book.SetRepeatPolicy(repeatPolicy(cfg))
	d.mu.Lock()
	old := d.cfg
	d.cfg = cfg
	if !sameSources(old.Sources, cfg.Sources) {
		saved := d.stopTailer()
		d.startTailer(ctx, saved)
	}
	d.mu.Unlock()
	d.log.Info("configuration reloaded", "jails", strings.Join(cfg.EnabledJails(), ","))
	return nil
}

func sameSources(a, b []config.Source) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		// What the tailer follows; trusted_proxies is the pipeline's.
		if a[i].Name != b[i].Name || a[i].Path != b[i].Path || a[i].Format != b[i].Format {
			return false
		}
	}
	return true
}

// The control API.

func (d *daemon) config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

func (d *daemon) checkJail(name string) (*config.Jail, error) {
	if name == "" {
		return nil, nil
	}
	j, ok := d.config().Jails[name]
	if !ok {
		return nil, control.Errorf(control.CodeNotFound, "no jail named %q (bandctl status lists them)", name)
	}
	return j, nil
}

func parseAddr(s string) (netip.Prefix, error) {
	p, err := rules.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, control.Errorf(control.CodeBadRequest, "%q is not an IP address or CIDR prefix (e.g. 192.0.2.7, 2001:db8::/64)", s)
	}
	return p, nil
}

func apiBan(b bans.Ban) control.Ban {
	return control.Ban{Addr: b.Prefix.String(), Jail: b.Jail, Start: b.Start, Expiry: b.Expiry, Hits: b.Hits, Reason: b.Reason, Origin: string(b.Origin)}
}

func (d *daemon) List(jail, addr string) ([]control.Ban, error) {
	if _, err := d.checkJail(jail); err != nil {
		return nil, err
	}
	var match netip.Prefix
	if addr != "" {
		p, err := parseAddr(addr)
		if err != nil {
			return nil, err
		}
		match = p
	}
	// A ban is on disk before it is shown: every ban in this list was
	// journaled before the list was taken, and the flush writes it.
	listed := d.book.List()
	if d.store != nil {
		if err := d.store.Flush(); err != nil {
			d.log.Warn("listing bans not yet written to disk", "err", err)
		}
	}
	out := []control.Ban{}
	for _, b := range listed {
		if jail != "" && b.Jail != jail {
			continue
		}
		if match.IsValid() && !b.Prefix.Overlaps(match) {
			continue
		}
		out = append(out, apiBan(b))
	}
	return out, nil
}

func (d *daemon) Ban(ctx context.Context, r control.BanRequest) (control.BanResponse, error) {
	p, err := parseAddr(r.Addr)
	if err != nil {
		return control.BanResponse{}, err
	}
	j, err := d.checkJail(r.Jail)
	if err != nil {
		return control.BanResponse{}, err
	}
	dur := d.config().Defaults.BanTime.D()
	if j != nil {
		dur = j.BanTime.D()
	}
	if r.For != "" {
		if dur, err = config.ParseDuration(r.For); err != nil || dur <= 0 {
			return control.BanResponse{}, control.Errorf(control.CodeBadRequest, "--for %q: want a duration like 90s, 10m, 1h, 1d", r.For)
		}
	}
	jail := r.Jail
	if jail == "" {
		jail = "manual"
	}
	var ignore []netip.Prefix
	if j != nil {
		ignore = ignoreList(j.IgnoreIP)
	}
	ban, made, err := d.book.Ban(ctx, bans.Request{Prefix: p, Jail: jail, For: dur, Reason: r.Reason, Origin: bans.OriginManual, Ignore: ignore, Force: r.Force})
	switch {
	case errors.Is(err, bans.ErrProtected):
		return control.BanResponse{}, control.Errorf(control.CodeProtected, "%s is loopback or one of this host's own addresses: band never bans it", p)
	case errors.Is(err, bans.ErrIgnored):
		return control.BanResponse{}, control.Errorf(control.CodeIgnored, "%s is whitelisted (ignoreip); add --force to ban it anyway", p)
	case err != nil:
		return control.BanResponse{}, err
	}
	if made {
		d.log.Info("ban", "addr", ban.Prefix.String(), "jail", jail, "ttl", dur.String(), "origin", "manual", "reason", r.Reason)
	}
	return control.BanResponse{Ban: apiBan(ban), Already: !made}, nil
}

func (d *daemon) Unban(ctx context.Context, r control.UnbanRequest) (control.UnbanResponse, error) {
	if _, err := d.checkJail(r.Jail); err != nil {
		return control.UnbanResponse{}, err
	}
	var targets []netip.Prefix
	if r.All {
		for _, b := range d.book.List() {
			if r.Jail == "" || b.Jail == r.Jail {
				targets = append(targets, b.Prefix)
			}
		}
	} else {
		if len(r.Addrs) == 0 {
			return control.UnbanResponse{}, control.Errorf(control.CodeBadRequest, "give addresses to unban, or --all")
		}
		for _, a := range r.Addrs {
			p, err := parseAddr(a)
			if err != nil {
				return control.UnbanResponse{}, err
			}
			targets = append(targets, p)
		}
	}
	resp := control.UnbanResponse{Unbanned: []string{}}
	for _, p := range targets {
		lifted, err := d.book.Unban(ctx, p)
		if err != nil {
			return resp, err
		}
		if lifted {
			resp.Unbanned = append(resp.Unbanned, p.String())
			d.log.Info("unban", "addr", p.String(), "origin", "manual")
		} else {
			resp.NotFound = append(resp.NotFound, p.String())
		}
	}
	return resp, nil
}

func (d *daemon) Status() control.Status {
	d.mu.Lock()
	cfg, tail := d.cfg, d.tail
	d.mu.Unlock()
	now := time.Now()
	st := control.Status{
		Version: buildinfo.Version(),
		Started: d.started,
		Uptime:  now.Sub(d.started).Round(time.Second).String(),
		Backend: d.backend.Name(),
		State:   d.stateInfo(),
		Sources: []control.SourceInfo{},
		Jails:   []control.JailInfo{},
	}
	var positions []tailer.Position
	if tail != nil {
		positions = tail.Positions()
	}
	stats := map[string]pipeline.SourceStats{}
	for _, s := range d.pipe.Sources() {
		stats[s.Name] = s
	}
	for _, sc := range cfg.Sources {
		ss := stats[sc.Name]
		si := control.SourceInfo{Name: sc.Name, Path: sc.Path, Format: sc.Format, Lines: ss.Lines, ParseErrors: ss.ParseErrors, Files: []control.FileInfo{}}
		for _, p := range positions {
			if ok, _ := filepath.Match(sc.Path, p.Path); !ok && sc.Path != p.Path {
				continue
			}
			fi := control.FileInfo{Path: p.Path, Offset: p.Offset, Size: p.Size, LagBytes: max(p.Size-p.Offset, 0)}
			if fi.LagBytes > 0 && !ss.Newest.IsZero() {
				fi.LagSeconds = now.Sub(ss.Newest).Seconds()
			}
			si.Files = append(si.Files, fi)
		}
		st.Sources = append(st.Sources, si)
	}
	active := map[string]int{}
	for _, b := range d.book.List() {
		active[b.Jail]++
	}
	totals := d.book.Totals()
	for _, j := range d.pipe.Jails() {
		st.Jails = append(st.Jails, control.JailInfo{
			Name: j.Name, Kind: j.Kind, Limit: j.Limit, BanTime: cfg.Jails[j.Name].BanTime.D().String(),
			Matches: j.Matches, ActiveBans: active[j.Name], TotalBans: totals[j.Name],
		})
	}
	sort.Slice(st.Jails, func(a, b int) bool { return st.Jails[a].Name < st.Jails[b].Name })
	return st
}

func (d *daemon) Reload(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case d.reloads <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := <-reply; err != nil {
		return control.Errorf(control.CodeUnavailable, "reload failed, the running configuration stays: %v", err)
	}
	return nil
}

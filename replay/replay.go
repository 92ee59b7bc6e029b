// Package replay runs log files offline through the same apachelog, rules,
// detector and ban-book code as the daemon, with the lines' own times as the
// clock, and reports what each jail would have matched and banned.
package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sort"
	"time"

	"github.com/band-project/band/bans"
	"github.com/band-project/band/config"
	"github.com/band-project/band/firewall"
	"github.com/band-project/band/pipeline"
	"github.com/band-project/band/rules"
)

// Options select what to replay.
type Options struct {
	Jails   []string // only these jails (enabled even if off); all enabled when empty
	Format  string   // log format of every file; "auto" when empty
	Matches bool     // record every matching line
	// Location is the zone of error-log lines (time.Local when nil).
	Location *time.Location
}

// Match is a line that counted for a jail.
type Match struct {
	Jail string    `json:"jail"`
	Addr string    `json:"addr"`
	Time time.Time `json:"time"`
	File string    `json:"file"`
	Line int       `json:"line"`
}

// Ban is a ban that would have been made.
type Ban struct {
	Jail  string    `json:"jail"`
	Addr  string    `json:"addr"` // an address, or a CIDR for jails with ipv6_prefix
	Time  time.Time `json:"time"`
	Count int       `json:"count"`
}

// JailReport sums one jail's verdicts.
type JailReport struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Limit   string `json:"limit"`
	Matches uint64 `json:"matches"`
	Bans    uint64 `json:"bans"`
}

// Report is the result of a replay. Its JSON form is what `bandctl test -o
// json` prints.
type Report struct {
	Lines       uint64       `json:"lines"`
	ParseErrors uint64       `json:"parse_errors"`
	Matches     []Match      `json:"matches"`
	Bans        []Ban        `json:"bans"`
	Jails       []JailReport `json:"jails"`
}

// Run replays files through cfg's jails.
func Run(ctx context.Context, cfg *config.Config, files []string, opts Options) (*Report, error) {
	if len(files) == 0 {
		return nil, errors.New("no log files given")
	}
	if err := selectJails(cfg, opts.Jails); err != nil {
		return nil, err
	}
	format := opts.Format
	if format == "" {
		format = "auto"
	}
	// Each file is its own source in the given format; every jail reads
	// every file, and a line's kind (access or error) picks the jails.
	// The files are not tied to sources: every source's trusted proxies
	// (on top of [defaults]) apply to every file.
	var trusted []string
	for _, s := range cfg.Sources {
		trusted = append(trusted, s.TrustedProxies...)
	}
	cfg.Sources = []config.Source{{Name: "replay", Path: "-", Format: format, TrustedProxies: trusted}}
	for _, j := range cfg.Jails {
		j.Sources = nil
	}
	report := &Report{Matches: []Match{}, Bans: []Ban{}}
	var p *pipeline.Pipeline
	clock := func() time.Time { return p.Newest() }
	log := slog.New(slog.DiscardHandler)
	book := bans.New(log, firewall.NewDryRun(log, clock), bans.Options{Ignore: ignoreList(cfg), Now: clock})
	popts := pipeline.Options{
		Location: opts.Location,
		OnVerdict: func(v pipeline.Verdict) {
			if v.New {
				report.Bans = append(report.Bans, Ban{Jail: v.Ban.Jail, Addr: prefixString(v.Ban.Prefix), Time: v.Offence.Time, Count: v.Offence.Count})
			}
		},
		MaxTracked: cfg.Daemon.MaxTracked,
	}
	if opts.Matches {
		popts.OnMatch = func(m pipeline.Match) {
			report.Matches = append(report.Matches, Match{Jail: m.Jail, Addr: m.Addr.String(), Time: m.Time, File: m.File, Line: m.Line})
		}
	}
	var err error
	p, err = pipeline.New(log, cfg, book, popts)
	if err != nil {
		return nil, err
	}
	for _, name := range files {
		if err := replayFile(ctx, p, name); err != nil {
			return nil, err
		}
	}
	for _, s := range p.Sources() {
		report.Lines += s.Lines
		report.ParseErrors += s.ParseErrors
	}
	for _, j := range p.Jails() {
		report.Jails = append(report.Jails, JailReport{Name: j.Name, Kind: j.Kind, Limit: j.Limit, Matches: j.Matches, Bans: j.Bans})
	}
	sort.SliceStable(report.Bans, func(i, j int) bool { return report.Bans[i].Time.Before(report.Bans[j].Time) })
	return report, nil
}

func replayFile(ctx context.Context, p *pipeline.Pipeline, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("reading log: %w", err)
	}
	defer f.Close()
	_, err = p.Feed(ctx, "replay", name, f)
	return err
}

// prefixString writes a single address without its length, a wider
// prefix (an IPv6 /64 from ipv6_prefix, say) as a CIDR.
func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func selectJails(cfg *config.Config, names []string) error {
	if len(names) == 0 {
		return nil
	}
	want := make(map[string]bool, len(names))
	for _, n := range names {
		if _, ok := cfg.Jails[n]; !ok {
			known := make([]string, 0, len(cfg.Jails))
			for k := range cfg.Jails {
				known = append(known, k)
			}
			sort.Strings(known)
			return fmt.Errorf("no jail named %q (known: %v)", n, known)
		}
		want[n] = true
	}
	for name, j := range cfg.Jails {
		j.Enabled = want[name]
	}
	return nil
}

func ignoreList(cfg *config.Config) []netip.Prefix {
	out, _ := rules.ParsePrefixes(cfg.Defaults.IgnoreIP) // validated by config.Load
	return out
}

// Package pipeline runs log lines through apachelog, the jails and the
// detector, and hands offences to the ban book. The daemon and the offline
// `bandctl test` replay share it, so both reach the same verdicts.
package pipeline

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/band-project/band/apachelog"
	"github.com/band-project/band/bans"
	"github.com/band-project/band/config"
	"github.com/band-project/band/detector"
	"github.com/band-project/band/rules"
)

// Match is one line that counted for a jail.
type Match struct {
	Jail string
	Addr netip.Addr
	Time time.Time
	File string
	Line int // line number within File, when known
}

// Verdict is a ban the pipeline asked for (made or, for an address already
// banned, deduplicated).
type Verdict struct {
	Ban     bans.Ban
	New     bool // false when the address was already banned
	Offence detector.Offence
}

// Options configure a Pipeline.
type Options struct {
	// Location is the zone of error-log lines, which carry no offset.
	Location *time.Location
	// OnMatch, when set, is called for every line that counts for a jail.
	OnMatch func(Match)
	// OnVerdict, when set, is called for every offence the book accepted.
	OnVerdict func(Verdict)
	// MaxTracked caps the keys tracked per jail.
	MaxTracked int
	// FormatOverride, when set, replaces every source's format (bandctl test --format).
	FormatOverride string
	// Horizon, when set, gives the oldest line time that can still matter
	// (now less the longest window): older lines are counted and skipped
	// before any jail runs, so catching up after a restart is quick.
	Horizon func() time.Time
}

// SourceStats counts one source's lines.
type SourceStats struct {
	Name        string
	Format      string
	Lines       uint64
	ParseErrors uint64
	Newest      time.Time // newest line time read (zero before any)
}

// JailStats counts one jail's work.
type JailStats struct {
	Name    string
	Kind    string
	Limit   string // thresholds, human-readable
	Matches uint64
	Bans    uint64 // new bans made
}

type source struct {
	name   string
	format string
	parser *apachelog.Parser
	trust  proxies // reverse proxies whose X-Forwarded-For names the client
	jails  []*jailState
	lines  atomic.Uint64
	errors atomic.Uint64
	newest atomic.Int64 // unix nanos
}

type jailState struct {
	jail     *rules.Jail
	distinct *detector.Distinct // values counted per client, for distinct jails
	matches  atomic.Uint64
	bans     atomic.Uint64
}

// Pipeline is not safe for concurrent Line calls; one goroutine feeds it.
// Stats may be read concurrently.
type Pipeline struct {
	log  *slog.Logger
	book *bans.Book
	opts Options
	det  *detector.Detector
	ev   apachelog.Event

	mu      sync.Mutex // serialises lines, reloads and reads of the maps and detector
	sources map[string]*source
	jails   map[string]*jailState
	newest  atomic.Int64 // unix nanos of the newest line time seen
	longest atomic.Int64 // the longest jail window, in nanoseconds
}

// New builds a pipeline for cfg.
func New(log *slog.Logger, cfg *config.Config, book *bans.Book, opts Options) (*Pipeline, error) {
	if opts.Location == nil {
		opts.Location = time.Local
	}
	p := &Pipeline{
		log:  log.With("component", "pipeline"),
		book: book,
		opts: opts,
		det:  detector.New(opts.MaxTracked),
	}
	if err := p.Reload(cfg); err != nil {
		return nil, err
	}
	return p, nil
}

// Reload recompiles sources and jails from cfg, keeping the hits already
// counted for jails that still exist. On error nothing changes.
func (p *Pipeline) Reload(cfg *config.Config) error {
	compiled, err := rules.Compile(cfg)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	jails := make(map[string]*jailState, len(compiled))
	for _, j := range compiled {
		js := &jailState{jail: j}
		old := p.jails[j.Name]
		if old != nil {
			js.matches.Store(old.matches.Load())
			js.bans.Store(old.bans.Load())
		}
		if j.DistinctField() != apachelog.FieldNone {
			if old != nil && old.distinct != nil && old.jail.FindTime == j.FindTime &&
				old.jail.DistinctField() == j.DistinctField() && old.jail.IPv6Bits == j.IPv6Bits {
				js.distinct = old.distinct
			} else {
				js.distinct = detector.NewDistinct(j.FindTime, p.opts.MaxTracked)
			}
		}
		jails[j.Name] = js
	}
	sources := make(map[string]*source, len(cfg.Sources))
	var errs []error
	for _, sc := range cfg.Sources {
		format := sc.Format
		if p.opts.FormatOverride != "" {
			format = p.opts.FormatOverride
		}
		parser, err := apachelog.Compile(format, apachelog.WithLocation(p.opts.Location))
		if err != nil {
			file, line := cfg.Where("source", sc.Name, "format")
			errs = append(errs, fmt.Errorf("%s:%d: source %s: format: %w", file, line, sc.Name, err))
			continue
		}
		trust, err := rules.ParsePrefixes(union(cfg.Defaults.TrustedProxies, sc.TrustedProxies))
		if err != nil {
			file, line := cfg.Where("source", sc.Name, "trusted_proxies")
			errs = append(errs, fmt.Errorf("%s:%d: source %s: trusted_proxies: %w", file, line, sc.Name, err))
			continue
		}
		s := &source{name: sc.Name, format: format, parser: parser, trust: trust}
		if old := p.sources[sc.Name]; old != nil {
			s.lines.Store(old.lines.Load())
			s.errors.Store(old.errors.Load())
			s.newest.Store(old.newest.Load())
		}
		for _, j := range compiled {
			if j.Reads(sc.Name) {
				s.jails = append(s.jails, jails[j.Name])
			}
		}
		sources[sc.Name] = s
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	p.sources, p.jails = sources, jails
	var longest time.Duration
	for _, j := range compiled {
		longest = max(longest, j.FindTime)
	}
	p.longest.Store(int64(longest))
	p.det.Retain(compiled)
	return nil
}

// Line processes one line of the named source. file and lineNo only label
// matches. A line that does not parse is counted and skipped.
func (p *Pipeline) Line(ctx context.Context, sourceName, file string, lineNo int, text []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.sources[sourceName]
	if s == nil {
		return
	}
	s.lines.Add(1)
	ev := &p.ev
	ev.Reset()
	if err := s.parser.Parse(text, ev); err != nil {
		s.errors.Add(1)
		return
	}
	if p.opts.Horizon != nil && ev.Time.Before(p.opts.Horizon()) {
		return
	}
	if t := ev.Time.UnixNano(); t > p.newest.Load() {
		p.newest.Store(t)
	}
	if t := ev.Time.UnixNano(); t > s.newest.Load() {
		s.newest.Store(t)
	}
	client, ok := s.trust.client(ev)
	if !ok {
		return // from a trusted proxy, naming no client: nobody to count
	}
	ev.Client = client
	for _, js := range s.jails {
		key, ok := js.jail.Match(ev)
		if !ok {
			continue
		}
		if js.jail.Ignored(ev.Client) {
			continue
		}
		if js.distinct != nil {
			if h, _ := js.jail.Distinct(ev); !js.distinct.First(key, h, ev.Time) {
				continue // this value was already counted for the client
			}
		}
		js.matches.Add(1)
		if p.opts.OnMatch != nil {
			p.opts.OnMatch(Match{Jail: js.jail.Name, Addr: ev.Client, Time: ev.Time, File: file, Line: lineNo})
		}
		o, tripped := p.det.Hit(js.jail, key, ev.Time)
		if !tripped {
			continue
		}
		p.offend(ctx, js, o, ev)
	}
}

func (p *Pipeline) offend(ctx context.Context, js *jailState, o detector.Offence, ev *apachelog.Event) {
	j := js.jail
	addr := j.BanPrefix(o.Key.Addr) // the address, or its IPv6 prefix (ipv6_prefix)
	ban, made, err := p.book.Ban(ctx, bans.Request{
		Prefix: addr,
		Jail:   j.Name,
		For:    j.BanTime,
		Hits:   o.Count,
		Reason: truncate(ev.Line, 200),
		Origin: bans.OriginJail,
		Ignore: j.IgnoreIP,
	})
	switch {
	case errors.Is(err, bans.ErrProtected), errors.Is(err, bans.ErrIgnored):
		p.log.Debug("not banning", "addr", addr.String(), "jail", j.Name, "reason", err)
		return
	case err != nil:
		p.log.Error("ban failed", "addr", addr.String(), "jail", j.Name, "err", err)
		return
	}
	if made {
		js.bans.Add(1)
		p.log.Info("ban", "addr", ban.Prefix.String(), "jail", j.Name, "ttl", j.BanTime.String(),
			"hits", o.Count, "line", ban.Reason)
	}
	if p.opts.OnVerdict != nil {
		p.opts.OnVerdict(Verdict{Ban: ban, New: made, Offence: o})
	}
}

// Newest returns the newest line time seen (zero before any line).
func (p *Pipeline) Newest() time.Time {
	n := p.newest.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Expire lets the detector drop windows that ended before now.
func (p *Pipeline) Expire(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.det.Expire(now)
	for _, js := range p.jails {
		if js.distinct != nil {
			js.distinct.Expire(now)
		}
	}
}

// Sources returns per-source counters, sorted by name.
func (p *Pipeline) Sources() []SourceStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]SourceStats, 0, len(p.sources))
	for _, s := range p.sources {
		st := SourceStats{Name: s.name, Format: s.format, Lines: s.lines.Load(), ParseErrors: s.errors.Load()}
		if n := s.newest.Load(); n != 0 {
			st.Newest = time.Unix(0, n)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Jails returns per-jail counters, sorted by name.
func (p *Pipeline) Jails() []JailStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]JailStats, 0, len(p.jails))
	for _, js := range p.jails {
		j := js.jail
		limit := fmt.Sprintf("%d within %s", j.Limit, j.FindTime)
		if j.Kind == rules.Rate {
			limit = fmt.Sprintf("%d per %s within %s", j.Limit-1, j.Per, j.FindTime)
		}
		out = append(out, JailStats{Name: j.Name, Kind: j.Kind.String(), Limit: limit, Matches: js.matches.Load(), Bans: js.bans.Load()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Detector exposes the detector's statistics.
func (p *Pipeline) DetectorStats() map[string]detector.Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.det.Stats()
}

// union returns a's items then b's not in a.
func union(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	for _, s := range a {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// Check validates what config.Load cannot: that every enabled jail compiles
// and every source's format is a LogFormat apachelog understands.
func Check(cfg *config.Config) error {
	p := &Pipeline{opts: Options{Location: time.Local}, det: detector.New(1)}
	return p.Reload(cfg)
}

// Feed reads r to its end, line by line, into the named source, numbering
// lines from 1 for matches; it returns the number of lines read. A line
// longer than 1 MiB is counted as a parse error and skipped; an unfinished
// last line (no newline yet) is read too.
func (p *Pipeline) Feed(ctx context.Context, source, file string, r io.Reader) (int, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			p.Line(ctx, source, file, n, nil)
			continue
		}
		if len(line) > 0 {
			p.Line(ctx, source, file, n, line) // the parser drops the newline
		} else {
			n--
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("reading %s: %w", file, err)
		}
		if n%4096 == 0 && ctx.Err() != nil {
			return n, ctx.Err()
		}
	}
}

// Package metrics exposes band's counters to Prometheus: lines, parse errors
// and tail lag per source; matches, bans, tracked keys and evictions per
// jail; firewall operations counted and timed by wrapping the backend.
package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/band-project/band/firewall"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Snapshot is band's state at scrape time, as the daemon reports it.
type Snapshot struct {
	Sources []Source
	Jails   []Jail
}

// Source is one configured log source.
type Source struct {
	Name        string
	Lines       uint64 // lines read since start
	ParseErrors uint64 // lines that did not parse
	Files       []File
}

// File is one followed file of a source.
type File struct {
	Path       string
	LagBytes   int64   // bytes written but not yet read
	LagSeconds float64 // how far behind the newest line read is, 0 when caught up
}

// Jail is one jail (or a ban origin such as "manual").
type Jail struct {
	Name        string
	Matches     uint64 // lines that counted for the jail since start
	Bans        uint64 // bans made since start
	ActiveBans  int    // bans in force now
	TrackedKeys int    // keys the detector holds now
	Evictions   uint64 // keys dropped to respect max_tracked since start
}

// Metrics is band's Prometheus registry.
type Metrics struct {
	reg   *prometheus.Registry
	fwOps *prometheus.CounterVec
	fwDur *prometheus.HistogramVec
}

// New returns a registry holding the Go runtime and process collectors and
// the firewall metrics that InstrumentBackend feeds.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		fwOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "band_firewall_operations_total",
			Help: "Firewall backend operations by backend, operation (setup, ban, unban, list) and result (ok, error).",
		}, []string{"backend", "op", "result"}),
		fwDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "band_firewall_operation_duration_seconds",
			Help:    "Time taken by firewall backend operations.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"backend", "op"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.fwOps, m.fwDur,
	)
	return m
}

// Registry returns the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Observe registers the per-source and per-jail metrics, read from snapshot
// at each scrape. Call it once.
func (m *Metrics) Observe(snapshot func() Snapshot) {
	m.reg.MustRegister(&stateCollector{snapshot: snapshot})
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

var (
	descLines = prometheus.NewDesc("band_lines_total",
		"Log lines read, by source.", []string{"source"}, nil)
	descParseErrors = prometheus.NewDesc("band_parse_errors_total",
		"Log lines that did not parse in the source's format, by source.", []string{"source"}, nil)
	descLagBytes = prometheus.NewDesc("band_tail_lag_bytes",
		"Bytes written to a followed file but not read yet.", []string{"source", "file"}, nil)
	descLagSeconds = prometheus.NewDesc("band_tail_lag_seconds",
		"Age of the newest line read from a source while its file has unread bytes; 0 when caught up.", []string{"source", "file"}, nil)
	descMatches = prometheus.NewDesc("band_matches_total",
		"Lines that counted for a jail.", []string{"jail"}, nil)
	descBans = prometheus.NewDesc("band_bans_total",
		"Bans made, by jail (\"manual\" for bandctl ban).", []string{"jail"}, nil)
	descActive = prometheus.NewDesc("band_active_bans",
		"Bans in force, by jail.", []string{"jail"}, nil)
	descTracked = prometheus.NewDesc("band_detector_tracked_keys",
		"Keys (clients, pages, sites) the detector tracks, by jail.", []string{"jail"}, nil)
	descEvictions = prometheus.NewDesc("band_detector_evictions_total",
		"Keys the detector dropped to stay within max_tracked, by jail.", []string{"jail"}, nil)
)

// stateCollector turns a Snapshot into metrics at scrape time, so the
// daemon's hot path keeps its own atomic counters and pays nothing here.
type stateCollector struct {
	snapshot func() Snapshot
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLines, descParseErrors, descLagBytes, descLagSeconds,
		descMatches, descBans, descActive, descTracked, descEvictions} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	for _, src := range s.Sources {
		ch <- prometheus.MustNewConstMetric(descLines, prometheus.CounterValue, float64(src.Lines), src.Name)
		ch <- prometheus.MustNewConstMetric(descParseErrors, prometheus.CounterValue, float64(src.ParseErrors), src.Name)
		for _, f := range src.Files {
			ch <- prometheus.MustNewConstMetric(descLagBytes, prometheus.GaugeValue, float64(f.LagBytes), src.Name, f.Path)
			ch <- prometheus.MustNewConstMetric(descLagSeconds, prometheus.GaugeValue, f.LagSeconds, src.Name, f.Path)
		}
	}
	for _, j := range s.Jails {
		ch <- prometheus.MustNewConstMetric(descMatches, prometheus.CounterValue, float64(j.Matches), j.Name)
		ch <- prometheus.MustNewConstMetric(descBans, prometheus.CounterValue, float64(j.Bans), j.Name)
		ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(j.ActiveBans), j.Name)
		ch <- prometheus.MustNewConstMetric(descTracked, prometheus.GaugeValue, float64(j.TrackedKeys), j.Name)
		ch <- prometheus.MustNewConstMetric(descEvictions, prometheus.CounterValue, float64(j.Evictions), j.Name)
	}
}

// InstrumentBackend returns b with every Setup, Ban, Unban and List counted
// by result and timed. Name and Close pass through.
func (m *Metrics) InstrumentBackend(b firewall.Backend) firewall.Backend {
	return &backend{Backend: b, m: m, now: time.Now}
}

type backend struct {
	firewall.Backend
	m   *Metrics
	now func() time.Time
}

var _ firewall.Backend = (*backend)(nil)

func (b *backend) observe(op string, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	name := b.Backend.Name()
	b.m.fwOps.WithLabelValues(name, op, result).Inc()
	b.m.fwDur.WithLabelValues(name, op).Observe(b.now().Sub(start).Seconds())
}

func (b *backend) Setup(ctx context.Context) error {
	start := b.now()
	err := b.Backend.Setup(ctx)
	b.observe("setup", start, err)
	return err
}

func (b *backend) Ban(ctx context.Context, entries []firewall.Entry) error {
	start := b.now()
	err := b.Backend.Ban(ctx, entries)
	b.observe("ban", start, err)
	return err
}

func (b *backend) Unban(ctx context.Context, prefixes []netip.Prefix) error {
	start := b.now()
	err := b.Backend.Unban(ctx, prefixes)
	b.observe("unban", start, err)
	return err
}

func (b *backend) List(ctx context.Context) ([]firewall.Entry, error) {
	start := b.now()
	out, err := b.Backend.List(ctx)
	b.observe("list", start, err)
	return out, err
}

// Server serves /metrics over HTTP.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen listens on addr (host:port; port 0 picks a free one) and routes
// /metrics to h.
func Listen(addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	return &Server{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}, nil
}

// Addr is the address listened on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until Close; it then returns nil.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close stops the server, letting requests in flight finish for up to 5 s.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

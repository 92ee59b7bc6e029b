package main

import (
	"fmt"
	"sort"

	"github.com/band-project/band/metrics"
)

// serveMetrics serves Prometheus metrics on [daemon] metrics, when set; stop
// shuts the server down. The address is read once: changing it takes a
// restart.
func (d *daemon) serveMetrics() (stop func(), err error) {
	addr := d.config().Daemon.Metrics
	if addr == "" {
		return func() {}, nil
	}
	d.metrics.Observe(d.metricsSnapshot)
	srv, err := metrics.Listen(addr, d.metrics.Handler())
	if err != nil {
		return nil, fmt.Errorf("starting the metrics server ([daemon] metrics = %q): %w", addr, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(); err != nil {
			d.log.Error("metrics server stopped", "err", err)
		}
	}()
	d.log.Info("serving metrics", "url", "http://"+srv.Addr()+"/metrics")
	return func() { srv.Close(); <-done }, nil
}

// metricsSnapshot gathers what /metrics shows: the status the control API
// reports (lines, errors and lag per source), the book's bans and the
// detector's keys per jail.
func (d *daemon) metricsSnapshot() metrics.Snapshot {
	st := d.Status()
	var s metrics.Snapshot
	for _, src := range st.Sources {
		ms := metrics.Source{Name: src.Name, Lines: src.Lines, ParseErrors: src.ParseErrors}
		for _, f := range src.Files {
			ms.Files = append(ms.Files, metrics.File{Path: f.Path, LagBytes: f.LagBytes, LagSeconds: f.LagSeconds})
		}
		s.Sources = append(s.Sources, ms)
	}
	jails := map[string]*metrics.Jail{}
	jail := func(name string) *metrics.Jail {
		j := jails[name]
		if j == nil {
			j = &metrics.Jail{Name: name}
			jails[name] = j
		}
		return j
	}
	for _, j := range d.pipe.Jails() {
		jail(j.Name).Matches = j.Matches
	}
	for name, n := range d.book.Totals() {
		jail(name).Bans = n
	}
	for _, b := range d.book.List() {
		jail(b.Jail).ActiveBans++
	}
	for name, ds := range d.pipe.DetectorStats() {
		if j := jails[name]; j != nil {
			j.TrackedKeys, j.Evictions = ds.Keys, ds.Evictions
		}
	}
	for _, j := range jails {
		s.Jails = append(s.Jails, *j)
	}
	sort.Slice(s.Jails, func(a, b int) bool { return s.Jails[a].Name < s.Jails[b].Name })
	return s
}

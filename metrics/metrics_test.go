package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/band-project/band/firewall"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// failing is a backend whose every operation fails, after the dry run
// recorded it.
type failing struct {
	*firewall.DryRun
	err error
}

func (f *failing) Ban(ctx context.Context, e []firewall.Entry) error { return f.err }
func (f *failing) Unban(ctx context.Context, p []netip.Prefix) error { return f.err }

func TestInstrumentBackend(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { return clock }
	ctx := context.Background()
	addr := netip.MustParsePrefix("192.0.2.7/32")

	tests := []struct {
		name    string
		backend firewall.Backend
		result  string
	}{
		{"ok", firewall.NewDryRun(log, now), "ok"},
		{"error", &failing{firewall.NewDryRun(log, now), errors.New("no netlink")}, "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			b := m.InstrumentBackend(tt.backend).(*backend)
			// Each operation takes 3 ms on the injected clock.
			b.now = func() time.Time { clock = clock.Add(1500 * time.Microsecond); return clock }
			if err := b.Setup(ctx); err != nil {
				t.Fatal(err)
			}
			b.Ban(ctx, []firewall.Entry{{Prefix: addr, TTL: time.Minute}})
			b.Ban(ctx, []firewall.Entry{{Prefix: addr, TTL: time.Minute}})
			b.Unban(ctx, []netip.Prefix{addr})
			if _, err := b.List(ctx); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				op, result string
				want       float64
			}{
				{"setup", "ok", 1},
				{"ban", tt.result, 2},
				{"unban", tt.result, 1},
				{"list", "ok", 1},
			} {
				got := testutil.ToFloat64(m.fwOps.WithLabelValues("dryrun", c.op, c.result))
				if got != c.want {
					t.Errorf("band_firewall_operations_total{op=%q,result=%q}: got %v, want %v", c.op, c.result, got, c.want)
				}
			}
			want := `
# HELP band_firewall_operation_duration_seconds Time taken by firewall backend operations.
# TYPE band_firewall_operation_duration_seconds histogram
band_firewall_operation_duration_seconds_bucket{backend="dryrun",op="ban",le="0.0001"} 0
band_firewall_operation_duration_seconds_bucket{backend="dryrun",op="ban",le="0.00025"} 0
band_firewall_operation_duration_seconds_bucket{backend="dryrun",op="ban",le="0.0005"} 0
band_firewall_operation_duration_seconds_bucket{backend="dryrun",op="ban",le="0.001"} 0
band_firewall_operation_duration_seconds_bucket{backend="dryrun",op="ban",le="0.0025"} 2
band_firewall_operation_duration_seconds_bucket{backend="dryrun",op="ban",le="0.005"} 2
band_firewall_operation_duration_seconds_bucket{backend="dryrun",op="ban",le="0.01"} 2
band_firewall_operation_duration_seconds_bucket{backend="dryrun",op="ban",le="0.025"} 2
band_firewall_operation_duration_seconds_bucket{backend="dryrun",op="ban",le="0.05"} 2
band_firewall_operation_duration_seconds_bucket{backend="dryrun",op="ban",le="0.1"} 2
band_firewall_operation_duration_seconds_bucket{backend="dryrun",op="ban",le="0.25"} 2
band_firewall_operation_duration_seconds_bucket{backend="dryrun",op="ban",le="0.5"} 2
band_firewall_operation_duration_seconds_bucket{backend="dryrun",op="ban",le="1"} 2
band_firewall_operation_duration_seconds_bucket{backend="dryrun",op="ban",le="2.5"} 2
band_firewall_operation_duration_seconds_bucket{backend="dryrun",op="ban",le="+Inf"} 2
band_firewall_operation_duration_seconds_sum{backend="dryrun",op="ban"} 0.003
band_firewall_operation_duration_seconds_count{backend="dryrun",op="ban"} 2
`
			m.fwDur.DeleteLabelValues("dryrun", "setup")
			m.fwDur.DeleteLabelValues("dryrun", "unban")
			m.fwDur.DeleteLabelValues("dryrun", "list")
			if err := testutil.CollectAndCompare(m.fwDur, strings.NewReader(want)); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestObserve(t *testing.T) {
	m := New()
	m.Observe(func() Snapshot {
		return Snapshot{
			Sources: []Source{{Name: "access", Lines: 34, ParseErrors: 3, Files: []File{{Path: "/var/log/apache2/access.log", LagBytes: 120, LagSeconds: 2.5}}}},
			Jails:   []Jail{{Name: "http-flood", Matches: 31, Bans: 1, ActiveBans: 1, TrackedKeys: 4, Evictions: 2}},
		}
	})
	want := `
# HELP band_lines_total Log lines read, by source.
# TYPE band_lines_total counter
band_lines_total{source="access"} 34
# HELP band_parse_errors_total Log lines that did not parse in the source's format, by source.
# TYPE band_parse_errors_total counter
band_parse_errors_total{source="access"} 3
# HELP band_tail_lag_bytes Bytes written to a followed file but not read yet.
# TYPE band_tail_lag_bytes gauge
band_tail_lag_bytes{file="/var/log/apache2/access.log",source="access"} 120
# HELP band_tail_lag_seconds Age of the newest line read from a source while its file has unread bytes; 0 when caught up.
# TYPE band_tail_lag_seconds gauge
band_tail_lag_seconds{file="/var/log/apache2/access.log",source="access"} 2.5
# HELP band_matches_total Lines that counted for a jail.
# TYPE band_matches_total counter
band_matches_total{jail="http-flood"} 31
# HELP band_bans_total Bans made, by jail ("manual" for bandctl ban).
# TYPE band_bans_total counter
band_bans_total{jail="http-flood"} 1
# HELP band_active_bans Bans in force, by jail.
# TYPE band_active_bans gauge
band_active_bans{jail="http-flood"} 1
# HELP band_detector_tracked_keys Keys (clients, pages, sites) the detector tracks, by jail.
# TYPE band_detector_tracked_keys gauge
band_detector_tracked_keys{jail="http-flood"} 4
# HELP band_detector_evictions_total Keys the detector dropped to stay within max_tracked, by jail.
# TYPE band_detector_evictions_total counter
band_detector_evictions_total{jail="http-flood"} 2
`
	names := []string{"band_lines_total", "band_parse_errors_total", "band_tail_lag_bytes", "band_tail_lag_seconds",
		"band_matches_total", "band_bans_total", "band_active_bans", "band_detector_tracked_keys", "band_detector_evictions_total"}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// The Go and process collectors are there too.
	if n, err := testutil.GatherAndCount(m.Registry(), "go_goroutines", "process_start_time_seconds"); err != nil || n != 2 {
		t.Errorf("go and process collectors: got %d metrics (%v), want 2", n, err)
	}
}

func TestServer(t *testing.T) {
	m := New()
	srv, err := Listen("127.0.0.1:0", m.Handler())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	resp, err := http.Get("http://" + srv.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("GET /metrics: status %d, body %.200q", resp.StatusCode, body)
	}
	if resp, err := http.Get("http://" + srv.Addr() + "/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /: status %d, want 404", resp.StatusCode)
		}
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve after Close: %v", err)
	}
}

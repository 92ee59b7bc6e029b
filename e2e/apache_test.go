package e2e

import (
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/band-project/band/internal/cmdtest"
)

func TestMain(m *testing.M) { os.Exit(cmdtest.Main(m)) }

// Load of the legitimate clients: users, each holding a keep-alive
// connection and asking for a page or an asset about once a second. Sized
// for a 2-core machine that also runs the clients under the race detector.
const (
	legitUsers = 400
	legitPace  = time.Second
)

// TestApacheUnderAttack is the whole story: Apache serves its legitimate
// clients while band, reading Apache's logs, bans a flood, a scanner and a
// password brute-forcer in the kernel, over IPv4 and IPv6; with nftables,
// then the core of it again with iptables and ipset. It writes a report to
// $BAND_E2E_REPORT (default: band-e2e-report.txt in the temp directory).
func TestApacheUnderAttack(t *testing.T) {
	requireScenario(t)
	bin := cmdtest.Build(t)
	var reports []string
	for _, tc := range []struct {
		backend string
		full    bool // every attacker; else the flood alone
	}{
		{"nftables", true},
		{"iptables", false},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			reports = append(reports, runScenario(t, bin, tc.backend, tc.full))
		})
	}
	report := strings.Join(reports, "\n")
	t.Logf("report:\n%s", report)
	path := os.Getenv("BAND_E2E_REPORT")
	if path == "" {
		path = filepath.Join(os.TempDir(), "band-e2e-report.txt")
	}
	if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
		t.Errorf("writing the report: %v", err)
	} else {
		t.Logf("report written to %s", path)
	}
}

func runScenario(t *testing.T, bin, backend string, full bool) string {
	w := newWorld(t, bin, backend)
	bandPID := w.band.cmd.Process.Pid
	cpu0, err := cpuTime(bandPID)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()

	// The legitimate clients browse from before the attacks to after the
	// last ban has gone.
	st := &legitStats{}
	stopLegit := make(chan struct{})
	waitLegit := runLegit(w.legit, legitAddrs, legitUsers, legitPace, stopLegit, st)
	var stopOnce sync.Once
	endLegit := func() { stopOnce.Do(func() { close(stopLegit); waitLegit() }) }
	t.Cleanup(endLegit) // before the namespaces go
	deadline := time.Now().Add(20 * time.Second)
	for st.answered.Load() < legitUsers {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d legitimate users answered within 20s; failures: %v", st.answered.Load(), legitUsers, st.errors())
		}
		time.Sleep(100 * time.Millisecond)
	}
	held := w.established()

	attacks := []*attack{
		{name: "flooder", ns: w.flooder, addr: flooderV4, jail: "http-flood", after: "expire", run: flood("/products.html", 4, 5000)},
		{name: "flooder", ns: w.flooder, addr: flooderV6, jail: "http-flood", after: "unban", run: flood("/news.html", 4, 5000)},
	}
	if full {
		attacks = append(attacks,
			&attack{name: "scanner", ns: w.scanner, addr: scannerV4, jail: "apache-botsearch", after: "unban", run: scan()},
			&attack{name: "brute-forcer", ns: w.brute, addr: bruteV4, jail: "apache-auth", after: "expire", run: bruteForce()},
			&attack{name: "brute-forcer", ns: w.brute, addr: bruteV6, jail: "apache-auth", after: "expire", run: bruteForce()},
		)
	}
	stopAttacks := make(chan struct{})
	for _, a := range attacks {
		a.start(stopAttacks)
	}
	t.Cleanup(func() {
		close(stopAttacks)
		for _, a := range attacks {
			<-a.done
		}
	})

	// Each attacker is banned by its jail, and its packets are dropped.
	pending := map[netip.Addr]*attack{}
	for _, a := range attacks {
		pending[a.addr] = a
	}
	deadline = time.Now().Add(30 * time.Second)
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			for _, a := range pending {
				t.Errorf("%s %s not banned within 30s (sent %d requests; answers %v)", a.name, a.addr, a.sent.Load(), a.statusSummary())
			}
			t.FailNow()
		}
		bans, err := w.list()
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bans {
			for _, a := range pending {
				if !covers(b.Addr, a.addr) {
					continue
				}
				delete(pending, a.addr)
				a.ban = b
				if b.Jail != a.jail {
					t.Errorf("%s %s banned by %s, want %s", a.name, a.addr, b.Jail, a.jail)
				}
				tries, err := w.waitDropped(a)
				if err != nil {
					t.Errorf("%s %s after its ban: %v", a.name, a.addr, err)
				}
				a.dropTries = tries
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, a := range attacks {
		select {
		case <-a.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s %s still attacking 30s after its ban", a.name, a.addr)
		}
	}

	// bandctl unban gives access back at once; otherwise the kernel lifts
	// the ban when its time is up, with no word from band.
	var wg sync.WaitGroup
	for _, a := range attacks {
		switch a.after {
		case "unban":
			if _, err := w.bandctl("unban", a.addr.String()); err != nil {
				t.Errorf("unbanning %s: %v", a.addr, err)
				continue
			}
			unbanned := time.Now()
			if err := w.dial(a.ns, a.addr, time.Second); err != nil {
				t.Errorf("%s %s: dial right after bandctl unban: %v", a.name, a.addr, err)
				continue
			}
			a.back = time.Since(unbanned)
		case "expire":
			wg.Add(1)
			go func() {
				defer wg.Done()
				deadline := a.ban.Expiry.Add(15 * time.Second)
				for {
					err := w.dial(a.ns, a.addr, 300*time.Millisecond)
					if err == nil {
						a.back = time.Since(a.ban.Start)
						return
					}
					if !dropped(err) {
						t.Errorf("%s %s: dial while banned: %v, want a timeout", a.name, a.addr, err)
						return
					}
					if time.Now().After(deadline) {
						t.Errorf("%s %s still dropped 15s after its ban expired (%s)", a.name, a.addr, a.ban.Expiry.Format(time.RFC3339Nano))
						return
					}
					time.Sleep(200 * time.Millisecond)
				}
			}()
		}
	}
	wg.Wait()
	for _, e := range w.band.entries() {
		for _, a := range attacks {
			if a.after == "expire" && e.Msg == "unban" && covers(e.Addr, a.addr) {
				t.Errorf("band lifted the ban of %s itself (%s); the kernel should have", a.addr, e.raw)
			}
		}
	}
	for _, a := range attacks {
		if a.after == "expire" && a.back > 0 && a.back < shortBanD-time.Second {
			t.Errorf("%s %s answered again %v after its ban, before its ban time %v", a.name, a.addr, a.back, shortBanD)
		}
	}

	if n := w.established(); n > held {
		held = n
	}
	procs := w.apacheProcesses()
	endLegit()
	wall := time.Since(start)
	cpu1, err := cpuTime(bandPID)
	if err != nil {
		t.Fatal(err)
	}

	// The legitimate clients were served and never banned.
	total := st.ok.Load() + st.failed.Load()
	ratio := float64(st.ok.Load()) / float64(max(total, 1))
	if ratio < 0.999 {
		t.Errorf("legitimate clients: %d of %d requests succeeded (%.4f%%), want at least 99.9%%; failures: %v", st.ok.Load(), total, 100*ratio, st.errors())
	}
	for _, e := range w.band.entries() {
		for _, a := range legitAddrs {
			if e.Msg == "ban" && covers(e.Addr, a) {
				t.Errorf("a legitimate client was banned: %s", e.raw)
			}
		}
	}
	for _, a := range attacks {
		if a.name == "scanner" && a.count(http.StatusNotFound) == 0 {
			t.Errorf("the scanner got no 404 (answers %v)", a.statusSummary())
		}
		if a.name == "brute-forcer" && a.count(http.StatusUnauthorized) == 0 {
			t.Errorf("the brute-forcer got no 401 (answers %v)", a.statusSummary())
		}
	}

	// The report.
	var b strings.Builder
	fmt.Fprintf(&b, "backend %s: Apache event MPM (ServerLimit 161, ThreadsPerChild 25, MaxRequestWorkers 4025, KeepAlive on)\n", backend)
	fmt.Fprintf(&b, "  legitimate: %d users from %d addresses, up to %d keep-alive connections open at the server; Apache ran %d processes\n", legitUsers, len(legitAddrs), held, procs)
	fmt.Fprintf(&b, "  legitimate: %d requests, %d succeeded (%.3f%%), none banned\n", total, st.ok.Load(), 100*ratio)
	for _, a := range attacks {
		fmt.Fprintf(&b, "  %-12s %-15s banned by %-16s %6.0f ms after its first request (first answer after %.0f ms; %d requests sent, answers %v); dropped on dial %d",
			a.name, a.addr, a.ban.Jail, ms(a.ban.Start.Sub(a.first)), ms(time.Unix(0, a.firstAnswer.Load()).Sub(a.first)), a.sent.Load(), a.statusSummary(), a.dropTries)
		switch a.after {
		case "unban":
			fmt.Fprintf(&b, "; bandctl unban: dial answered %.1f ms later\n", ms(a.back))
		case "expire":
			fmt.Fprintf(&b, "; kernel expiry: dial answered %.1f s after the ban (ban time %v)\n", a.back.Seconds(), shortBanD)
		}
	}
	cpu := cpu1 - cpu0
	fmt.Fprintf(&b, "  band CPU: %.2f s over %.1f s wall (%.2f%% of one core)\n", cpu.Seconds(), wall.Seconds(), 100*cpu.Seconds()/wall.Seconds())
	return b.String()
}

func (a *attack) statusSummary() string {
	var parts []string
	a.statuses.Range(func(k, v any) bool {
		parts = append(parts, fmt.Sprintf("%d×%d", v.(interface{ Load() int64 }).Load(), k))
		return true
	})
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// waitDropped dials from a's address until a dial gets no answer (the ban
// reached the kernel), then checks that the next one gets none either. It
// returns how many dials it took.
func (w *world) waitDropped(a *attack) (int, error) {
	deadline := time.Now().Add(3 * time.Second)
	for tries := 1; ; tries++ {
		err := w.dial(a.ns, a.addr, 300*time.Millisecond)
		if dropped(err) {
			if err := w.dial(a.ns, a.addr, 300*time.Millisecond); !dropped(err) {
				return tries, fmt.Errorf("a dial was dropped, the next one was not (%v)", err)
			}
			return tries, nil
		}
		if time.Now().After(deadline) {
			return tries, fmt.Errorf("dials still get through 3s after the ban was listed (last: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// established counts the TCP connections to port 80 the server holds open.
func (w *world) established() int {
	out, err := w.server.Run("ss", "-Htn", "state", "established", "( sport = :80 )")
	if err != nil {
		w.t.Errorf("counting connections: %v", err)
		return 0
	}
	return strings.Count(out, "\n")
}

// covers reports whether s, an address or prefix as band prints it,
// covers a.
func covers(s string, a netip.Addr) bool {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Contains(a)
	}
	b, err := netip.ParseAddr(s)
	return err == nil && b == a
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

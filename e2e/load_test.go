package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/band-project/band/internal/netnstest"
)

// The site's pages (counted by the flood jails) and static assets (left out
// by them, as a browser fetches several per page).
var (
	pages  = []string{"/", "/about.html", "/news.html", "/products.html", "/contact.html", "/private/"}
	assets = []string{"/style.css", "/app.js", "/logo.png"}
)

// newClient returns an HTTP client whose connections are made in ns from
// local, keeping up to conns of them alive.
func newClient(ns *netnstest.NS, local netip.Addr, conns int, timeout time.Duration) *http.Client {
	return client(ns, local, conns, timeout, false)
}

// attackClient is newClient for an attacker, whose connections are reset
// when it gives up on them. Closed normally, a connection whose packets
// are dropped lives on in the kernel, retransmitting the last request; one
// that gets through after an unban makes Apache log it and band ban again.
func attackClient(ns *netnstest.NS, local netip.Addr, conns int, timeout time.Duration) *http.Client {
	return client(ns, local, conns, timeout, true)
}

func client(ns *netnstest.NS, local netip.Addr, conns int, timeout time.Duration, reset bool) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := ns.DialFrom(ctx, local, network, addr)
				if err != nil || !reset {
					return c, err
				}
				if err := c.(*net.TCPConn).SetLinger(0); err != nil {
					c.Close()
					return nil, err
				}
				return c, nil
			},
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

func baseURL(local netip.Addr) string { return "http://" + serverAddr(local) }

// get fetches path and reads the whole answer.
func get(c *http.Client, local netip.Addr, path, user, pass, agent string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, baseURL(local)+path, nil)
	if err != nil {
		return 0, err
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	req.Header.Set("User-Agent", agent)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return resp.StatusCode, fmt.Errorf("reading %s: %w", path, err)
	}
	return resp.StatusCode, nil
}

// legitStats counts the legitimate clients' requests.
type legitStats struct {
	ok, failed atomic.Int64
	answered   atomic.Int64 // users answered at least once
	mu         sync.Mutex
	errs       map[string]int // failures by kind, for the report
}

func (s *legitStats) record(path string, status int, err error) {
	if err == nil && status == http.StatusOK {
		s.ok.Add(1)
		return
	}
	s.failed.Add(1)
	kind := fmt.Sprintf("status %d", status)
	if err != nil {
		kind = err.Error()
	}
	s.mu.Lock()
	if s.errs == nil {
		s.errs = map[string]int{}
	}
	s.errs[path+": "+kind]++
	s.mu.Unlock()
}

func (s *legitStats) errors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k, n := range s.errs {
		out = append(out, fmt.Sprintf("%dx %s", n, k))
	}
	sort.Strings(out)
	return out
}

// runLegit starts users browsing the site, each on its own keep-alive
// connection from one of addrs (spread evenly), one request every pace on
// average, until stop is closed; the returned func waits for them. Each
// address stays far below the flood jails' limits: with 25 users an address
// asks ~12 pages a second over six pages, against 30 per page and 200 per
// site in 2 s.
func runLegit(ns *netnstest.NS, addrs []netip.Addr, users int, pace time.Duration, stop <-chan struct{}, st *legitStats) (wait func()) {
	var wg sync.WaitGroup
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			legitUser(ns, addrs[i%len(addrs)], uint64(i), pace, stop, st)
		}()
	}
	return wg.Wait
}

// A user's requests are bounded, whatever happens to stop.
const (
	maxLegitRequests = 2000
	maxLegitTime     = 3 * time.Minute
)

func legitUser(ns *netnstest.NS, local netip.Addr, seed uint64, pace time.Duration, stop <-chan struct{}, st *legitStats) {
	c := newClient(ns, local, 1, 10*time.Second)
	defer c.CloseIdleConnections()
	rng := rand.New(rand.NewPCG(seed, 8))
	timer := time.NewTimer(rand.N(pace)) // users arrive spread over one pace
	defer timer.Stop()
	end := time.Now().Add(maxLegitTime)
	for n := range maxLegitRequests {
		select {
		case <-stop:
			return
		case <-timer.C:
		}
		if time.Now().After(end) {
			return
		}
		path := pages[rng.IntN(len(pages))]
		if rng.IntN(2) == 0 {
			path = assets[rng.IntN(len(assets))]
		}
		user, pass := "", ""
		if strings.HasPrefix(path, "/private/") {
			user, pass = memberUser, memberPass
		}
		status, err := get(c, local, path, user, pass, "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
		st.record(path, status, err)
		if n == 0 {
			st.answered.Add(1)
		}
		timer.Reset(pace/2 + rand.N(pace))
	}
}

// attack is one attacker: what it did and what band did about it.
type attack struct {
	name string
	ns   *netnstest.NS
	addr netip.Addr
	jail string // the jail that must ban it
	// after its ban: "unban" (bandctl unban, access back at once) or
	// "expire" (the kernel lifts the ban after the ban time)
	after string
	run   func(a *attack, stop <-chan struct{})

	first time.Time // its first request
	end   time.Time // it stops by then, banned or not
	sent  atomic.Int64
	// firstAnswer is when its first answer came (Unix ns; 0 for none).
	firstAnswer atomic.Int64
	statuses    sync.Map // status code → *atomic.Int64
	done        chan struct{}

	ban       ban           // as bandctl list showed it
	dropTries int           // dials until the first dropped one
	back      time.Duration // from the unban, or from the ban's start for expiry, to a dial answered again
}

func (a *attack) answered(status int) {
	a.firstAnswer.CompareAndSwap(0, time.Now().UnixNano())
	v, _ := a.statuses.LoadOrStore(status, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (a *attack) count(status int) int64 {
	if v, ok := a.statuses.Load(status); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

func (a *attack) start(stop <-chan struct{}) {
	a.done = make(chan struct{})
	a.first = time.Now()
	a.end = a.first.Add(maxAttackTime)
	go func() {
		defer close(a.done)
		a.run(a, stop)
	}()
}

// maxAttackTime bounds an attack that band fails to stop.
const maxAttackTime = 20 * time.Second

// flood hammers one page from workers keep-alive connections, as fast as
// they go, up to max requests; a worker gives up after two requests in a
// row without an answer (its address banned).
func flood(path string, workers, max int) func(*attack, <-chan struct{}) {
	return func(a *attack, stop <-chan struct{}) {
		c := attackClient(a.ns, a.addr, workers, time.Second)
		defer c.CloseIdleConnections()
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fails := 0
				for fails < 2 && time.Now().Before(a.end) && a.sent.Add(1) <= int64(max) {
					select {
					case <-stop:
						return
					default:
					}
					status, err := get(c, a.addr, path, "", "", "python-requests/2.31.0")
					if err != nil {
						fails++
						continue
					}
					fails = 0
					a.answered(status)
				}
			}()
		}
		wg.Wait()
	}
}

// sequence sends one request after another with a short pause, up to max,
// giving up after two without an answer; next gives the i-th request's
// path and credentials.
func sequence(max int, pause time.Duration, agent string, next func(i int) (path, user, pass string)) func(*attack, <-chan struct{}) {
	return func(a *attack, stop <-chan struct{}) {
		c := attackClient(a.ns, a.addr, 1, time.Second)
		defer c.CloseIdleConnections()
		fails := 0
		for i := 0; i < max && fails < 2 && time.Now().Before(a.end); i++ {
			if i > 0 {
				select {
				case <-stop:
					return
				case <-time.After(pause):
				}
			}
			path, user, pass := next(i)
			a.sent.Add(1)
			status, err := get(c, a.addr, path, user, pass, agent)
			if err != nil {
				fails++
				continue
			}
			fails = 0
			a.answered(status)
		}
	}
}

// probes are paths of software the site does not run; each gets a 404.
var probes = []string{
	"/wp-login.php", "/xmlrpc.php", "/wp-admin/", "/.env", "/.git/config", "/phpmyadmin/",
	"/pma/", "/wordpress/wp-login.php", "/cgi-bin/test.cgi", "/webmail/", "/.env.production",
	"/mysqladmin/", "/.svn/entries", "/roundcube/", "/wp-content/plugins/",
}

// scan walks the probe paths (three rounds at most).
func scan() func(*attack, <-chan struct{}) {
	return sequence(3*len(probes), 20*time.Millisecond, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36", func(i int) (string, string, string) {
		return probes[i%len(probes)], "", ""
	})
}

// bruteForce guesses: wrong passwords for admin (AH01617) and users that do
// not exist (AH01618), on the protected area.
func bruteForce() func(*attack, <-chan struct{}) {
	names := []string{"root", "test", "guest", "oracle", "webmaster"}
	return sequence(40, 20*time.Millisecond, "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", func(i int) (string, string, string) {
		if i%2 == 0 {
			return "/private/", adminUser, fmt.Sprintf("guess%d", i)
		}
		return "/private/", names[i%len(names)], "123456"
	})
}

package firewall

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-iptables/iptables"
)

// ipsetMaxElem is the capacity of each ipset set.
const ipsetMaxElem = 1 << 20

// ipsetMaxTimeout is the longest timeout ipset accepts, in seconds.
const ipsetMaxTimeout = 2147483

// IPTables drops banned sources with a chain (default BAND) jumped to from
// INPUT (and FORWARD), in both iptables and ip6tables, matching one ipset
// hash:net set per family with kernel timeouts. Sets are created with
// `ipset restore` and read with `ipset save`; members are added and deleted
// over netlink (ipsetConn), in messages of 1000, never one process or one
// message per address.
//
// Without ipset it falls back to one rule per address or prefix, added and
// removed in one iptables-restore --noflush process per call and family;
// then band expires bans itself, from a sweeper started by Setup, and bans
// found in the chain at start have no known expiry (List reports TTL 0) until
// Reconcile or Ban sets one.
type IPTables struct {
	log  *slog.Logger
	opts Options
	v4   *iptables.IPTables
	v6   *iptables.IPTables

	mu      sync.Mutex
	ic      *ipsetConn                 // opened at the first Ban or Unban
	noIPSet bool                       // fallback: one rule per entry
	expiry  map[netip.Prefix]time.Time // fallback: band's own expiry (zero: none)
	stop    chan struct{}
	done    chan struct{}
}

var _ Backend = (*IPTables)(nil)

func newIPTables(log *slog.Logger, o Options) (*IPTables, error) {
	b := &IPTables{log: log.With("component", "firewall", "backend", "iptables"), opts: o, expiry: map[netip.Prefix]time.Time{}}
	err := inNetNS(o.NetNS, func() error {
		var err error
		if b.v4, err = iptables.New(iptables.IPFamily(iptables.ProtocolIPv4), iptables.Timeout(10)); err != nil {
			return fmt.Errorf("%w: iptables: %w", ErrUnsupported, err)
		}
		if b.v6, err = iptables.New(iptables.IPFamily(iptables.ProtocolIPv6), iptables.Timeout(10)); err != nil {
			return fmt.Errorf("%w: ip6tables: %w", ErrUnsupported, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("ipset"); err != nil {
		b.log.Warn("ipset not found: falling back to one iptables rule per ban, expired by band itself (install ipset)")
		b.noIPSet = true
	}
	return b, nil
}

func (b *IPTables) Name() string { return "iptables" }

type family struct {
	ipt  *iptables.IPTables
	set  string
	inet string // ipset family
	cmd  string // iptables-restore binary
}

func (b *IPTables) families() []family {
	return []family{
		{b.v4, b.opts.Set4, "inet", "iptables-restore"},
		{b.v6, b.opts.Set6, "inet6", "ip6tables-restore"},
	}
}

func (b *IPTables) familyOf(p netip.Prefix) family {
	if p.Addr().Is4() {
		return b.families()[0]
	}
	return b.families()[1]
}

func (b *IPTables) target() string {
	if b.opts.Verdict == "reject" {
		return "REJECT"
	}
	return "DROP"
}

func other(target string) string {
	if target == "REJECT" {
		return "DROP"
	}
	return "REJECT"
}

// Setup creates the ipset sets (adopting existing ones), the chain in
// iptables and ip6tables, its rules and the jumps from the hooks. Nothing is
// flushed; it is idempotent. If ipset cannot create sets here, Setup falls
// back to one rule per ban and warns.
func (b *IPTables) Setup(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.noIPSet {
		var script strings.Builder
		for _, f := range b.families() {
			fmt.Fprintf(&script, "create %s hash:net family %s timeout 0 maxelem %d\n", f.set, f.inet, ipsetMaxElem)
		}
		if err := b.ipset(script.String()); err != nil {
			b.log.Warn("ipset unusable: falling back to one iptables rule per ban, expired by band itself", "err", err)
			b.noIPSet = true
		}
	}
	err := inNetNS(b.opts.NetNS, func() error {
		for _, f := range b.families() {
			ok, err := f.ipt.ChainExists("filter", b.opts.Chain)
			if err != nil {
				return kernelErr(fmt.Sprintf("looking for chain %s", b.opts.Chain), err)
			}
			if !ok {
				if err := f.ipt.NewChain("filter", b.opts.Chain); err != nil {
					return kernelErr(fmt.Sprintf("creating chain %s", b.opts.Chain), err)
				}
			}
			if !b.noIPSet {
				match := []string{"-m", "set", "--match-set", f.set, "src", "-j"}
				if err := f.ipt.DeleteIfExists("filter", b.opts.Chain, append(match, other(b.target()))...); err != nil {
					return kernelErr(fmt.Sprintf("removing old rule for set %s", f.set), err)
				}
				if err := f.ipt.AppendUnique("filter", b.opts.Chain, append(match, b.target())...); err != nil {
					return kernelErr(fmt.Sprintf("adding rule for set %s to chain %s", f.set, b.opts.Chain), err)
				}
			}
			for _, h := range b.opts.Hooks {
				hook := strings.ToUpper(h)
				ok, err := f.ipt.Exists("filter", hook, "-j", b.opts.Chain)
				if err != nil {
					return kernelErr(fmt.Sprintf("looking for jump from %s", hook), err)
				}
				if !ok {
					if err := f.ipt.Insert("filter", hook, 1, "-j", b.opts.Chain); err != nil {
						return kernelErr(fmt.Sprintf("adding jump from %s to %s", hook, b.opts.Chain), err)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if b.noIPSet {
		if err := b.loadRules(); err != nil {
			return err
		}
		if b.stop == nil {
			b.stop, b.done = make(chan struct{}), make(chan struct{})
			go b.sweep(b.stop, b.done)
		}
	}
	b.log.Info("iptables ready", "chain", b.opts.Chain, "ipset", !b.noIPSet, "verdict", b.opts.Verdict)
	return nil
}

// ipset runs one `ipset restore -exist` with script on stdin.
func (b *IPTables) ipset(script string) error {
	return inNetNS(b.opts.NetNS, func() error {
		cmd := exec.Command("ipset", "restore", "-exist")
		cmd.Stdin = strings.NewReader(script)
		out, err := cmd.CombinedOutput()
		return cmdErr(err, out)
	})
}

// cmdErr joins a command's failure with what it printed, and marks a lack of
// privilege so that kernelErr adds its hint.
func cmdErr(err error, out []byte) error {
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(string(out))
	if strings.Contains(msg, "not permitted") || strings.Contains(msg, "ermission denied") {
		return fmt.Errorf("%w: %s (%w)", err, msg, os.ErrPermission)
	}
	return fmt.Errorf("%w: %s", err, msg)
}

func ipsetTimeout(ttl time.Duration) (int64, error) {
	if ttl < 0 {
		return 0, fmt.Errorf("negative ttl %s", ttl)
	}
	s := int64((ttl + time.Second - 1) / time.Second) // round up: never shorter
	return min(s, ipsetMaxTimeout), nil
}

// Ban adds entries with their TTL (rounded up to whole seconds; 0: no
// timeout) over netlink, 1000 per message; banning again refreshes the
// timeout. If a message fails, the entries of the messages before it stay.
func (b *IPTables) Ban(ctx context.Context, entries []Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.noIPSet {
		return b.banRules(entries)
	}
	var members [2][]ipsetMember // per family
	for _, e := range entries {
		p, err := normalize(e.Prefix)
		if err != nil {
			return fmt.Errorf("banning: %w", err)
		}
		secs, err := ipsetTimeout(e.TTL)
		if err != nil {
			return fmt.Errorf("banning %s: %w", show(p), err)
		}
		i := b.familyIndex(p)
		if members[i] == nil {
			members[i] = make([]ipsetMember, 0, len(entries))
		}
		members[i] = append(members[i], ipsetMember{p: p, timeout: uint32(secs)})
	}
	return b.applyIPSet(ipsetCmdAdd, members, "adding %s to set %s")
}

// familyIndex is 0 for IPv4, 1 for IPv6: the index into families.
func (b *IPTables) familyIndex(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 0
	}
	return 1
}

// applyIPSet sends members (per family) to their sets over netlink, opening
// the socket the first time. doing describes the work for errors: it gets
// the members and the set name.
func (b *IPTables) applyIPSet(cmd uint16, members [2][]ipsetMember, doing string) error {
	if b.ic == nil {
		ic, err := dialIPSet(b.opts.NetNS)
		if err != nil {
			return kernelErr("talking to ipset", err)
		}
		b.ic = ic
	}
	for i, f := range b.families() {
		ms := members[i]
		if len(ms) == 0 {
			continue
		}
		if err := b.ic.apply(cmd, f.set, ms); err != nil {
			return kernelErr(fmt.Sprintf(doing, describeN(show(ms[0].p), len(ms)), f.set), err)
		}
	}
	return nil
}

// Unban removes prefixes (over netlink, 1000 per message); absent ones are
// ignored.
func (b *IPTables) Unban(ctx context.Context, prefixes []netip.Prefix) error {
	ps, err := unbanList(ctx, prefixes)
	if err != nil || len(ps) == 0 {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.noIPSet {
		return b.unbanRules(ps)
	}
	var members [2][]ipsetMember
	for _, p := range ps {
		i := b.familyIndex(p)
		members[i] = append(members[i], ipsetMember{p: p})
	}
	return b.applyIPSet(ipsetCmdDel, members, "removing %s from set %s")
}

// List reads both sets with one `ipset save` and returns their members with
// the seconds left.
func (b *IPTables) List(ctx context.Context) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.noIPSet {
		return b.listRules(), nil
	}
	var out []byte
	err := inNetNS(b.opts.NetNS, func() error {
		var stderr bytes.Buffer
		cmd := exec.Command("ipset", "save")
		cmd.Stderr = &stderr
		var err error
		out, err = cmd.Output()
		return cmdErr(err, stderr.Bytes())
	})
	if err != nil {
		return nil, kernelErr(fmt.Sprintf("listing sets %s, %s", b.opts.Set4, b.opts.Set6), err)
	}
	return parseIPSetSave(out, b.opts.Set4, b.opts.Set6)
}

// parseIPSetSave reads the "add SET ADDR [timeout N]" lines of `ipset save`
// for the named sets.
func parseIPSetSave(out []byte, sets ...string) ([]Entry, error) {
	want := map[string]bool{}
	for _, s := range sets {
		want[s] = true
	}
	var entries []Entry
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != "add" || !want[f[1]] {
			continue
		}
		p, err := parsePrefixOrAddr(f[2])
		if err != nil {
			return nil, fmt.Errorf("reading set %s: %w", f[1], err)
		}
		e := Entry{Prefix: p}
		for i := 3; i+1 < len(f); i++ {
			if f[i] == "timeout" {
				n, err := strconv.ParseInt(f[i+1], 10, 64)
				if err != nil {
					return nil, fmt.Errorf("reading set %s: timeout %q: %w", f[1], f[i+1], err)
				}
				e.TTL = time.Duration(n) * time.Second
			}
		}
		entries = append(entries, e)
	}
	return entries, sc.Err()
}

func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Close stops the fallback sweeper, if any, and closes the netlink socket;
// the kernel keeps the bans.
func (b *IPTables) Close() error {
	b.mu.Lock()
	stop, done := b.stop, b.done
	b.stop = nil
	var err error
	if b.ic != nil {
		err = b.ic.Close()
		b.ic = nil
	}
	b.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	return err
}

// --- fallback without ipset: one rule per entry ---

func (b *IPTables) ruleSpec(p netip.Prefix) string {
	return fmt.Sprintf("-s %s -j %s", p, b.target())
}

// restore applies "-A"/"-D" lines to the filter table of each family with one
// iptables-restore --noflush process per family.
func (b *IPTables) restore(lines map[string][]string) error {
	return inNetNS(b.opts.NetNS, func() error {
		for _, f := range b.families() {
			ls := lines[f.cmd]
			if len(ls) == 0 {
				continue
			}
			script := "*filter\n" + strings.Join(ls, "\n") + "\nCOMMIT\n"
			cmd := exec.Command(f.cmd, "--noflush", "--wait")
			cmd.Stdin = strings.NewReader(script)
			out, err := cmd.CombinedOutput()
			if err := cmdErr(err, out); err != nil {
				return fmt.Errorf("%s: %w", f.cmd, err)
			}
		}
		return nil
	})
}

// loadRules reads the per-address rules already in the chain (after a
// restart); their expiry is unknown until Ban or Reconcile sets one.
func (b *IPTables) loadRules() error {
	return inNetNS(b.opts.NetNS, func() error {
		for _, f := range b.families() {
			rules, err := f.ipt.List("filter", b.opts.Chain)
			if err != nil {
				return kernelErr(fmt.Sprintf("listing chain %s", b.opts.Chain), err)
			}
			for _, r := range rules {
				fs := strings.Fields(r)
				if len(fs) == 6 && fs[0] == "-A" && fs[2] == "-s" && fs[4] == "-j" {
					if p, err := parsePrefixOrAddr(fs[3]); err == nil {
						if _, ok := b.expiry[p.Masked()]; !ok {
							b.expiry[p.Masked()] = time.Time{}
						}
					}
				}
			}
		}
		return nil
	})
}

func (b *IPTables) banRules(entries []Entry) error {
	now := b.opts.Now()
	lines := map[string][]string{}
	var names []string
	added := map[netip.Prefix]time.Time{}
	for _, e := range entries {
		p, err := normalize(e.Prefix)
		if err != nil {
			return fmt.Errorf("banning: %w", err)
		}
		if e.TTL < 0 {
			return fmt.Errorf("banning %s: negative ttl %s", show(p), e.TTL)
		}
		var exp time.Time
		if e.TTL > 0 {
			exp = now.Add(e.TTL)
		}
		if _, ok := b.expiry[p]; ok {
			b.expiry[p] = exp // refresh only
			continue
		}
		if _, ok := added[p]; !ok {
			f := b.familyOf(p)
			lines[f.cmd] = append(lines[f.cmd], "-A "+b.opts.Chain+" "+b.ruleSpec(p))
			names = append(names, show(p))
		}
		added[p] = exp
	}
	if err := b.restore(lines); err != nil {
		return kernelErr(fmt.Sprintf("adding rules for %s to chain %s", describe(names), b.opts.Chain), err)
	}
	for p, exp := range added {
		b.expiry[p] = exp
	}
	return nil
}

func (b *IPTables) unbanRules(ps []netip.Prefix) error {
	lines := map[string][]string{}
	var names []string
	var gone []netip.Prefix
	for _, p := range ps {
		if _, ok := b.expiry[p]; !ok {
			continue
		}
		f := b.familyOf(p)
		lines[f.cmd] = append(lines[f.cmd], "-D "+b.opts.Chain+" "+b.ruleSpec(p))
		names = append(names, show(p))
		gone = append(gone, p)
		delete(b.expiry, p) // a prefix listed twice is deleted once
	}
	if err := b.restore(lines); err != nil {
		for _, p := range gone {
			b.expiry[p] = time.Time{}
		}
		return kernelErr(fmt.Sprintf("removing rules for %s from chain %s", describe(names), b.opts.Chain), err)
	}
	return nil
}

func (b *IPTables) listRules() []Entry {
	now := b.opts.Now()
	out := make([]Entry, 0, len(b.expiry))
	for p, exp := range b.expiry {
		e := Entry{Prefix: p}
		if !exp.IsZero() {
			if !exp.After(now) {
				continue // the sweeper removes it
			}
			e.TTL = exp.Sub(now)
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Prefix.String() < out[j].Prefix.String() })
	return out
}

// expire removes the rules whose expiry has passed at now.
func (b *IPTables) expire(now time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var due []netip.Prefix
	for p, exp := range b.expiry {
		if !exp.IsZero() && !exp.After(now) {
			due = append(due, p)
		}
	}
	if len(due) == 0 {
		return nil
	}
	return b.unbanRules(due)
}

func (b *IPTables) sweep(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := b.expire(b.opts.Now()); err != nil && !errors.Is(err, context.Canceled) {
				b.log.Error("expiring bans", "err", err)
			}
		}
	}
}

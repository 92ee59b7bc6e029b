package firewall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

const (
	// nftPriority runs band's chains before the usual filter chains
	// (priority filter - 10), so a ban wins over an accept there.
	nftPriority nftables.ChainPriority = -10
	// elemsPerMsg keeps one NEWSETELEM message under netlink's 64 KiB
	// attribute limit (an IPv6 element with timeout is about 40 bytes).
	elemsPerMsg = 1000
	// elemsPerTxn caps one transaction; a bigger Ban is split.
	elemsPerTxn = 200_000
	// nftSndBuf is the netlink socket's send buffer, big enough for one
	// transaction of elemsPerTxn elements.
	nftSndBuf = 16 << 20
	// ruleTag starts the comment of every rule band owns.
	ruleTag = "band:"
)

// Nftables drops banned sources with sets in an inet table of its own:
// Set4/Set6 (flags timeout) for single addresses and Set4+"net"/Set6+"net"
// (flags interval, timeout) for prefixes, matched by one base chain per hook.
type Nftables struct {
	log  *slog.Logger
	opts Options

	mu     sync.Mutex // serialises use of conn
	conn   *nftables.Conn
	closeN func() error // closes the netns fd, if any
	table  *nftables.Table
	addr4  *nftables.Set
	net4   *nftables.Set
	addr6  *nftables.Set
	net6   *nftables.Set
}

var _ Backend = (*Nftables)(nil)

func newNftables(log *slog.Logger, o Options) (*Nftables, error) {
	return newNftablesDial(log, o, nil)
}

// newNftablesDial builds the backend; a non-nil dial replaces the kernel
// (tests record the netlink messages).
func newNftablesDial(log *slog.Logger, o Options, dial nltest.Func) (*Nftables, error) {
	closeN := func() error { return nil }
	copts := []nftables.ConnOption{nftables.AsLasting()}
	if dial != nil {
		copts = append(copts, nftables.WithTestDial(dial))
	} else {
		copts = append(copts, nftables.WithSockOptions(func(c *netlink.Conn) error {
			return c.SetWriteBuffer(nftSndBuf)
		}))
		if o.NetNS != "" {
			fd, err := unix.Open(o.NetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return nil, fmt.Errorf("opening netns %s: %w", o.NetNS, err)
			}
			copts = append(copts, nftables.WithNetNSFd(fd))
			closeN = func() error { return unix.Close(fd) }
		}
	}
	conn, err := nftables.New(copts...)
	if err != nil {
		closeN()
		return nil, kernelErr("opening nftables netlink socket", err)
	}
	t := &nftables.Table{Name: o.Table, Family: nftables.TableFamilyINet}
	set := func(id uint32, name string, typ nftables.SetDatatype, interval bool) *nftables.Set {
		return &nftables.Set{Table: t, ID: id, Name: name, KeyType: typ, HasTimeout: true, Interval: interval}
	}
	return &Nftables{
		log:    log.With("component", "firewall", "backend", "nftables"),
		opts:   o,
		conn:   conn,
		closeN: closeN,
		table:  t,
		addr4:  set(1, o.Set4, nftables.TypeIPAddr, false),
		net4:   set(2, o.Set4+"net", nftables.TypeIPAddr, true),
		addr6:  set(3, o.Set6, nftables.TypeIP6Addr, false),
		net6:   set(4, o.Set6+"net", nftables.TypeIP6Addr, true),
	}, nil
}

// probeNftables reports whether the kernel answers nf_tables netlink.
func probeNftables(o Options) error {
	var copts []nftables.ConnOption
	if o.NetNS != "" {
		fd, err := unix.Open(o.NetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening netns %s: %w", o.NetNS, err)
		}
		defer unix.Close(fd)
		copts = append(copts, nftables.WithNetNSFd(fd))
	}
	c, err := nftables.New(copts...)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	if _, err := c.ListTablesOfFamily(nftables.TableFamilyINet); err != nil {
		return fmt.Errorf("%w: listing nftables tables: %w", ErrUnsupported, err)
	}
	return nil
}

func (b *Nftables) Name() string { return "nftables" }

func (b *Nftables) sets() []*nftables.Set { return []*nftables.Set{b.addr4, b.net4, b.addr6, b.net6} }

func (b *Nftables) chains() []*nftables.Chain {
	var cs []*nftables.Chain
	for _, h := range b.opts.Hooks {
		c := &nftables.Chain{
			Name:     b.opts.Chain,
			Table:    b.table,
			Type:     nftables.ChainTypeFilter,
			Hooknum:  nftables.ChainHookInput,
			Priority: nftables.ChainPriorityRef(nftPriority),
			Policy:   ptr(nftables.ChainPolicyAccept),
		}
		if h == "forward" {
			c.Name = b.opts.Chain + "-forward"
			c.Hooknum = nftables.ChainHookForward
		}
		cs = append(cs, c)
	}
	return cs
}

func ptr[T any](v T) *T { return &v }

// rule matches the source address against s and applies the verdict. Its
// comment ("band:<set>:<verdict>") lets Setup find it again.
func (b *Nftables) rule(c *nftables.Chain, s *nftables.Set) *nftables.Rule {
	proto, off, n := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4)
	if s.KeyType.Bytes == 16 {
		proto, off, n = unix.NFPROTO_IPV6, 8, 16
	}
	var verdict expr.Any = &expr.Verdict{Kind: expr.VerdictDrop}
	if b.opts.Verdict == "reject" {
		verdict = &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_PORT_UNREACH}
	}
	return &nftables.Rule{
		Table: b.table,
		Chain: c,
		Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
			&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
			&expr.Counter{},
			verdict,
		},
		UserData: userdata.AppendString(nil, userdata.TypeComment, b.ruleComment(s)),
	}
}

func (b *Nftables) ruleComment(s *nftables.Set) string {
	return ruleTag + s.Name + ":" + b.opts.Verdict
}

// Setup creates the table, the four sets and the base chains, or adopts them
// if they exist (nothing is flushed), then adds the rules that are missing.
// Band's rules with another verdict are replaced. It is idempotent.
func (b *Nftables) Setup(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.conn
	c.AddTable(b.table)
	for _, s := range b.sets() {
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("creating set %s: %w", s.Name, err)
		}
	}
	chains := b.chains()
	for _, ch := range chains {
		c.AddChain(ch)
	}
	if err := c.Flush(); err != nil {
		return kernelErr(fmt.Sprintf("creating table inet %s with its sets and chains", b.table.Name), err)
	}

	for _, ch := range chains {
		rules, err := c.GetRules(b.table, ch)
		if err != nil {
			return kernelErr(fmt.Sprintf("listing rules of chain %s", ch.Name), err)
		}
		have := make(map[string]bool)
		want := make(map[string]bool)
		for _, s := range b.sets() {
			want[b.ruleComment(s)] = true
		}
		for _, r := range rules {
			comment, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			if !strings.HasPrefix(comment, ruleTag) {
				continue // someone else's rule: leave it
			}
			if want[comment] && !have[comment] {
				have[comment] = true
				continue
			}
			if err := c.DelRule(r); err != nil {
				return fmt.Errorf("removing stale rule %q: %w", comment, err)
			}
		}
		for _, s := range b.sets() {
			if !have[b.ruleComment(s)] {
				c.AddRule(b.rule(ch, s))
			}
		}
	}
	if err := c.Flush(); err != nil {
		return kernelErr(fmt.Sprintf("adding rules to table inet %s", b.table.Name), err)
	}
	b.log.Info("nftables ready", "table", "inet "+b.table.Name, "hooks", strings.Join(b.opts.Hooks, ","), "verdict", b.opts.Verdict)
	return nil
}

// setFor returns the set a normalized prefix belongs in.
func (b *Nftables) setFor(p netip.Prefix) *nftables.Set {
	switch {
	case p.Addr().Is4() && isHost(p):
		return b.addr4
	case p.Addr().Is4():
		return b.net4
	case isHost(p):
		return b.addr6
	default:
		return b.net6
	}
}

// elems encodes p as set elements: one key for an address, a start and an
// end (first address after the prefix) for an interval.
func elems(s *nftables.Set, p netip.Prefix, ttl time.Duration) []nftables.SetElement {
	return appendElems(nil, nil, s, p, ttl)
}

// appendElems appends p's elements (see elems) to dst, their keys carved out
// of the spare capacity of *keys when it has room (one allocation for a whole
// batch instead of one per key).
func appendElems(dst []nftables.SetElement, keys *[]byte, s *nftables.Set, p netip.Prefix, ttl time.Duration) []nftables.SetElement {
	key := func(a netip.Addr) []byte {
		if keys == nil || cap(*keys)-len(*keys) < 16 {
			return a.AsSlice()
		}
		n := len(*keys)
		if a.Is4() {
			b := a.As4()
			*keys = append(*keys, b[:]...)
		} else {
			b := a.As16()
			*keys = append(*keys, b[:]...)
		}
		return (*keys)[n:len(*keys):len(*keys)]
	}
	dst = append(dst, nftables.SetElement{Key: key(p.Addr()), Timeout: ttl})
	if !s.Interval {
		return dst
	}
	end := lastAddr(p).Next()
	if !end.IsValid() { // the prefix reaches the top of the address space
		return dst
	}
	return append(dst, nftables.SetElement{Key: key(end), IntervalEnd: true})
}

// kernelTTL turns a TTL into an element timeout: 0 stays 0 (no timeout),
// anything else is at least the kernel's 1 ms resolution.
func kernelTTL(ttl time.Duration) (time.Duration, error) {
	switch {
	case ttl < 0:
		return 0, fmt.Errorf("negative ttl %s", ttl)
	case ttl == 0:
		return 0, nil
	case ttl < time.Millisecond:
		return time.Millisecond, nil
	}
	return ttl.Truncate(time.Millisecond), nil
}

// batch collects element changes per set and sends them in one transaction.
type batch struct {
	adds, dels map[*nftables.Set][]nftables.SetElement
	first      string // the first prefix added, for errors
	n          int    // prefixes added
}

func newBatch() *batch {
	return &batch{adds: map[*nftables.Set][]nftables.SetElement{}, dels: map[*nftables.Set][]nftables.SetElement{}}
}

// queue hands the batch to the connection, deletions first, in messages of
// at most elemsPerMsg elements.
func (bt *batch) queue(c *nftables.Conn, sets []*nftables.Set) error {
	for _, m := range []struct {
		elems map[*nftables.Set][]nftables.SetElement
		f     func(*nftables.Set, []nftables.SetElement) error
	}{{bt.dels, c.SetDeleteElements}, {bt.adds, c.SetAddElements}} {
		for _, s := range sets {
			es := m.elems[s]
			for len(es) > 0 {
				n := min(len(es), elemsPerMsg)
				if s.Interval && n%2 == 1 && n < len(es) && es[n].IntervalEnd {
					n++ // keep a start and its end in one message
				}
				if err := m.f(s, es[:n]); err != nil {
					return fmt.Errorf("encoding elements of set %s: %w", s.Name, err)
				}
				es = es[n:]
			}
		}
	}
	return nil
}

func setNames(m map[*nftables.Set][]nftables.SetElement) string {
	var names []string
	for s, es := range m {
		if len(es) > 0 {
			names = append(names, s.Name)
		}
	}
	sort.Strings(names)
	if len(names) == 1 {
		return "set " + names[0]
	}
	return "sets " + strings.Join(names, ", ")
}

// Ban adds entries with their TTL as the element timeout (0: no timeout) in
// one transaction (split beyond 200,000 entries). Banning again refreshes the
// timeout. A prefix inside an already banned prefix is skipped; a prefix
// that contains banned prefixes replaces them (interval sets cannot overlap).
func (b *Nftables) Ban(ctx context.Context, entries []Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	// Normalize, deduplicate (the last entry for a prefix wins).
	at := make(map[netip.Prefix]int, len(entries))
	bans := make([]Entry, 0, len(entries))
	for _, e := range entries {
		p, err := normalize(e.Prefix)
		if err != nil {
			return fmt.Errorf("banning: %w", err)
		}
		ttl, err := kernelTTL(e.TTL)
		if err != nil {
			return fmt.Errorf("banning %s: %w", show(p), err)
		}
		if i, ok := at[p]; ok {
			bans[i].TTL = ttl
			continue
		}
		at[p] = len(bans)
		bans = append(bans, Entry{Prefix: p, TTL: ttl})
	}
	order := make([]netip.Prefix, len(bans))
	for i, e := range bans {
		order[i] = e.Prefix
	}

	b.mu.Lock()
	defer b.mu.Unlock()

	nets, err := b.netsToReplace(order)
	if err != nil {
		return err
	}
	bt := newBatch()
	flush := func() error {
		if bt.n == 0 {
			return nil
		}
		if err := bt.queue(b.conn, b.sets()); err != nil {
			return err
		}
		if err := b.conn.Flush(); err != nil {
			return kernelErr(fmt.Sprintf("adding %s to %s", describeN(bt.first, bt.n), setNames(bt.adds)), err)
		}
		bt = newBatch()
		return nil
	}
	for _, q := range nets.remove {
		s := b.setFor(q)
		bt.dels[s] = append(bt.dels[s], elems(s, q, 0)...)
	}
	// Size the element lists and one buffer for all keys up front, rather
	// than growing the lists and allocating each key (and collecting
	// garbage) 100k times over for a large load.
	size := map[*nftables.Set]int{}
	nkeys := 0
	for _, e := range bans[:min(len(bans), elemsPerTxn)] {
		p := e.Prefix
		s := b.setFor(p)
		k := 1
		if s.Interval {
			k = 2
		}
		size[s] += k
		nkeys += k * p.Addr().BitLen() / 8
	}
	for s, n := range size {
		bt.adds[s] = make([]nftables.SetElement, 0, n)
	}
	keys := make([]byte, 0, nkeys)
	for _, e := range bans {
		p := e.Prefix
		if len(nets.skip) > 0 && nets.skip[p] {
			b.log.Debug("prefix already covered by a banned prefix", "addr", show(p))
			continue
		}
		s := b.setFor(p)
		bt.adds[s] = appendElems(bt.adds[s], &keys, s, p, e.TTL)
		if bt.n == 0 {
			bt.first = show(p)
		}
		bt.n++
		if bt.n == elemsPerTxn {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

type netPlan struct {
	skip   map[netip.Prefix]bool // new prefixes inside another banned one
	remove []netip.Prefix        // banned prefixes inside a new one
}

// netsToReplace works out, for the prefixes of a Ban, which to skip and which
// existing intervals to remove so that no two intervals overlap.
func (b *Nftables) netsToReplace(order []netip.Prefix) (netPlan, error) {
	plan := netPlan{skip: map[netip.Prefix]bool{}}
	var news []netip.Prefix
	for _, p := range order {
		if !isHost(p) {
			news = append(news, p)
		}
	}
	if len(news) == 0 {
		return plan, nil
	}
	var existing []netip.Prefix
	for _, s := range []*nftables.Set{b.net4, b.net6} {
		es, err := b.readSet(s)
		if err != nil {
			return plan, err
		}
		for _, e := range es {
			existing = append(existing, e.Prefix)
		}
	}
	// Widest first, so a narrower new prefix sees a wider new one.
	sort.SliceStable(news, func(i, j int) bool { return news[i].Bits() < news[j].Bits() })
	var kept []netip.Prefix
	for _, p := range news {
		covered := false
		for _, q := range append(existing, kept...) {
			if q != p && covers(q, p) {
				covered = true
				break
			}
		}
		if covered {
			plan.skip[p] = true
			continue
		}
		kept = append(kept, p)
	}
	for _, q := range existing {
		for _, p := range kept {
			if q != p && covers(p, q) {
				plan.remove = append(plan.remove, q)
				break
			}
		}
	}
	return plan, nil
}

// Unban removes prefixes in one transaction. A prefix that is not banned is
// ignored: single addresses are added and deleted in the same transaction
// (a no-op for the kernel when absent); prefixes are checked against the
// interval sets first.
func (b *Nftables) Unban(ctx context.Context, prefixes []netip.Prefix) error {
	ps, err := unbanList(ctx, prefixes)
	if err != nil || len(ps) == 0 {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		if err = b.unban(ps); err == nil || !errors.Is(err, unix.ENOENT) {
			return err
		}
		// An interval expired between reading and deleting: read again.
	}
	return err
}

func (b *Nftables) unban(ps []netip.Prefix) error {
	present := map[netip.Prefix]bool{}
	for _, p := range ps {
		if !isHost(p) {
			for _, s := range []*nftables.Set{b.net4, b.net6} {
				es, err := b.readSet(s)
				if err != nil {
					return err
				}
				for _, e := range es {
					present[e.Prefix] = true
				}
			}
			break
		}
	}
	bt := newBatch()
	var names []string
	seen := map[netip.Prefix]bool{}
	for _, p := range ps {
		if seen[p] {
			continue
		}
		seen[p] = true
		s := b.setFor(p)
		if isHost(p) {
			bt.adds[s] = append(bt.adds[s], elems(s, p, 0)...)
		} else if !present[p] {
			continue
		}
		bt.dels[s] = append(bt.dels[s], elems(s, p, 0)...)
		names = append(names, show(p))
	}
	if len(names) == 0 {
		return nil
	}
	// Adds (of absent addresses) must come before the deletes.
	for _, s := range b.sets() {
		for es := bt.adds[s]; len(es) > 0; {
			n := min(len(es), elemsPerMsg)
			if err := b.conn.SetAddElements(s, es[:n]); err != nil {
				return err
			}
			es = es[n:]
		}
	}
	for _, s := range b.sets() {
		for es := bt.dels[s]; len(es) > 0; {
			n := min(len(es), elemsPerMsg)
			if s.Interval && n%2 == 1 && n < len(es) && es[n].IntervalEnd {
				n++
			}
			if err := b.conn.SetDeleteElements(s, es[:n]); err != nil {
				return err
			}
			es = es[n:]
		}
	}
	if err := b.conn.Flush(); err != nil {
		return kernelErr(fmt.Sprintf("removing %s from %s", describe(names), setNames(bt.dels)), err)
	}
	return nil
}

// List returns every element of band's sets with the time left before the
// kernel expires it (0 for an element without timeout).
func (b *Nftables) List(ctx context.Context) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Entry
	for _, s := range b.sets() {
		es, err := b.readSet(s)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	return out, nil
}

// readSet reads one set's elements; for an interval set it pairs each start
// with the end that follows it.
func (b *Nftables) readSet(s *nftables.Set) ([]Entry, error) {
	raw, err := b.conn.GetSetElements(s)
	if err != nil {
		return nil, kernelErr(fmt.Sprintf("listing set %s", s.Name), err)
	}
	type el struct {
		addr netip.Addr
		end  bool
		ttl  time.Duration
	}
	els := make([]el, 0, len(raw))
	for _, e := range raw {
		a, ok := netip.AddrFromSlice(e.Key)
		if !ok {
			return nil, fmt.Errorf("listing set %s: element key of %d bytes", s.Name, len(e.Key))
		}
		els = append(els, el{addr: a, end: e.IntervalEnd, ttl: e.Expires})
	}
	out := make([]Entry, 0, len(els))
	if !s.Interval {
		for _, e := range els {
			out = append(out, Entry{Prefix: netip.PrefixFrom(e.addr, e.addr.BitLen()), TTL: e.ttl})
		}
		return out, nil
	}
	sort.Slice(els, func(i, j int) bool {
		if c := els[i].addr.Compare(els[j].addr); c != 0 {
			return c < 0
		}
		return els[i].end && !els[j].end // an end sorts before a start at the same key
	})
	for i, e := range els {
		if e.end {
			continue
		}
		last := netip.IPv4Unspecified()
		if e.addr.Is6() {
			last = netip.IPv6Unspecified()
		}
		last = lastAddr(netip.PrefixFrom(last, 0)) // all ones: open-ended interval
		if i+1 < len(els) && els[i+1].end {
			last = els[i+1].addr.Prev()
		}
		p, ok := rangePrefix(e.addr, last)
		if !ok {
			b.log.Warn("interval in set is not a prefix; ignored", "set", s.Name, "first", e.addr.String(), "last", last.String())
			continue
		}
		out = append(out, Entry{Prefix: p, TTL: e.ttl})
	}
	return out, nil
}

// Close releases the netlink socket; the kernel keeps the bans.
func (b *Nftables) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return errors.Join(b.conn.CloseLasting(), b.closeN())
}

package firewall

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// recorder is a netlink "kernel" that records every request and answers with
// nothing (no tables, no rules, no set elements) or with err for batches.
type recorder struct {
	sends    [][]netlink.Message
	batchErr error
}

func (r *recorder) dial(req []netlink.Message) ([]netlink.Message, error) {
	if len(req) == 0 {
		return nil, nil
	}
	r.sends = append(r.sends, req)
	if r.batchErr != nil && req[0].Header.Type == netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN) {
		return nil, r.batchErr
	}
	return nil, nil
}

// batches returns the requests sent as nfnetlink batches, without their
// BEGIN and END markers.
func (r *recorder) batches() [][]netlink.Message {
	var out [][]netlink.Message
	for _, req := range r.sends {
		if len(req) >= 2 && req[0].Header.Type == netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN) &&
			req[len(req)-1].Header.Type == netlink.HeaderType(unix.NFNL_MSG_BATCH_END) {
			out = append(out, req[1:len(req)-1])
		}
	}
	return out
}

func msgType(m netlink.Message) int { return int(m.Header.Type & 0xff) }

func typesOf(ms []netlink.Message) []int {
	var ts []int
	for _, m := range ms {
		ts = append(ts, msgType(m))
	}
	return ts
}

// attrs decodes a message's attributes (after the nfgenmsg header) by type.
func attrs(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		t.Fatal(err)
	}
	m := map[uint16][]byte{}
	for ad.Next() {
		m[ad.Type()] = ad.Bytes()
	}
	if err := ad.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func list(t *testing.T, b []byte) [][]byte {
	t.Helper()
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for ad.Next() {
		out = append(out, ad.Bytes())
	}
	return out
}

func cstr(b []byte) string { return strings.TrimRight(string(b), "\x00") }

func newRecorded(t *testing.T, o Options) (*Nftables, *recorder) {
	t.Helper()
	o, err := o.withDefaults("nftables")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	b, err := newNftablesDial(slog.New(slog.DiscardHandler), o, rec.dial)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, rec
}

func TestNftablesSetupMessages(t *testing.T) {
	b, rec := newRecorded(t, Options{Hooks: []string{"input", "forward"}})
	if err := b.Setup(context.Background()); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	bs := rec.batches()
	if len(bs) != 2 {
		t.Fatalf("got %d batches, want 2 (objects, then rules)", len(bs))
	}
	wantTypes := []int{unix.NFT_MSG_NEWTABLE, unix.NFT_MSG_NEWSET, unix.NFT_MSG_NEWSET, unix.NFT_MSG_NEWSET, unix.NFT_MSG_NEWSET, unix.NFT_MSG_NEWCHAIN, unix.NFT_MSG_NEWCHAIN}
	if got := typesOf(bs[0]); !slices.Equal(got, wantTypes) {
		t.Fatalf("first batch types %v, want %v", got, wantTypes)
	}
	for _, m := range bs[0] {
		if m.Header.Flags&netlink.Excl != 0 {
			t.Errorf("message type %d has NLM_F_EXCL: an existing object would be an error, want adoption", msgType(m))
		}
		if m.Data[0] != unix.NFPROTO_INET {
			t.Errorf("message type %d family %d, want inet", msgType(m), m.Data[0])
		}
	}
	if a := attrs(t, bs[0][0].Data[4:]); cstr(a[unix.NFTA_TABLE_NAME]) != "band" {
		t.Errorf("table %q, want band", a[unix.NFTA_TABLE_NAME])
	}
	wantSets := []struct {
		name     string
		keyLen   uint32
		interval bool
	}{{"band4", 4, false}, {"band4net", 4, true}, {"band6", 16, false}, {"band6net", 16, true}}
	for i, w := range wantSets {
		a := attrs(t, bs[0][1+i].Data[4:])
		flags := binary.BigEndian.Uint32(a[unix.NFTA_SET_FLAGS])
		if got := cstr(a[unix.NFTA_SET_NAME]); got != w.name {
			t.Errorf("set %d name %q, want %q", i, got, w.name)
		}
		if flags&unix.NFT_SET_TIMEOUT == 0 {
			t.Errorf("set %s flags %#x lack timeout", w.name, flags)
		}
		if got := flags&unix.NFT_SET_INTERVAL != 0; got != w.interval {
			t.Errorf("set %s interval %v, want %v", w.name, got, w.interval)
		}
		if got := binary.BigEndian.Uint32(a[unix.NFTA_SET_KEY_LEN]); got != w.keyLen {
			t.Errorf("set %s key length %d, want %d", w.name, got, w.keyLen)
		}
	}
	for i, w := range []struct {
		name string
		hook uint32
	}{{"band", unix.NF_INET_LOCAL_IN}, {"band-forward", unix.NF_INET_FORWARD}} {
		a := attrs(t, bs[0][5+i].Data[4:])
		h := attrs(t, a[unix.NFTA_CHAIN_HOOK])
		if got := cstr(a[unix.NFTA_CHAIN_NAME]); got != w.name {
			t.Errorf("chain name %q, want %q", got, w.name)
		}
		if got := binary.BigEndian.Uint32(h[unix.NFTA_HOOK_HOOKNUM]); got != w.hook {
			t.Errorf("chain %s hook %d, want %d", w.name, got, w.hook)
		}
		if got := int32(binary.BigEndian.Uint32(h[unix.NFTA_HOOK_PRIORITY])); got != -10 {
			t.Errorf("chain %s priority %d, want -10 (filter - 10)", w.name, got)
		}
		if got := binary.BigEndian.Uint32(a[unix.NFTA_CHAIN_POLICY]); got != 1 { // NF_ACCEPT
			t.Errorf("chain %s policy %d, want accept", w.name, got)
		}
	}
	var comments []string
	for _, m := range bs[1] {
		if msgType(m) != unix.NFT_MSG_NEWRULE {
			t.Fatalf("second batch has type %d, want only NEWRULE", msgType(m))
		}
		a := attrs(t, m.Data[4:])
		c, _ := userdata.GetString(a[unix.NFTA_RULE_USERDATA], userdata.TypeComment)
		comments = append(comments, cstr(a[unix.NFTA_RULE_CHAIN])+" "+c)
	}
	want := []string{
		"band band:band4:drop", "band band:band4net:drop", "band band:band6:drop", "band band:band6net:drop",
		"band-forward band:band4:drop", "band-forward band:band4net:drop", "band-forward band:band6:drop", "band-forward band:band6net:drop",
	}
	if !slices.Equal(comments, want) {
		t.Errorf("rules %q, want %q", comments, want)
	}
}

type sentElem struct {
	set     string
	key     netip.Addr
	end     bool
	timeout time.Duration
}

func (e sentElem) String() string {
	s := fmt.Sprintf("%s %s", e.set, e.key)
	if e.end {
		s += " end"
	}
	if e.timeout > 0 {
		s += " timeout " + e.timeout.String()
	}
	return s
}

func elemsOf(t *testing.T, m netlink.Message) []sentElem {
	t.Helper()
	a := attrs(t, m.Data[4:])
	set := cstr(a[unix.NFTA_SET_ELEM_LIST_SET])
	var out []sentElem
	for _, raw := range list(t, a[unix.NFTA_SET_ELEM_LIST_ELEMENTS]) {
		ea := attrs(t, raw)
		key := attrs(t, ea[unix.NFTA_SET_ELEM_KEY])[unix.NFTA_DATA_VALUE]
		addr, _ := netip.AddrFromSlice(key)
		e := sentElem{set: set, key: addr}
		if f, ok := ea[unix.NFTA_SET_ELEM_FLAGS]; ok {
			e.end = binary.BigEndian.Uint32(f)&unix.NFT_SET_ELEM_INTERVAL_END != 0
		}
		if to, ok := ea[unix.NFTA_SET_ELEM_TIMEOUT]; ok {
			e.timeout = time.Duration(binary.BigEndian.Uint64(to)) * time.Millisecond
		}
		out = append(out, e)
	}
	return out
}

func TestNftablesBanOneBatchWithTimeouts(t *testing.T) {
	b, rec := newRecorded(t, Options{})
	err := b.Ban(context.Background(), []Entry{
		{Prefix: netip.MustParsePrefix("198.51.100.7/32"), TTL: time.Hour},
		{Prefix: netip.MustParsePrefix("198.51.100.8/32"), TTL: 10 * time.Minute},
		{Prefix: netip.MustParsePrefix("::ffff:192.0.2.9/128"), TTL: 90 * time.Second},
		{Prefix: netip.MustParsePrefix("203.0.113.77/24"), TTL: 24 * time.Hour},
		{Prefix: netip.MustParsePrefix("2001:db8::7/128"), TTL: 2 * time.Second},
		{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), TTL: 1500 * time.Microsecond},
	})
	if err != nil {
		t.Fatalf("Ban: %v", err)
	}
	bs := rec.batches()
	if len(bs) != 1 {
		t.Fatalf("Ban sent %d batches, want 1", len(bs))
	}
	var got []string
	for _, m := range bs[0] {
		if msgType(m) != unix.NFT_MSG_NEWSETELEM {
			t.Fatalf("batch has message type %d, want only NEWSETELEM", msgType(m))
		}
		if m.Header.Flags&netlink.Excl != 0 {
			t.Errorf("NEWSETELEM with NLM_F_EXCL: banning again would fail, want a timeout refresh")
		}
		for _, e := range elemsOf(t, m) {
			got = append(got, e.String())
		}
	}
	want := []string{
		"band4 198.51.100.7 timeout 1h0m0s",
		"band4 198.51.100.8 timeout 10m0s",
		"band4 192.0.2.9 timeout 1m30s",
		"band4net 203.0.113.0 timeout 24h0m0s",
		"band4net 203.0.114.0 end",
		"band6 2001:db8::7 timeout 2s",
		"band6net 2001:db8:1:: timeout 1ms",
		"band6net 2001:db8:2:: end",
	}
	if !slices.Equal(got, want) {
		t.Errorf("elements sent:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestNftablesBanSplitsMessagesNotTransactions(t *testing.T) {
	b, rec := newRecorded(t, Options{})
	var es []Entry
	for i := range 2500 {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
		es = append(es, Entry{Prefix: netip.PrefixFrom(a, 128), TTL: time.Hour})
	}
	if err := b.Ban(context.Background(), es); err != nil {
		t.Fatalf("Ban: %v", err)
	}
	bs := rec.batches()
	if len(bs) != 1 || len(bs[0]) != 3 {
		t.Fatalf("got %d batches (first with %d messages), want 1 batch of 3 NEWSETELEM", len(bs), len(bs[0]))
	}
	n := 0
	for _, m := range bs[0] {
		n += len(elemsOf(t, m))
	}
	if n != 2500 {
		t.Errorf("elements sent %d, want 2500", n)
	}
}

func TestNftablesUnbanAddsThenDeletes(t *testing.T) {
	b, rec := newRecorded(t, Options{})
	if err := b.Unban(context.Background(), []netip.Prefix{netip.MustParsePrefix("198.51.100.7/32"), netip.MustParsePrefix("198.51.100.0/24")}); err != nil {
		t.Fatalf("Unban: %v", err)
	}
	bs := rec.batches()
	if len(bs) != 1 {
		t.Fatalf("got %d batches, want 1", len(bs))
	}
	// The prefix is not in the (empty) interval set, so only the address is
	// touched: added then deleted, which is a no-op if it was not banned.
	if got, want := typesOf(bs[0]), []int{unix.NFT_MSG_NEWSETELEM, unix.NFT_MSG_DELSETELEM}; !slices.Equal(got, want) {
		t.Errorf("batch types %v, want %v", got, want)
	}
}

func TestNftablesErrorNamesWhatAndHints(t *testing.T) {
	b, rec := newRecorded(t, Options{})
	rec.batchErr = syscall.EPERM
	err := b.Ban(context.Background(), []Entry{{Prefix: netip.MustParsePrefix("198.51.100.7/32"), TTL: time.Minute}})
	if err == nil {
		t.Fatal("Ban: nil error, want EPERM")
	}
	if !errors.Is(err, syscall.EPERM) {
		t.Errorf("error %v does not wrap EPERM", err)
	}
	for _, want := range []string{"adding 198.51.100.7 to set band4: ", "operation not permitted", "CAP_NET_ADMIN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

package firewall

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/band-project/band/internal/netnstest"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TestIPSetEncode decodes a message ipsetConn builds and checks every
// attribute the kernel reads (ip_set_core.c ip_set_ad, hash:net uadt),
// with the flags it checks: nested containers, network byte order.
func TestIPSetEncode(t *testing.T) {
	ic := &ipsetConn{}
	ms := []ipsetMember{
		{p: netip.MustParsePrefix("2001:db8::7/128"), timeout: 3600},
		{p: netip.MustParsePrefix("2001:db8:1::/48"), timeout: 0},
	}
	b := ic.encode(ipsetCmdAdd, "band6", ms)
	if b[0] != unix.NFPROTO_IPV6 || b[1] != unix.NFNETLINK_V0 {
		t.Fatalf("nfgenmsg %x, want family %d version 0", b[:4], unix.NFPROTO_IPV6)
	}
	ad, err := netlink.NewAttributeDecoder(b[4:])
	if err != nil {
		t.Fatal(err)
	}
	flags := func(d *netlink.AttributeDecoder, want uint16) {
		t.Helper()
		if got := d.TypeFlags() & (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER); got != want {
			t.Errorf("attribute %d: flags %#x, want %#x", d.Type(), got, want)
		}
	}
	var got, top []string
	for ad.Next() {
		top = append(top, fmt.Sprint(ad.Type()))
		switch ad.Type() {
		case ipsetAttrProtocol:
			if v := ad.Uint8(); v != ipsetProtocol {
				t.Errorf("protocol %d, want %d", v, ipsetProtocol)
			}
		case ipsetAttrSetname:
			if v := ad.Bytes(); string(v) != "band6\x00" {
				t.Errorf("set name %q, want band6 NUL-terminated", v)
			}
		case ipsetAttrLineno:
		case ipsetAttrADT:
			flags(ad, unix.NLA_F_NESTED)
			ad.Nested(func(adt *netlink.AttributeDecoder) error {
				for adt.Next() {
					flags(adt, unix.NLA_F_NESTED)
					var ip netip.Addr
					var cidr uint8
					var timeout, lineno uint32
					adt.Nested(func(d *netlink.AttributeDecoder) error {
						for d.Next() {
							switch d.Type() {
							case ipsetAttrIP:
								flags(d, unix.NLA_F_NESTED)
								d.Nested(func(a *netlink.AttributeDecoder) error {
									for a.Next() {
										flags(a, unix.NLA_F_NET_BYTEORDER)
										ip, _ = netip.AddrFromSlice(a.Bytes())
									}
									return nil
								})
							case ipsetAttrCIDR:
								cidr = d.Uint8()
							case ipsetAttrTimeout:
								flags(d, unix.NLA_F_NET_BYTEORDER)
								timeout = binary.BigEndian.Uint32(d.Bytes())
							case ipsetAttrLineno:
								lineno = d.Uint32()
							default:
								t.Errorf("DATA holds attribute %d", d.Type())
							}
						}
						return nil
					})
					got = append(got, fmt.Sprintf("%d:%s timeout %d", lineno, netip.PrefixFrom(ip, int(cidr)), timeout))
				}
				return nil
			})
		default:
			t.Errorf("unexpected attribute %d", ad.Type())
		}
	}
	if err := ad.Err(); err != nil {
		t.Fatal(err)
	}
	if want := "1 2 9 8"; strings.Join(top, " ") != want {
		t.Errorf("attributes %s, want %s (protocol, set name, line, ADT)", strings.Join(top, " "), want)
	}
	want := []string{"1:2001:db8::7/128 timeout 3600", "2:2001:db8:1::/48 timeout 0"}
	if !slices.Equal(got, want) {
		t.Errorf("members %q, want %q", got, want)
	}
}

// TestSystemIPSetMissingSet checks that a Ban into sets that do not exist
// fails and says so, naming the set.
func TestSystemIPSetMissingSet(t *testing.T) {
	requireBackend(t, "iptables")
	ns := netnstest.New(t)
	b, err := New(testLogger(t), Options{Backend: "iptables", NetNS: ns.Path(), Set4: "nosuch4"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Ban(context.Background(), []Entry{{Prefix: netip.MustParsePrefix("198.51.100.7/32"), TTL: time.Hour}})
	if err == nil || !strings.Contains(err.Error(), "set not found") || !strings.Contains(err.Error(), "nosuch4") {
		t.Errorf("Ban into a missing set: %v, want an error naming nosuch4 and saying it is not found", err)
	}
}

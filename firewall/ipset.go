package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The parts of the ipset netlink protocol (linux/netfilter/ipset/ip_set.h)
// that adding and deleting members needs.
const (
	ipsetProtocol = 7

	ipsetCmdAdd = 9
	ipsetCmdDel = 10

	ipsetAttrProtocol = 1 // command level
	ipsetAttrSetname  = 2
	ipsetAttrData     = 7
	ipsetAttrADT      = 8
	ipsetAttrLineno   = 9

	ipsetAttrIP      = 1 // inside ipsetAttrData
	ipsetAttrCIDR    = 3
	ipsetAttrTimeout = 6

	ipsetAttrIPv4 = 1 // inside ipsetAttrIP
	ipsetAttrIPv6 = 2

	// ipsetPerMsg members fit one message: the ADT attribute that holds
	// them is limited to 64 KiB, and an IPv6 member takes 52 bytes.
	ipsetPerMsg = 1000
)

// ipsetErrors name the kernel's ipset error numbers a Ban or Unban can meet.
var ipsetErrors = map[unix.Errno]string{
	4097: "ipset protocol error",
	4102: "set type mismatch",
	4104: "invalid prefix length",
	4106: "invalid address family",
	4107: "set without timeout support",
	4109: "invalid IPv4 address",
	4110: "invalid IPv6 address",
	4352: "set is full (maxelem)",
	4353: "element not valid for the set",
}

// ipsetMember is one address or prefix with its timeout in seconds (0: none).
type ipsetMember struct {
	p       netip.Prefix
	timeout uint32
}

// ipsetConn adds and deletes ipset members over netlink, as
// `ipset restore -exist` does, without starting a process or writing text:
// one acknowledged message per ipsetPerMsg members. Adding a member that is
// there refreshes its timeout; deleting one that is not there is ignored
// (the -exist semantics: the messages do not carry NLM_F_EXCL).
type ipsetConn struct {
	c   *netlink.Conn
	buf []byte
}

// dialIPSet opens a netfilter netlink socket in the network namespace at
// netns (the current one when empty).
func dialIPSet(netns string) (*ipsetConn, error) {
	var cfg netlink.Config
	if netns != "" {
		fd, err := unix.Open(netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("opening netns %s: %w", netns, err)
		}
		defer unix.Close(fd)
		cfg.NetNS = fd
	}
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &cfg)
	if err != nil {
		return nil, fmt.Errorf("opening netfilter netlink socket: %w", err)
	}
	return &ipsetConn{c: c}, nil
}

func (ic *ipsetConn) Close() error { return ic.c.Close() }

// apply runs cmd (ipsetCmdAdd or ipsetCmdDel) for ms on set. On error, the
// members of the messages before the failing one have been applied.
func (ic *ipsetConn) apply(cmd uint16, set string, ms []ipsetMember) error {
	for len(ms) > 0 {
		n := min(len(ms), ipsetPerMsg)
		msg := netlink.Message{
			Header: netlink.Header{
				Type:  netlink.HeaderType(unix.NFNL_SUBSYS_IPSET<<8 | cmd),
				Flags: netlink.Request | netlink.Acknowledge,
			},
			Data: ic.encode(cmd, set, ms[:n]),
		}
		if _, err := ic.c.Execute(msg); err != nil {
			return ipsetErr(err)
		}
		ms = ms[n:]
	}
	return nil
}

// ipsetErr names an ipset error number the kernel returned.
func ipsetErr(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		if msg, ok := ipsetErrors[errno]; ok {
			return fmt.Errorf("%s: %w", msg, err)
		}
		if errno == unix.ENOENT {
			return fmt.Errorf("set not found: %w", err)
		}
	}
	return err
}

// encode writes the nfgenmsg header and the attributes of one message:
// protocol, set name, line number, and the members as an ADT list of DATA
// containers (IP, CIDR, TIMEOUT, LINENO each). The buffer is reused.
func (ic *ipsetConn) encode(cmd uint16, set string, ms []ipsetMember) []byte {
	b := ic.buf[:0]
	family := byte(unix.NFPROTO_IPV4)
	if len(ms) > 0 && ms[0].p.Addr().Is6() {
		family = unix.NFPROTO_IPV6
	}
	b = append(b, family, unix.NFNETLINK_V0, 0, 0)
	b = attr(b, ipsetAttrProtocol, []byte{ipsetProtocol})
	b = attr(b, ipsetAttrSetname, append([]byte(set), 0))
	b = attrU32(b, ipsetAttrLineno, 0, binary.NativeEndian)
	adt := len(b)
	b = attr(b, unix.NLA_F_NESTED|ipsetAttrADT, nil)
	for i, m := range ms {
		data := len(b)
		b = attr(b, unix.NLA_F_NESTED|ipsetAttrData, nil)
		ip := len(b)
		b = attr(b, unix.NLA_F_NESTED|ipsetAttrIP, nil)
		if a := m.p.Addr(); a.Is4() {
			v := a.As4()
			b = attr(b, unix.NLA_F_NET_BYTEORDER|ipsetAttrIPv4, v[:])
		} else {
			v := a.As16()
			b = attr(b, unix.NLA_F_NET_BYTEORDER|ipsetAttrIPv6, v[:])
		}
		b = closeAttr(b, ip)
		b = attr(b, ipsetAttrCIDR, []byte{byte(m.p.Bits())})
		if cmd == ipsetCmdAdd {
			b = attrU32(b, unix.NLA_F_NET_BYTEORDER|ipsetAttrTimeout, m.timeout, binary.BigEndian)
		}
		b = attrU32(b, ipsetAttrLineno, uint32(i+1), binary.NativeEndian)
		b = closeAttr(b, data)
	}
	b = closeAttr(b, adt)
	ic.buf = b
	return b
}

// attr appends a netlink attribute (header, data, padding to 4 bytes).
func attr(b []byte, typ uint16, data []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(unix.NLA_HDRLEN+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%unix.NLA_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

func attrU32(b []byte, typ uint16, v uint32, order binary.AppendByteOrder) []byte {
	var d [4]byte
	order.AppendUint32(d[:0], v)
	return attr(b, typ, d[:])
}

// closeAttr sets the length of the nested attribute that starts at off to
// cover everything appended since.
func closeAttr(b []byte, off int) []byte {
	binary.NativeEndian.PutUint16(b[off:], uint16(len(b)-off))
	return b
}

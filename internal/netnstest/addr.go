package netnstest

import (
	"context"
	"net/netip"
	"time"
)

// The links of a Pair: the server's end and the client's end of the veth.
const (
	ServerLink = "veth-s"
	ClientLink = "veth-c"
)

// AddAddr adds addresses in CIDR form ("198.51.100.3/24", "2001:db8::3/64")
// to the link dev inside n (IPv6 without DAD, so usable at once). It fails the
// test on error.
func (n *NS) AddAddr(dev string, cidrs ...string) {
	n.t.Helper()
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			n.t.Fatalf("netnstest: address %q: %v", c, err)
		}
		if p.Addr().Is6() {
			n.MustRun("ip", "-6", "addr", "add", c, "dev", dev, "nodad")
		} else {
			n.MustRun("ip", "addr", "add", c, "dev", dev)
		}
	}
}

// DialAs is Dial with local as the connection's source address: it opens a
// TCP connection from inside n to addr within timeout, closes it and returns
// the error, if any.
func (n *NS) DialAs(local netip.Addr, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := n.DialFrom(ctx, local, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// Package netnstest builds throw-away network namespaces for tests that program
// the kernel's firewall, so that nothing touches the host's own ruleset.
package netnstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// NS is a named network namespace (/run/netns/Name) that a test created and
// that is deleted when the test ends, pass or fail.
type NS struct {
	Name string
	t    testing.TB
}

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces and netfilter)")
	}
}

// RequireTool skips the test when a program is not on $PATH.
func RequireTool(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("needs %s on $PATH (apt-get install nftables iptables ipset iproute2)", n)
		}
	}
}

// New creates a fresh network namespace with its loopback up and registers its
// removal with t.Cleanup. It skips the test when not root.
func New(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, "ip")
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "band-test-" + hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("cannot create network namespace: %v: %s", err, out)
	}
	ns := &NS{Name: name, t: t}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("deleting netns %s: %v: %s", name, err, out)
		}
	})
	ns.MustRun("ip", "link", "set", "lo", "up")
	return ns
}

// Path is the namespace's bind mount, usable with firewall.Options.NetNS.
func (n *NS) Path() string { return "/run/netns/" + n.Name }

// Run runs a command inside the namespace (ip netns exec) and returns its
// combined output.
func (n *NS) Run(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// MustRun is Run that fails the test on error.
func (n *NS) MustRun(args ...string) string {
	n.t.Helper()
	out, err := n.Run(args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

// Do runs f on an OS thread switched into the namespace; sockets f creates
// and processes it starts belong to the namespace. The thread is switched
// back afterwards, or discarded if that fails.
func (n *NS) Do(f func() error) error {
	return Do(n.Path(), f)
}

// Do runs f on an OS thread switched into the network namespace at path.
func Do(path string, f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("getting current netns: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromPath(path)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening netns %s: %w", path, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering netns %s: %w", path, err)
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: it dies with the goroutine instead of
		// running other goroutines in the wrong namespace.
		return fmt.Errorf("leaving netns %s: %w", path, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// Pair is two namespaces joined by a veth pair: Server has 198.51.100.1 and
// 2001:db8::1, Client has 198.51.100.2 and 2001:db8::2 (IPv6 without DAD, so
// usable at once).
type Pair struct {
	Server, Client *NS
}

// NewPair builds the two namespaces and the link between them.
func NewPair(t testing.TB) *Pair {
	t.Helper()
	srv, cli := New(t), New(t)
	if out, err := exec.Command("ip", "link", "add", "veth-s", "netns", srv.Name, "type", "veth",
		"peer", "name", "veth-c", "netns", cli.Name).CombinedOutput(); err != nil {
		t.Skipf("cannot create veth pair (kernel without veth?): %v: %s", err, out)
	}
	for _, c := range []struct {
		ns  *NS
		dev string
		v4  string
		v6  string
	}{{srv, "veth-s", "198.51.100.1/24", "2001:db8::1/64"}, {cli, "veth-c", "198.51.100.2/24", "2001:db8::2/64"}} {
		c.ns.MustRun("ip", "addr", "add", c.v4, "dev", c.dev)
		c.ns.MustRun("ip", "-6", "addr", "add", c.v6, "dev", c.dev, "nodad")
		c.ns.MustRun("ip", "link", "set", c.dev, "up")
	}
	return &Pair{Server: srv, Client: cli}
}

// Listen starts a TCP server inside n on addr (e.g. "[::]:8080") that accepts
// and closes connections, until the test ends.
func (n *NS) Listen(addr string) net.Addr {
	n.t.Helper()
	var ln net.Listener
	if err := n.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		n.t.Fatalf("listening on %s in %s: %v", addr, n.Name, err)
	}
	n.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr()
}

// Dial opens a TCP connection from inside n to addr with a short timeout and
// closes it; it returns the error, if any.
func (n *NS) Dial(addr string, timeout time.Duration) error {
	return n.Do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

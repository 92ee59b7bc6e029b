package firewall

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

// ErrUnsupported is returned (wrapped) when a backend cannot run here: the
// kernel lacks nf_tables, or iptables/ipset are missing.
var ErrUnsupported = errors.New("firewall backend unsupported")

// Options select and name the kernel backend. Zero values take the defaults.
type Options struct {
	// Backend is "auto" (default), "nftables", "iptables" or "dryrun".
	// auto picks nftables when the kernel answers nf_tables netlink, else
	// iptables.
	Backend string
	// Table is the nftables table, family inet (default "band").
	Table string
	// Chain is the nftables base chain for the input hook (default "band";
	// the forward hook gets Chain+"-forward") or the iptables chain
	// (default "BAND").
	Chain string
	// Set4 and Set6 name the sets of banned IPv4 and IPv6 addresses
	// (default "band4", "band6"). nftables keeps prefixes in interval sets
	// named Set4+"net" and Set6+"net"; ipset keeps both in one hash:net set.
	Set4, Set6 string
	// Hooks are where banned sources are dropped: "input" (default) and/or
	// "forward".
	Hooks []string
	// Verdict is "drop" (default) or "reject".
	Verdict string
	// NetNS is the path of a network namespace to program instead of the
	// current one (e.g. /run/netns/NAME); used by tests.
	NetNS string
	// Now is the clock for the iptables fallback without ipset, where band
	// expires bans itself (time.Now when nil).
	Now func() time.Time
}

func (o Options) withDefaults(backend string) (Options, error) {
	if o.Table == "" {
		o.Table = "band"
	}
	if o.Chain == "" {
		o.Chain = "band"
		if backend == "iptables" {
			o.Chain = "BAND"
		}
	}
	if o.Set4 == "" {
		o.Set4 = "band4"
	}
	if o.Set6 == "" {
		o.Set6 = "band6"
	}
	if len(o.Hooks) == 0 {
		o.Hooks = []string{"input"}
	}
	for _, h := range o.Hooks {
		if h != "input" && h != "forward" {
			return o, fmt.Errorf("firewall hook %q: want \"input\" or \"forward\"", h)
		}
	}
	switch o.Verdict {
	case "":
		o.Verdict = "drop"
	case "drop", "reject":
	default:
		return o, fmt.Errorf("firewall verdict %q: want \"drop\" or \"reject\"", o.Verdict)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// New returns the backend that opts select. It never returns a non-nil
// Backend together with an error. The caller runs Setup.
func New(log *slog.Logger, opts Options) (Backend, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch strings.ToLower(opts.Backend) {
	case "", "auto":
		o, err := opts.withDefaults("nftables")
		if err != nil {
			return nil, err
		}
		if err := probeNftables(o); err == nil {
			return newNftables(log, o)
		} else {
			log.Info("nftables unavailable, using iptables", "err", err)
		}
		o, err = opts.withDefaults("iptables")
		if err != nil {
			return nil, err
		}
		b, err := newIPTables(log, o)
		if err != nil {
			return nil, fmt.Errorf("auto: neither nftables nor iptables usable: %w", err)
		}
		return b, nil
	case "nftables":
		o, err := opts.withDefaults("nftables")
		if err != nil {
			return nil, err
		}
		b, err := newNftables(log, o)
		if err != nil {
			return nil, err
		}
		return b, nil
	case "iptables":
		o, err := opts.withDefaults("iptables")
		if err != nil {
			return nil, err
		}
		b, err := newIPTables(log, o)
		if err != nil {
			return nil, err
		}
		return b, nil
	case "dryrun":
		o, err := opts.withDefaults("dryrun")
		if err != nil {
			return nil, err
		}
		return NewDryRun(log, o.Now), nil
	default:
		return nil, fmt.Errorf("firewall backend %q: want auto, nftables, iptables or dryrun", opts.Backend)
	}
}

// kernelErr wraps err with what was being done, and adds a hint when the
// kernel refused for lack of privilege.
func kernelErr(doing string, err error) error {
	if msg := err.Error(); errors.Is(err, os.ErrPermission) ||
		strings.Contains(msg, "ermission denied") || strings.Contains(msg, "not permitted") {
		return fmt.Errorf("%s: %w (run band as root or with CAP_NET_ADMIN)", doing, err)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// describe names the first prefix of a batch and how many more there are,
// for error messages: "198.51.100.7" or "198.51.100.7 and 41 more".
func describe(ps []string) string {
	if len(ps) == 0 {
		return "nothing"
	}
	return describeN(ps[0], len(ps))
}

// describeN is describe for a batch of n prefixes whose first is first.
func describeN(first string, n int) string {
	switch n {
	case 0:
		return "nothing"
	case 1:
		return first
	default:
		return fmt.Sprintf("%s and %d more", first, n-1)
	}
}

// Package config reads band's TOML configuration (band.toml plus jail.d/*.toml),
// merges it over the built-in jails and validates it, naming file, line and key
// in every error.
package config

import (
	"fmt"
	"time"
)

// Config is the whole merged configuration.
type Config struct {
	Daemon   Daemon           `toml:"daemon"`
	Firewall Firewall         `toml:"firewall"`
	Defaults Defaults         `toml:"defaults"`
	Sources  []Source         `toml:"source"`
	Jails    map[string]*Jail `toml:"jail"`

	// Files lists the files merged, in order ("<builtin>" and "<default>" for
	// the embedded ones; "<default>" is listed with a main file too, as the
	// source of the default [[source]] list until that file names its own).
	Files []string `toml:"-"`

	where map[string]pos // key path (joinKey) → where it was last set; see Where
}

// Daemon holds process-wide settings.
type Daemon struct {
	Socket      string `toml:"socket"`       // control socket, default /run/band/band.sock
	SocketGroup string `toml:"socket_group"` // group allowed to change state, default root
	StateDir    string `toml:"state_dir"`    // default /var/lib/band
	LogFormat   string `toml:"log_format"`   // "text" (default) or "json"
	LogLevel    string `toml:"log_level"`    // "debug", "info" (default), "warn", "error"
	MaxTracked  int    `toml:"max_tracked"`  // per jail cap on tracked clients/keys, default 100000
	Metrics     string `toml:"metrics"`      // Prometheus listen address, "" = off
	// HistoryMaxAge is how long each offender's past bans are remembered
	// (for escalation and recidive), default 30d.
	HistoryMaxAge Duration `toml:"history_max_age"`
}

// Firewall selects and names the kernel backend.
type Firewall struct {
	Backend string   `toml:"backend"` // auto (default) | nftables | iptables | dryrun
	Table   string   `toml:"table"`   // nftables table, default "band" (family inet)
	Chain   string   `toml:"chain"`   // nftables base chain / iptables chain, default "band" / "BAND"
	Set4    string   `toml:"set4"`    // IPv4 set name, default "band4"
	Set6    string   `toml:"set6"`    // IPv6 set name, default "band6"
	Hooks   []string `toml:"hooks"`   // "input" (default), "forward"
	Verdict string   `toml:"verdict"` // "drop" (default) or "reject"
}

// Defaults are inherited by every jail that does not set the key itself.
type Defaults struct {
	BanTime  Duration `toml:"bantime"`  // default 10m
	FindTime Duration `toml:"findtime"` // default 10m
	MaxRetry int      `toml:"maxretry"` // default 5
	IgnoreIP []string `toml:"ignoreip"` // addresses and CIDRs never banned (loopback and own addresses always)
	// TrustedProxies lists the reverse proxies (addresses and CIDRs) whose
	// X-Forwarded-For header names the client; added to each source's own.
	TrustedProxies []string `toml:"trusted_proxies"`

	// Repeat offenders (fail2ban's bantime.increment): each earlier ban of
	// the same address multiplies the ban time by BanTimeFactor, up to
	// BanTimeMax; BanTimeOverall counts earlier bans of every jail.
	BanTimeIncrement bool     `toml:"bantime_increment"` // default false
	BanTimeFactor    float64  `toml:"bantime_factor"`    // default 2
	BanTimeMax       Duration `toml:"bantime_max"`       // default 1w
	BanTimeOverall   bool     `toml:"bantime_overall"`   // default false
}

// Source is one log (path or glob) and the format its lines are in.
type Source struct {
	Name   string `toml:"name"`
	Path   string `toml:"path"`   // a path or a glob
	Format string `toml:"format"` // common | combined | vhost_combined | error | auto | a LogFormat string
	// TrustedProxies adds proxies for this log to [defaults] trusted_proxies.
	TrustedProxies []string `toml:"trusted_proxies"`
}

// Jail is one detection rule as configured. Keys left out take the value of
// the built-in jail of the same name, then of [defaults].
type Jail struct {
	Enabled bool     `toml:"enabled"`
	Kind    string   `toml:"kind"`    // "match" or "rate"
	Sources []string `toml:"sources"` // source names; empty = every source whose kind fits
	Comment string   `toml:"comment"` // what the jail catches, for humans

	BanTime  Duration `toml:"bantime"`
	FindTime Duration `toml:"findtime"`
	MaxRetry int      `toml:"maxretry"`
	IgnoreIP []string `toml:"ignoreip"`

	// Conditions, all of which must hold (an empty one always holds). Regex
	// lists match if any regex matches the field.
	Status      []int             `toml:"status"`      // final status in this list
	Method      []string          `toml:"method"`      // request method in this list
	Path        []string          `toml:"path"`        // regexes on the path (no query)
	PathPrefix  []string          `toml:"path_prefix"` // literal prefixes of the path
	PathSuffix  []string          `toml:"path_suffix"` // literal suffixes of the path, e.g. ".php"
	Query       []string          `toml:"query"`       // regexes on the query string
	UserAgent   []string          `toml:"user_agent"`  // regexes on the user agent
	AgentWords  []string          `toml:"agent_words"` // literal substrings of the user agent, matched as a set (case-insensitive)
	Message     []string          `toml:"message"`     // regexes on the error-log message
	ErrorCode   []string          `toml:"error_code"`  // AHnnnnn codes in this list
	Fields      map[string]string `toml:"fields"`      // other fields by name: field = regex
	Regex       []string          `toml:"regex"`       // raw-line regexes with <HOST>, for odd formats
	IgnoreRegex []string          `toml:"ignoreregex"` // a line matching any of these (whole line) is not counted
	// AnyFields holds when any of its fields matches its regex (one
	// condition, where Fields are one condition each).
	AnyFields map[string]string `toml:"any_fields"`

	// Distinct, on a match jail, counts a line only when this field's value
	// was not already counted for the client within findtime, e.g. "path".
	Distinct string `toml:"distinct"`
	// IPv6Prefix, when set (e.g. 64), counts and bans IPv6 clients by
	// their prefix of this length rather than by address.
	IPv6Prefix int `toml:"ipv6_prefix"`

	// Rate jails (mod_evasive-style): Threshold requests Per key within Window.
	Per       string   `toml:"per"`       // "page" (client+vhost+path), "site" (client+vhost), "client"
	Threshold int      `toml:"threshold"` // requests allowed within Window; one more bans
	Window    Duration `toml:"window"`    // sliding window length
	// Exclusions, for both kinds: requests left out of the count.
	ExcludePath   []string `toml:"exclude_path"`   // regexes: paths not counted
	ExcludeExt    []string `toml:"exclude_ext"`    // extensions not counted, e.g. ".css"
	ExcludeStatus []int    `toml:"exclude_status"` // statuses not counted, e.g. 304
}

// Duration is a time.Duration written as "10m", "1h", "2s" (also "1d", "1w").
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText parses "90s", "10m", "1h30m", "1d", "1w".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration the way it is read.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// ParseDuration is time.ParseDuration plus whole days ("d") and weeks ("w").
func ParseDuration(s string) (time.Duration, error) {
	if n := len(s); n > 1 && (s[n-1] == 'd' || s[n-1] == 'w') {
		var k int64
		if _, err := fmt.Sscanf(s[:n-1], "%d", &k); err == nil && fmt.Sprint(k) == s[:n-1] && k >= 0 {
			unit := 24 * time.Hour
			if s[n-1] == 'w' {
				unit *= 7
			}
			return time.Duration(k) * unit, nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (write e.g. \"90s\", \"10m\", \"1h\", \"1d\")", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return v, nil
}

package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/band-project/band/apachelog"
)

// Built-in defaults for keys no file sets.
const (
	DefaultSocket      = "/run/band/band.sock"
	DefaultSocketGroup = "root"
	DefaultStateDir    = "/var/lib/band"
	DefaultMaxTracked  = 100000
	DefaultBanTime     = 10 * time.Minute
	DefaultFindTime    = 10 * time.Minute
	DefaultMaxRetry    = 5
)

// Allowed values of the enumerated keys.
var (
	kinds      = []string{"match", "rate", "recidive"}
	pers       = []string{"page", "site", "client"}
	backends   = []string{"auto", "nftables", "iptables", "dryrun"}
	verdicts   = []string{"drop", "reject"}
	hooks      = []string{"input", "forward"}
	logFormats = []string{"text", "json"}
	logLevels  = []string{"debug", "info", "warn", "error"}
	formats    = []string{"common", "combined", "vhost_combined", "error", "auto"}
)

// hostTag is the placeholder a raw-line regex uses for the client address.
// The rules package compiles it (with a stricter pattern); this is only the
// check that the regex is well formed.
const hostTag = "<HOST>"

// hostPattern is what hostTag stands for in that check.
const hostPattern = `(?P<host>\S+)`

// setDefault stores v in *dst unless a file set the key.
func setDefault[T any](l *loader, dst *T, v T, key ...string) {
	if !l.defined[joinKey(key...)] {
		*dst = v
	}
}

func (l *loader) applyDefaults() {
	c := l.cfg
	d := &c.Daemon
	setDefault(l, &d.Socket, DefaultSocket, "daemon", "socket")
	setDefault(l, &d.SocketGroup, DefaultSocketGroup, "daemon", "socket_group")
	setDefault(l, &d.StateDir, DefaultStateDir, "daemon", "state_dir")
	setDefault(l, &d.LogFormat, "text", "daemon", "log_format")
	setDefault(l, &d.LogLevel, "info", "daemon", "log_level")
	setDefault(l, &d.MaxTracked, DefaultMaxTracked, "daemon", "max_tracked")
	setDefault(l, &d.HistoryMaxAge, Duration(30*24*time.Hour), "daemon", "history_max_age")
	f := &c.Firewall
	setDefault(l, &f.Backend, "auto", "firewall", "backend")
	setDefault(l, &f.Table, "band", "firewall", "table")
	setDefault(l, &f.Chain, "band", "firewall", "chain")
	setDefault(l, &f.Set4, "band4", "firewall", "set4")
	setDefault(l, &f.Set6, "band6", "firewall", "set6")
	setDefault(l, &f.Hooks, []string{"input"}, "firewall", "hooks")
	setDefault(l, &f.Verdict, "drop", "firewall", "verdict")
	df := &c.Defaults
	setDefault(l, &df.BanTime, Duration(DefaultBanTime), "defaults", "bantime")
	setDefault(l, &df.FindTime, Duration(DefaultFindTime), "defaults", "findtime")
	setDefault(l, &df.MaxRetry, DefaultMaxRetry, "defaults", "maxretry")
	setDefault(l, &df.BanTimeFactor, 2.0, "defaults", "bantime_factor")
	setDefault(l, &df.BanTimeMax, Duration(7*24*time.Hour), "defaults", "bantime_max")

	for name, j := range c.Jails {
		inherit := func(dst any, key string) {
			if l.defined[joinKey("jail", name, key)] {
				return
			}
			switch dst := dst.(type) {
			case *Duration:
				if key == "bantime" {
					*dst = df.BanTime
				} else {
					*dst = df.FindTime
				}
			case *int:
				*dst = df.MaxRetry
			}
			if p, ok := c.where[joinKey("defaults", key)]; ok {
				c.where[joinKey("jail", name, key)] = p
			}
		}
		inherit(&j.BanTime, "bantime")
		inherit(&j.FindTime, "findtime")
		inherit(&j.MaxRetry, "maxretry")
		l.ownIgnore[name] = j.IgnoreIP
		j.IgnoreIP = union(df.IgnoreIP, j.IgnoreIP)
		setDefault(l, &j.Kind, "match", "jail", name, "kind")
		if j.Kind == "rate" {
			setDefault(l, &j.Per, "page", "jail", name, "per")
		}
	}
}

// union returns a's items then b's not in a, without duplicates.
func union(a, b []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range slices.Concat(a, b) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// bad records a validation error at the position of key in the merged
// configuration.
func (l *loader) bad(key []string, format string, args ...any) {
	file, line := l.cfg.Where(key...)
	display := key
	// Drop a trailing list index from the displayed key; the line points at
	// the element.
	if n := len(key); n > 0 && isIndex(key[n-1]) && !(n == 2 && key[0] == "source") {
		display = key[:n-1]
	}
	l.errorf(file, line, display, format, args...)
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func itoa(i int) string { return fmt.Sprint(i) }

// oneOf checks an enumerated value.
func (l *loader) oneOf(key []string, v string, allowed []string) {
	if slices.Contains(allowed, v) {
		return
	}
	msg := fmt.Sprintf("must be one of %s, got %q", strings.Join(allowed, ", "), v)
	if s := suggest(v, allowed); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	l.bad(key, "%s", msg)
}

func (l *loader) validate() {
	c := l.cfg
	l.validateDaemon()
	l.validateFirewall()

	df := c.Defaults
	if df.BanTime <= 0 {
		l.bad([]string{"defaults", "bantime"}, "must be a positive duration, got %s", df.BanTime.D())
	}
	if df.FindTime <= 0 {
		l.bad([]string{"defaults", "findtime"}, "must be a positive duration, got %s", df.FindTime.D())
	}
	if df.MaxRetry <= 0 {
		l.bad([]string{"defaults", "maxretry"}, "must be a positive number of failures, got %d", df.MaxRetry)
	}
	l.ignoreIPs([]string{"defaults", "ignoreip"}, df.IgnoreIP)
	l.ignoreIPs([]string{"defaults", "trusted_proxies"}, df.TrustedProxies)

	if len(c.Sources) == 0 {
		l.errorf(c.Files[len(c.Files)-1], 0, []string{"source"}, "at least one [[source]] is needed")
	}
	sources := map[string]bool{}
	for i, s := range c.Sources {
		at := []string{"source", sourceLabel(s.Name, i)}
		sources[s.Name] = true
		if s.Name == "" {
			l.bad(append(at, "name"), "every source needs a name")
		}
		if s.Path == "" {
			l.bad(append(at, "path"), "every source needs a path (a file or a glob)")
		} else if _, err := filepath.Match(s.Path, ""); err != nil {
			l.bad(append(at, "path"), "bad glob %q: %v", s.Path, err)
		}
		if !slices.Contains(formats, s.Format) && !strings.Contains(s.Format, "%") {
			l.bad(append(at, "format"), "must be one of %s or a LogFormat string with %% directives, got %q",
				strings.Join(formats, ", "), s.Format)
		}
		l.ignoreIPs(append(at, "trusted_proxies"), s.TrustedProxies)
	}

	names := make([]string, 0, len(c.Jails))
	for name := range c.Jails {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		l.validateJail(name, c.Jails[name], sources)
	}
}

func (l *loader) validateDaemon() {
	d := l.cfg.Daemon
	k := func(s string) []string { return []string{"daemon", s} }
	if !filepath.IsAbs(d.Socket) {
		l.bad(k("socket"), "must be an absolute path, got %q", d.Socket)
	}
	if d.SocketGroup == "" {
		l.bad(k("socket_group"), "must name a group")
	}
	if !filepath.IsAbs(d.StateDir) {
		l.bad(k("state_dir"), "must be an absolute path, got %q", d.StateDir)
	}
	l.oneOf(k("log_format"), d.LogFormat, logFormats)
	l.oneOf(k("log_level"), d.LogLevel, logLevels)
	if d.MaxTracked <= 0 {
		l.bad(k("max_tracked"), "must be a positive number of keys, got %d", d.MaxTracked)
	}
	if d.Metrics != "" {
		if _, _, err := net.SplitHostPort(d.Metrics); err != nil {
			l.bad(k("metrics"), "must be a listen address like \"127.0.0.1:9591\" or empty, got %q", d.Metrics)
		}
	}
}

// nameRE is what the firewall accepts as a table, chain or set name
// (nftables and ipset both cap names at 31 bytes).
var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,30}$`)

func (l *loader) validateFirewall() {
	f := l.cfg.Firewall
	k := func(s string) []string { return []string{"firewall", s} }
	l.oneOf(k("backend"), f.Backend, backends)
	for key, v := range map[string]string{"table": f.Table, "chain": f.Chain, "set4": f.Set4, "set6": f.Set6} {
		if !nameRE.MatchString(v) {
			l.bad(k(key), "must be a letter then up to 30 letters, digits, '_', '.' or '-', got %q", v)
		}
	}
	if f.Set4 == f.Set6 && nameRE.MatchString(f.Set4) {
		l.bad(k("set6"), "must differ from set4 (%q)", f.Set4)
	}
	if len(f.Hooks) == 0 {
		l.bad(k("hooks"), "must list at least one of %s", strings.Join(hooks, ", "))
	}
	for i, h := range f.Hooks {
		l.oneOf(append(k("hooks"), itoa(i)), h, hooks)
	}
	l.oneOf(k("verdict"), f.Verdict, verdicts)
}

// ignoreIPs checks that every entry is an address or a CIDR prefix.
func (l *loader) ignoreIPs(key []string, list []string) {
	for i, s := range list {
		if _, err := netip.ParsePrefix(s); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(s); err == nil {
			continue
		}
		l.bad(append(slices.Clone(key), itoa(i)), "%q is not an address or CIDR prefix (e.g. \"192.0.2.7\", \"198.51.100.0/24\", \"2001:db8::/32\")", s)
	}
}

// jailNameRE is what a jail may be called: it shows in logs, metrics and
// firewall comments.
var jailNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

var errorCodeRE = regexp.MustCompile(`^AH[0-9]{5}$`)

func (l *loader) validateJail(name string, j *Jail, sources map[string]bool) {
	k := func(s ...string) []string { return append([]string{"jail", name}, s...) }
	// set reports whether a file set the key to a value that decoded;
	// missing reports whether no file tried to set it. A key that failed to
	// decode is neither, so that it is reported only once.
	set := func(key string) bool { return l.defined[joinKey(k(key)...)] }
	missing := func(key string) bool {
		return !l.defined[joinKey(k(key)...)] && !l.failed[joinKey(k(key)...)]
	}
	anyFailed := false
	for key := range l.failed {
		if strings.HasPrefix(key, joinKey(k()...)+"\x00") {
			anyFailed = true
		}
	}
	if !jailNameRE.MatchString(name) {
		l.bad(k(), "jail names are letters, digits, '_', '.' and '-', starting with a letter or digit")
	}
	l.oneOf(k("kind"), j.Kind, kinds)
	if j.Enabled {
		// Disabled jails may name sources this configuration lacks: the
		// built-in library names "access" and "error".
		for i, s := range j.Sources {
			if !sources[s] {
				l.bad(k("sources", itoa(i)), "unknown source %q (sources: %s)", s, strings.Join(l.sourceNames(), ", "))
			}
		}
	}
	if set("bantime") && j.BanTime <= 0 {
		l.bad(k("bantime"), "must be a positive duration, got %s", j.BanTime.D())
	}
	l.ignoreIPs(k("ignoreip"), l.ownIgnore[name])

	// Conditions.
	l.statuses(k("status"), j.Status)
	for i, m := range j.Method {
		if m == "" || strings.ToUpper(m) != m || strings.ContainsAny(m, " \t") {
			l.bad(k("method", itoa(i)), "must be an upper-case request method like \"POST\", got %q", m)
		}
	}
	l.regexes(k("path"), j.Path)
	l.literals(k("path_prefix"), j.PathPrefix)
	l.literals(k("path_suffix"), j.PathSuffix)
	l.regexes(k("query"), j.Query)
	l.regexes(k("user_agent"), j.UserAgent)
	l.literals(k("agent_words"), j.AgentWords)
	l.regexes(k("message"), j.Message)
	for i, code := range j.ErrorCode {
		if !errorCodeRE.MatchString(code) {
			l.bad(k("error_code", itoa(i)), "must be an Apache error code like \"AH01617\", got %q", code)
		}
	}
	l.fieldRegexes(k("fields"), j.Fields)
	l.fieldRegexes(k("any_fields"), j.AnyFields)
	if j.Distinct != "" {
		switch {
		case j.Kind != "match":
			l.bad(k("distinct"), "only match jails count distinct values")
		case apachelog.FieldByName(j.Distinct) == apachelog.FieldNone:
			l.bad(k("distinct"), "%s", unknownField(j.Distinct))
		}
	}
	if j.IPv6Prefix != 0 && (j.IPv6Prefix < MinIPv6Prefix || j.IPv6Prefix > 128) {
		l.bad(k("ipv6_prefix"), "must be a prefix length from %d to 128 (0 counts single addresses), got %d", MinIPv6Prefix, j.IPv6Prefix)
	}
	for i, re := range j.Regex {
		key := k("regex", itoa(i))
		switch n := strings.Count(re, hostTag); n {
		case 1:
			if _, err := regexp.Compile(strings.Replace(re, hostTag, hostPattern, 1)); err != nil {
				l.bad(key, "regex %q does not compile: %v", re, err)
			}
		default:
			l.bad(key, "a raw-line regex needs %s exactly once, found %d in %q", hostTag, n, re)
		}
	}
	l.regexes(k("ignoreregex"), j.IgnoreRegex)

	switch j.Kind {
	case "match":
		if j.MaxRetry <= 0 && set("maxretry") {
			l.bad(k("maxretry"), "must be a positive number of failures, got %d", j.MaxRetry)
		}
		if j.FindTime <= 0 && set("findtime") {
			l.bad(k("findtime"), "must be a positive duration, got %s", j.FindTime.D())
		}
		if !hasCondition(j) && !anyFailed {
			l.bad(k(), "a match jail needs at least one condition (status, method, path, path_prefix, path_suffix, query, user_agent, agent_words, message, error_code, fields, any_fields or regex)")
		}
	case "rate":
		if missing("threshold") {
			l.bad(k(), "a rate jail needs a threshold")
		} else if set("threshold") && j.Threshold <= 0 {
			l.bad(k("threshold"), "must be a positive number of requests, got %d", j.Threshold)
		}
		if missing("window") {
			l.bad(k(), "a rate jail needs a window")
		} else if set("window") && j.Window <= 0 {
			l.bad(k("window"), "must be a positive duration, got %s", j.Window.D())
		}
		l.oneOf(k("per"), j.Per, pers)
	case "recidive":
		// A recidive jail reads no lines: it bans addresses that other
		// jails banned maxretry times within findtime.
		if hasCondition(j) {
			l.bad(k(), "a recidive jail counts other jails' bans and takes no line conditions")
		}
		if j.MaxRetry <= 0 && set("maxretry") {
			l.bad(k("maxretry"), "must be a positive number of bans, got %d", j.MaxRetry)
		}
	}
	l.regexes(k("exclude_path"), j.ExcludePath)
	for i, e := range j.ExcludeExt {
		if !strings.HasPrefix(e, ".") || len(e) < 2 {
			l.bad(k("exclude_ext", itoa(i)), "must be an extension with its dot, like \".css\", got %q", e)
		}
	}
	l.statuses(k("exclude_status"), j.ExcludeStatus)
}

// MinIPv6Prefix is the shortest ipv6_prefix a jail may ban by: shorter
// prefixes would ban whole providers.
const MinIPv6Prefix = 32

// fieldRegexes checks a table of field = regex.
func (l *loader) fieldRegexes(key []string, m map[string]string) {
	names := make([]string, 0, len(m))
	for f := range m {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		fk := append(slices.Clone(key), f)
		if apachelog.FieldByName(f) == apachelog.FieldNone {
			l.bad(fk, "%s", unknownField(f))
			continue
		}
		l.regex(fk, m[f])
	}
}

func unknownField(f string) string {
	msg := fmt.Sprintf("unknown field %q", f)
	if s := suggest(f, knownFields()); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", s)
	}
	return msg
}

func hasCondition(j *Jail) bool {
	return len(j.Status) > 0 || len(j.Method) > 0 || len(j.Path) > 0 || len(j.PathPrefix) > 0 ||
		len(j.PathSuffix) > 0 || len(j.Query) > 0 || len(j.UserAgent) > 0 || len(j.AgentWords) > 0 ||
		len(j.Message) > 0 || len(j.ErrorCode) > 0 || len(j.Fields) > 0 || len(j.AnyFields) > 0 || len(j.Regex) > 0
}

func (l *loader) statuses(key []string, list []int) {
	for i, s := range list {
		if s < 100 || s > 599 {
			l.bad(append(slices.Clone(key), itoa(i)), "must be an HTTP status from 100 to 599, got %d", s)
		}
	}
}

func (l *loader) literals(key []string, list []string) {
	for i, s := range list {
		if s == "" {
			l.bad(append(slices.Clone(key), itoa(i)), "must not be empty")
		}
	}
}

func (l *loader) regexes(key []string, list []string) {
	for i, re := range list {
		l.regex(append(slices.Clone(key), itoa(i)), re)
	}
}

// regex checks a field regex: it compiles and has no <HOST>, which only
// raw-line regexes may use.
func (l *loader) regex(key []string, re string) {
	if strings.Contains(re, hostTag) {
		l.bad(key, "%s is only allowed in raw-line regex entries; this regex runs on one field: %q", hostTag, re)
		return
	}
	if _, err := regexp.Compile(re); err != nil {
		l.bad(key, "regex %q does not compile: %v", re, err)
	}
}

func (l *loader) sourceNames() []string {
	var names []string
	for _, s := range l.cfg.Sources {
		names = append(names, s.Name)
	}
	return names
}

func knownFields() []string {
	var names []string
	for f := apachelog.FieldNone + 1; f < apachelog.NumFields; f++ {
		names = append(names, f.String())
	}
	return names
}

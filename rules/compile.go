package rules

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	"github.com/band-project/band/apachelog"
	"github.com/band-project/band/config"
)

// HostPattern is what `<HOST>` stands for in a raw-line regex: an IPv4 or
// IPv6 address (or a host name), bound to a named group.
const HostPattern = `(?P<host>[0-9A-Za-z.:_-]+)`

// Compile compiles every enabled jail of cfg, sorted by name. Errors name the
// file, line and key.
func Compile(cfg *config.Config) ([]*Jail, error) {
	names := make([]string, 0, len(cfg.Jails))
	for name, j := range cfg.Jails {
		// Recidive jails read no lines: the ban book applies them.
		if j.Enabled && j.Kind != "recidive" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var errs []error
	jails := make([]*Jail, 0, len(names))
	for _, name := range names {
		j, err := CompileJail(name, cfg.Jails[name])
		if err != nil {
			var ke *keyError
			if errors.As(err, &ke) {
				file, line := cfg.Where("jail", name, ke.key)
				err = fmt.Errorf("%s:%d: jail.%s.%s: %s", file, line, name, ke.key, ke.msg)
			}
			errs = append(errs, err)
			continue
		}
		jails = append(jails, j)
	}
	return jails, errors.Join(errs...)
}

// keyError is a problem with one key of a jail.
type keyError struct{ key, msg string }

func (e *keyError) Error() string { return e.key + ": " + e.msg }

func bad(key, format string, args ...any) error {
	return &keyError{key: key, msg: fmt.Sprintf(format, args...)}
}

// CompileJail compiles one configured jail (defaults already applied).
func CompileJail(name string, c *config.Jail) (*Jail, error) {
	j := &Jail{
		Name:     name,
		Sources:  c.Sources,
		BanTime:  c.BanTime.D(),
		FindTime: c.FindTime.D(),
		Limit:    c.MaxRetry,
		seed:     maphash.MakeSeed(),
	}
	for _, s := range c.IgnoreIP {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, bad("ignoreip", "%v", err)
		}
		j.IgnoreIP = append(j.IgnoreIP, p)
	}
	switch c.Kind {
	case "", "match":
		j.Kind = Match
		if j.Limit <= 0 {
			return nil, bad("maxretry", "must be at least 1, got %d", c.MaxRetry)
		}
		if j.FindTime <= 0 {
			return nil, bad("findtime", "must be a positive duration")
		}
	case "rate":
		j.Kind = Rate
		j.accessOnly = true
		switch c.Per {
		case "", "page":
			j.Per = PerPage
		case "site":
			j.Per = PerSite
		case "client":
			j.Per = PerClient
		default:
			return nil, bad("per", "must be page, site or client, got %q", c.Per)
		}
		if c.Threshold <= 0 {
			return nil, bad("threshold", "must be a positive number of requests, got %d", c.Threshold)
		}
		if c.Window <= 0 {
			return nil, bad("window", "must be a positive duration")
		}
		j.Limit = c.Threshold + 1
		j.FindTime = c.Window.D()
	default:
		return nil, bad("kind", "must be match or rate, got %q", c.Kind)
	}
	if j.BanTime <= 0 {
		return nil, bad("bantime", "must be a positive duration")
	}
	if c.IPv6Prefix != 0 {
		if c.IPv6Prefix < config.MinIPv6Prefix || c.IPv6Prefix > 128 {
			return nil, bad("ipv6_prefix", "must be from %d to 128, got %d", config.MinIPv6Prefix, c.IPv6Prefix)
		}
		j.IPv6Bits = c.IPv6Prefix
	}
	if c.Distinct != "" {
		if j.Kind != Match {
			return nil, bad("distinct", "only match jails count distinct values")
		}
		j.distinct = apachelog.FieldByName(c.Distinct)
		if j.distinct == apachelog.FieldNone {
			return nil, bad("distinct", "unknown field %q", c.Distinct)
		}
	}
	if err := j.compileConds(c); err != nil {
		return nil, err
	}
	if j.Kind == Match && len(j.conds) == 0 && len(j.raw) == 0 {
		return nil, bad("kind", "a match jail needs at least one condition (status, method, path, user_agent, message, regex …)")
	}
	return j, nil
}

// ParsePrefixes parses a list of addresses and CIDRs (an ignore list),
// skipping none: the first bad entry is an error.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// ParsePrefix parses an address ("192.0.2.7", a full-length prefix) or a
// CIDR ("198.51.100.0/24", masked).
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func compileAll(key string, exprs []string) (anyRegexp, error) {
	var out anyRegexp
	for _, e := range exprs {
		re, err := regexp.Compile(e)
		if err != nil {
			return nil, bad(key, "regex %q does not compile: %v", e, err)
		}
		out = append(out, newFieldRegexp(re))
	}
	return out, nil
}

func fieldCond(f apachelog.Field, rs anyRegexp) cond {
	return cond{cost: 10, match: func(ev *apachelog.Event) bool { return rs.match(ev.Get(f)) }}
}

func (j *Jail) compileConds(c *config.Jail) error {
	add := func(cd cond) { j.conds = append(j.conds, cd) }
	if len(c.Status) > 0 {
		set := newStatusSet(c.Status)
		add(cond{cost: 1, match: func(ev *apachelog.Event) bool { return set.has(ev.Status) }})
		j.accessOnly = true
	}
	if len(c.Method) > 0 {
		set := bytesSet{}
		for _, m := range c.Method {
			set[strings.ToUpper(m)] = struct{}{}
		}
		add(cond{cost: 2, match: func(ev *apachelog.Event) bool { return set.has(ev.Get(apachelog.FieldMethod)) }})
		j.accessOnly = true
	}
	if len(c.PathPrefix) > 0 || len(c.PathSuffix) > 0 {
		pre, suf := toBytes(c.PathPrefix), toBytes(c.PathSuffix)
		add(cond{cost: 3, match: func(ev *apachelog.Event) bool {
			p := ev.Get(apachelog.FieldPath)
			return (len(pre) == 0 || hasAnyPrefix(p, pre)) && (len(suf) == 0 || hasAnySuffix(p, suf))
		}})
		j.accessOnly = true
	}
	if len(c.AgentWords) > 0 {
		ws := newWordSet(c.AgentWords)
		add(cond{cost: 5, match: func(ev *apachelog.Event) bool { return ws.match(ev.Get(apachelog.FieldUserAgent)) }})
		j.accessOnly = true
	}
	if len(c.ErrorCode) > 0 {
		set := bytesSet{}
		for _, code := range c.ErrorCode {
			set[code] = struct{}{}
		}
		add(cond{cost: 2, match: func(ev *apachelog.Event) bool { return set.has(ev.Get(apachelog.FieldErrorCode)) }})
		j.errorOnly = true
	}
	for _, fr := range []struct {
		key    string
		exprs  []string
		field  apachelog.Field
		access bool
	}{
		{"path", c.Path, apachelog.FieldPath, true},
		{"query", c.Query, apachelog.FieldQuery, true},
		{"user_agent", c.UserAgent, apachelog.FieldUserAgent, true},
		{"message", c.Message, apachelog.FieldMessage, false},
	} {
		if len(fr.exprs) == 0 {
			continue
		}
		rs, err := compileAll(fr.key, fr.exprs)
		if err != nil {
			return err
		}
		add(fieldCond(fr.field, rs))
		if fr.access {
			j.accessOnly = true
		} else {
			j.errorOnly = true
		}
	}
	fieldNames := make([]string, 0, len(c.Fields))
	for name := range c.Fields {
		fieldNames = append(fieldNames, name)
	}
	sort.Strings(fieldNames)
	for _, name := range fieldNames {
		f := apachelog.FieldByName(name)
		if f == apachelog.FieldNone {
			return bad("fields."+name, "unknown field %q", name)
		}
		rs, err := compileAll("fields."+name, []string{c.Fields[name]})
		if err != nil {
			return err
		}
		add(fieldCond(f, rs))
	}
	if len(c.AnyFields) > 0 {
		cd, err := anyFieldsCond(c.AnyFields)
		if err != nil {
			return err
		}
		add(cd)
	}
	for _, e := range c.Regex {
		if strings.Count(e, "<HOST>") != 1 {
			return bad("regex", "%q must contain <HOST> exactly once, where the log format puts the client address", e)
		}
		re, err := regexp.Compile(strings.Replace(e, "<HOST>", HostPattern, 1))
		if err != nil {
			return bad("regex", "regex %q does not compile: %v", e, err)
		}
		j.raw = append(j.raw, re)
		j.rawHost = append(j.rawHost, re.SubexpIndex("host"))
	}
	for _, e := range c.IgnoreRegex {
		re, err := regexp.Compile(e)
		if err != nil {
			return bad("ignoreregex", "regex %q does not compile: %v", e, err)
		}
		j.ignore = append(j.ignore, re)
	}
	if j.Kind == Rate || len(c.ExcludeExt) > 0 || len(c.ExcludeStatus) > 0 || len(c.ExcludePath) > 0 {
		if err := j.compileExclusions(c); err != nil {
			return err
		}
	}
	if j.errorOnly && j.accessOnly {
		return bad("kind", "mixes error-log conditions (message, error_code) with access-log ones; split it into two jails")
	}
	sort.SliceStable(j.conds, func(a, b int) bool { return j.conds[a].cost < j.conds[b].cost })
	return nil
}

// anyFieldsCond compiles any_fields: one condition that holds when any of
// the named fields matches its regex.
func anyFieldsCond(m map[string]string) (cond, error) {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	type fieldRe struct {
		f  apachelog.Field
		re fieldRegexp
	}
	var list []fieldRe
	for _, name := range names {
		f := apachelog.FieldByName(name)
		if f == apachelog.FieldNone {
			return cond{}, bad("any_fields."+name, "unknown field %q", name)
		}
		re, err := regexp.Compile(m[name])
		if err != nil {
			return cond{}, bad("any_fields."+name, "regex %q does not compile: %v", m[name], err)
		}
		list = append(list, fieldRe{f, newFieldRegexp(re)})
	}
	return cond{cost: 10 * len(list), match: func(ev *apachelog.Event) bool {
		for i := range list {
			if v := ev.Get(list[i].f); len(v) > 0 && list[i].re.match(v) {
				return true
			}
		}
		return false
	}}, nil
}

// compileExclusions adds the condition leaving out excluded statuses,
// extensions and paths.
func (j *Jail) compileExclusions(c *config.Jail) error {
	exts := bytesSet{}
	for _, e := range c.ExcludeExt {
		if !strings.HasPrefix(e, ".") {
			e = "." + e
		}
		exts[strings.ToLower(e)] = struct{}{}
	}
	status := newStatusSet(c.ExcludeStatus)
	excl, err := compileAll("exclude_path", c.ExcludePath)
	if err != nil {
		return err
	}
	j.conds = append(j.conds, cond{cost: 4, match: func(ev *apachelog.Event) bool {
		if status.has(ev.Status) {
			return false
		}
		path := ev.Get(apachelog.FieldPath)
		if len(exts) > 0 {
			if ext := extOf(path); len(ext) > 0 && len(ext) <= 16 {
				var buf [16]byte
				for i, c := range ext {
					buf[i] = lower(c)
				}
				if exts.has(buf[:len(ext)]) {
					return false
				}
			}
		}
		return len(excl) == 0 || !excl.match(path)
	}})
	return nil
}

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func hasAnyPrefix(b []byte, pre [][]byte) bool {
	for _, p := range pre {
		if len(b) >= len(p) && string(b[:len(p)]) == string(p) {
			return true
		}
	}
	return false
}

func hasAnySuffix(b []byte, suf [][]byte) bool {
	for _, s := range suf {
		if len(b) >= len(s) && string(b[len(b)-len(s):]) == string(s) {
			return true
		}
	}
	return false
}

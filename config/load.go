package config

import (
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Names under which the embedded files appear in Config.Files, errors and
// Where.
const (
	BuiltinFile = "<builtin>"
	DefaultFile = "<default>"
)

//go:embed builtin.toml
var builtinTOML []byte

//go:embed default.toml
var defaultTOML []byte

// BuiltinTOML returns the built-in jail library: every jail band knows,
// all disabled.
func BuiltinTOML() []byte { return slices.Clone(builtinTOML) }

// DefaultTOML returns the default band.toml, used when no configuration file
// is given; it is also the documented example configuration.
func DefaultTOML() []byte { return slices.Clone(defaultTOML) }

// Load reads the configuration at path and then every *.toml file, by name,
// in the jail.d directory next to it, merged over the built-in jail library,
// with defaults applied, and validates the result. An empty path loads the
// embedded default configuration. A returned ErrorList holds every problem
// found, each naming file, line and key.
func Load(path string) (*Config, error) {
	if path == "" {
		return LoadFiles("", "")
	}
	return LoadFiles(path, filepath.Join(filepath.Dir(path), "jail.d"))
}

// LoadFiles is Load with the jail directory named: main is the main file
// ("" for the embedded default) and jailDir the directory of drop-in *.toml
// files ("" or a missing directory for none).
func LoadFiles(main, jailDir string) (*Config, error) {
	l := newLoader()

	builtin := l.parse(BuiltinFile, builtinTOML)
	l.apply(builtin, roleBuiltin)

	def := l.parse(DefaultFile, defaultTOML)
	if main == "" {
		l.apply(def, roleMain)
	} else {
		// The default sources stand until the main file names its own.
		l.applyDefaultSources(def)
		data, err := os.ReadFile(main)
		if err != nil {
			return nil, fmt.Errorf("reading config: %w", err)
		}
		l.apply(l.parse(main, data), roleMain)
	}

	if jailDir != "" {
		entries, err := os.ReadDir(jailDir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reading jail directory: %w", err)
		}
		for _, e := range entries { // sorted by name
			name := e.Name()
			if e.IsDir() || strings.HasPrefix(name, ".") || filepath.Ext(name) != ".toml" {
				continue
			}
			path := filepath.Join(jailDir, name)
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("reading jail file: %w", err)
			}
			l.apply(l.parse(path, data), roleDropIn)
		}
	}

	if !l.syntaxErr {
		l.applyDefaults()
		l.validate()
	}
	if len(l.errs) > 0 {
		sortErrors(l.errs, l.cfg.Files)
		return nil, l.errs
	}
	return l.cfg, nil
}

// pos is where a key was written.
type pos struct {
	file string
	line int
}

// Where returns the file and line a key of the merged configuration was
// last set at, e.g. c.Where("jail", "login-flood", "path"). Sources are
// addressed by name: c.Where("source", "access", "path"); list elements by
// index: c.Where("jail", "x", "path", "2"). A key that was not written
// anywhere gives the position of its nearest written parent (for a jail, its
// table header), and a jail key inherited from [defaults] gives the
// position in [defaults]. Keys from the embedded files are in "<builtin>" or
// "<default>". It returns "", 0 when nothing is known.
func (c *Config) Where(key ...string) (file string, line int) {
	for n := len(key); n > 0; n-- {
		if p, ok := c.where[joinKey(key[:n]...)]; ok {
			return p.file, p.line
		}
	}
	return "", 0
}

// EnabledJails returns the names of the enabled jails, sorted.
func (c *Config) EnabledJails() []string {
	var names []string
	for name, j := range c.Jails {
		if j.Enabled {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

type role int

const (
	roleBuiltin role = iota // the jail library: may define jails only
	roleMain                // band.toml or the default: its [[source]] replace the defaults
	roleDropIn              // jail.d/*.toml: [[source]] add to the list
)

// loader merges files into a Config, remembering where each key came from.
type loader struct {
	cfg       *Config
	errs      ErrorList
	syntaxErr bool
	defined   map[string]bool     // key paths set by some file (sources excluded)
	failed    map[string]bool     // key paths whose value could not be decoded
	ownIgnore map[string][]string // jail → its own ignoreip, before [defaults] is added
	builtin   map[string]bool     // jails of the built-in library
	userJail  map[string]pos      // where a non-built-in jail was first defined
	srcFile   map[string]pos      // source name → where it was defined
}

func newLoader() *loader {
	return &loader{
		cfg:       &Config{Jails: map[string]*Jail{}, where: map[string]pos{}},
		defined:   map[string]bool{},
		failed:    map[string]bool{},
		ownIgnore: map[string][]string{},
		builtin:   map[string]bool{},
		userJail:  map[string]pos{},
		srcFile:   map[string]pos{},
	}
}

// parsed is one decoded file, its top-level tables left undecoded.
type parsed struct {
	name  string
	md    toml.MetaData
	top   map[string]toml.Primitive
	lines keyLines
}

func (l *loader) errorf(file string, line int, key []string, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: file, Line: line, Key: keyString(key), Msg: fmt.Sprintf(format, args...)})
}

// keyString writes a key path the way TOML would.
func keyString(key []string) string {
	if len(key) == 0 {
		return ""
	}
	return toml.Key(key).String()
}

// parse decodes a file's top level; it returns nil after recording a syntax
// error.
func (l *loader) parse(name string, data []byte) *parsed {
	l.cfg.Files = append(l.cfg.Files, name)
	p := &parsed{name: name}
	md, err := toml.Decode(string(data), &p.top)
	if err != nil {
		l.syntaxErr = true
		var pe toml.ParseError
		if errors.As(err, &pe) {
			l.errs = append(l.errs, &Error{File: name, Line: pe.Position.Line, Msg: "syntax error: " + pe.Message})
		} else {
			l.errs = append(l.errs, &Error{File: name, Msg: "syntax error: " + err.Error()})
		}
		return nil
	}
	p.md = md
	p.lines = scanKeyLines(string(data))
	return p
}

// line returns the line of a key path in p, or of its nearest parent.
func (p *parsed) line(path ...string) int {
	for n := len(path); n > 0; n-- {
		if ln, ok := p.lines[joinKey(path[:n]...)]; ok {
			return ln
		}
	}
	return 0
}

// remember copies the positions of keys under prefix in p into the
// configuration's positions, under the prefix as (which may differ for
// sources, indexed in the file but named in Where).
func (l *loader) remember(p *parsed, prefix, as []string) {
	pk := joinKey(prefix...)
	ak := joinKey(as...)
	for k, ln := range p.lines {
		if k == pk || strings.HasPrefix(k, pk+"\x00") {
			l.cfg.where[ak+k[len(pk):]] = pos{p.name, ln}
		}
	}
}

var topKeys = []string{"daemon", "firewall", "defaults", "source", "jail"}

func (l *loader) apply(p *parsed, r role) {
	if p == nil {
		return
	}
	for _, k := range sortedKeys(p, nil, p.top) {
		prim := p.top[k]
		switch k {
		case "daemon":
			l.applyTable(p, r, k, prim, &l.cfg.Daemon)
		case "firewall":
			l.applyTable(p, r, k, prim, &l.cfg.Firewall)
		case "defaults":
			l.applyTable(p, r, k, prim, &l.cfg.Defaults)
		case "source":
			l.applySources(p, r, prim)
		case "jail":
			l.applyJails(p, r, prim)
		default:
			l.unknown(p, p.line(k), []string{k}, topKeys)
		}
	}
}

// unknown reports a key the schema does not have, suggesting a close one.
func (l *loader) unknown(p *parsed, line int, path []string, known []string) {
	msg := "unknown key " + keyString(path)
	if s := suggest(path[len(path)-1], known); s != "" {
		msg += " (did you mean " + s + "?)"
	}
	l.errs = append(l.errs, &Error{File: p.name, Line: line, Msg: msg})
}

func (l *loader) applyTable(p *parsed, r role, name string, prim toml.Primitive, dst any) {
	if r == roleBuiltin {
		l.errorf(p.name, p.line(name), []string{name}, "the jail library may only define jails")
		return
	}
	var keys map[string]toml.Primitive
	if err := p.md.PrimitiveDecode(prim, &keys); err != nil {
		l.errorf(p.name, p.line(name), []string{name}, "must be a table")
		return
	}
	l.decodeStruct(p, []string{name}, []string{name}, []string{name}, keys, reflect.ValueOf(dst).Elem())
	l.remember(p, []string{name}, []string{name})
}

// decodeStruct decodes each key of a table into the field of dst with that
// toml tag, reporting unknown keys and bad values. display is the key path
// for messages, at the path in the file (with array indexes) and mdPath the
// path the TOML metadata knows the table by.
func (l *loader) decodeStruct(p *parsed, display, at, mdPath []string, keys map[string]toml.Primitive, dst reflect.Value) {
	fields := tomlFields(dst.Type())
	for _, k := range sortedKeys(p, at, keys) {
		kp := append(slices.Clone(at), k)
		dk := append(slices.Clone(display), k)
		i, ok := fields[k]
		if !ok {
			l.unknown(p, p.line(kp...), dk, fieldNames(fields))
			continue
		}
		ft := dst.Type().Field(i).Type
		v := reflect.New(ft)
		if err := p.md.PrimitiveDecode(keys[k], v.Interface()); err != nil {
			l.errorf(p.name, p.line(kp...), dk, "%s", decodeMsg(p.md, append(slices.Clone(mdPath), k), ft, err))
			l.failed[joinKey(dk...)] = true
			continue
		}
		dst.Field(i).Set(v.Elem())
		l.defined[joinKey(dk...)] = true
	}
}

// decodeMsg turns a decoding error into a message saying what is expected.
func decodeMsg(md toml.MetaData, key []string, t reflect.Type, err error) string {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return pe.Message // from Duration.UnmarshalText
	}
	want := typeDesc(t)
	got := tomlTypeDesc(md.Type(key...))
	if got == "" {
		return "must be " + want
	}
	return "must be " + want + ", got " + got
}

func typeDesc(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[Duration]():
		return `a duration such as "10m"`
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Int:
		return "an integer"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Slice:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(typeDesc(t.Elem()), "a "), "an ") + "s"
	case t.Kind() == reflect.Map:
		return "a table of " + strings.TrimPrefix(strings.TrimPrefix(typeDesc(t.Elem()), "a "), "an ") + "s"
	}
	return t.String()
}

func tomlTypeDesc(s string) string {
	switch s {
	case "":
		return ""
	case "Hash":
		return "a table"
	case "ArrayHash":
		return "an array of tables"
	case "Array":
		return "an array"
	case "Integer":
		return "an integer"
	case "Float":
		return "a float"
	case "Bool":
		return "a boolean"
	case "String":
		return "a string"
	}
	return strings.ToLower(s)
}

// sortedKeys orders the keys of a table by the line they are on (then by
// name), so that errors come out in reading order.
func sortedKeys[V any](p *parsed, at []string, m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		li, lj := p.line(append(slices.Clone(at), keys[i])...), p.line(append(slices.Clone(at), keys[j])...)
		if li != lj {
			return li < lj
		}
		return keys[i] < keys[j]
	})
	return keys
}

// tomlFields maps the toml tags of a struct type to field indexes.
func tomlFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		m[tag] = i
	}
	return m
}

func fieldNames(m map[string]int) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// decodeSources decodes a file's [[source]] list.
func (l *loader) decodeSources(p *parsed, prim toml.Primitive) []Source {
	var list []map[string]toml.Primitive
	if err := p.md.PrimitiveDecode(prim, &list); err != nil {
		l.errorf(p.name, p.line("source"), []string{"source"}, "must be an array of tables ([[source]])")
		return nil
	}
	out := make([]Source, 0, len(list))
	for i, keys := range list {
		at := []string{"source", strconv.Itoa(i)}
		var s Source
		if np, ok := keys["name"]; ok {
			_ = p.md.PrimitiveDecode(np, &s.Name) // a bad name is reported below
		}
		display := []string{"source", sourceLabel(s.Name, i)}
		l.decodeStruct(p, display, at, []string{"source"}, keys, reflect.ValueOf(&s).Elem())
		out = append(out, s)
	}
	return out
}

// sourceLabel names a source in key paths: its name, or "#n" (1-based) when
// it has none.
func sourceLabel(name string, i int) string {
	if name != "" {
		return name
	}
	return "#" + strconv.Itoa(i+1)
}

func (l *loader) applyDefaultSources(p *parsed) {
	if p == nil {
		return
	}
	if prim, ok := p.top["source"]; ok {
		l.applySources(p, roleMain, prim)
	}
}

func (l *loader) applySources(p *parsed, r role, prim toml.Primitive) {
	if r == roleBuiltin {
		l.errorf(p.name, p.line("source"), []string{"source"}, "the jail library may only define jails")
		return
	}
	list := l.decodeSources(p, prim)
	if r == roleMain {
		l.cfg.Sources = nil
		clear(l.srcFile)
		for k := range l.cfg.where {
			if strings.HasPrefix(k, "source\x00") || k == "source" {
				delete(l.cfg.where, k)
			}
		}
	}
	for i, s := range list {
		at := []string{"source", strconv.Itoa(i)}
		here := pos{p.name, p.line(at...)}
		if s.Name != "" {
			if prev, ok := l.srcFile[s.Name]; ok {
				l.errorf(here.file, p.line(append(at, "name")...), []string{"source", s.Name, "name"},
					"duplicate source name %q, already defined at %s:%d", s.Name, prev.file, prev.line)
				continue
			}
			l.srcFile[s.Name] = here
		}
		l.cfg.Sources = append(l.cfg.Sources, s)
		l.remember(p, at, []string{"source", sourceLabel(s.Name, len(l.cfg.Sources)-1)})
	}
}

func (l *loader) applyJails(p *parsed, r role, prim toml.Primitive) {
	var jails map[string]toml.Primitive
	if err := p.md.PrimitiveDecode(prim, &jails); err != nil {
		l.errorf(p.name, p.line("jail"), []string{"jail"}, "must be a table of jails ([jail.name])")
		return
	}
	for _, name := range sortedKeys(p, []string{"jail"}, jails) {
		path := []string{"jail", name}
		here := pos{p.name, p.line(path...)}
		var keys map[string]toml.Primitive
		if err := p.md.PrimitiveDecode(jails[name], &keys); err != nil {
			l.errorf(here.file, here.line, path, "must be a table")
			continue
		}
		if r == roleBuiltin {
			l.builtin[name] = true
		} else if !l.builtin[name] {
			if prev, ok := l.userJail[name]; ok && prev.file != p.name {
				l.errorf(here.file, here.line, path, "already defined at %s:%d (only built-in jails may be tuned in more than one file)", prev.file, prev.line)
				continue
			}
			l.userJail[name] = here
		}
		j := l.cfg.Jails[name]
		if j == nil {
			j = &Jail{}
			l.cfg.Jails[name] = j
		}
		l.decodeStruct(p, path, path, path, keys, reflect.ValueOf(j).Elem())
		l.remember(p, path, path)
	}
}

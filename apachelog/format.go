package apachelog

import (
	"fmt"
	"strings"
)

// itemKind says what a compiled LogFormat item does with its value.
type itemKind uint8

const (
	kLit      itemKind = iota // literal text that must match
	kText                     // stored in field (dropped when field is FieldNone)
	kHost                     // %h
	kAddr                     // %a
	kPeer                     // %{c}a, %{c}h
	kStatus                   // %s, %>s, %<s
	kBytes                    // %b, %B
	kBytesOut                 // %O
	kNum                      // a number stored in field (or dropped)
	kTime                     // %t, [10/Oct/2000:13:55:36 -0700]
	kStrftime                 // %{format}t
	kRequest                  // %r
	kQuery                    // %q
	kHeader                   // %{Name}i / %{Name}o without a Field of its own
)

// scanKind says how the extent of an item's value is found in a line.
type scanKind uint8

const (
	scanUntil    scanKind = iota // up to the next literal
	scanQuoted                   // up to the unescaped closing quote
	scanBracket                  // [ … ]
	scanNumber                   // digits or "-"
	scanStrftime                 // as many bytes as the time format consumes
	scanEnd                      // the rest of the line
	scanSpace                    // up to a space (directive followed by a directive)
	scanPath                     // %U directly followed by %q: up to '?' or a space
)

type item struct {
	kind  itemKind
	scan  scanKind
	field Field
	lit   []byte // kLit: the text; otherwise the literal that follows, if any
	name  string // header name
	resp  bool   // response header
	prio  int8   // status priority: %>s beats %s
	tf    *strftime
	pos   int    // offset of the directive in the format
	dir   string // the directive as written, for messages
}

func (p *Parser) compileAccess(format string) error {
	p.mode = modeAccess
	var (
		items []item
		lit   []byte
	)
	flush := func() {
		if len(lit) > 0 {
			items = append(items, item{kind: kLit, lit: lit})
			lit = nil
		}
	}
	for i := 0; i < len(format); {
		c := format[i]
		if c == '\\' && i+1 < len(format) {
			switch format[i+1] {
			case 'n':
				lit = append(lit, '\n')
			case 't':
				lit = append(lit, '\t')
			case '"', '\\':
				lit = append(lit, format[i+1])
			default:
				lit = append(lit, c, format[i+1])
			}
			i += 2
			continue
		}
		if c != '%' {
			lit = append(lit, c)
			i++
			continue
		}
		start := i
		i++
		var (
			arg      string
			hasArg   bool
			redirect byte
		)
	mods:
		for i < len(format) {
			switch c := format[i]; {
			case c == '!' || c == ',' || ('0' <= c && c <= '9'):
				i++
			case c == '<' || c == '>':
				redirect = c
				i++
			case c == '{':
				j := strings.IndexByte(format[i+1:], '}')
				if j < 0 {
					return fmt.Errorf("compiling log format: unterminated %%{ at position %d", start)
				}
				arg, hasArg = format[i+1:i+1+j], true
				i += j + 2
			default:
				break mods
			}
		}
		if i >= len(format) {
			return fmt.Errorf("compiling log format: incomplete directive %q at position %d", format[start:], start)
		}
		d := format[i]
		i++
		name := string(d)
		if d == '^' {
			if i+2 > len(format) {
				return fmt.Errorf("compiling log format: incomplete directive %q at position %d", format[start:], start)
			}
			name = format[i-1 : i+2]
			i += 2
		}
		if d == '%' {
			lit = append(lit, '%')
			continue
		}
		it, err := directive(name, arg, hasArg, redirect)
		if err != nil {
			return fmt.Errorf("compiling log format: directive %q at position %d: %w", format[start:i], start, err)
		}
		it.pos, it.dir = start, format[start:i]
		flush()
		items = append(items, it)
	}
	flush()

	for k := range items {
		it := &items[k]
		if it.kind == kLit {
			continue
		}
		var prev, next []byte
		if k > 0 && items[k-1].kind == kLit {
			prev = items[k-1].lit
		}
		if k+1 < len(items) && items[k+1].kind == kLit {
			next = items[k+1].lit
		}
		it.lit = next
		quoted := len(prev) > 0 && prev[len(prev)-1] == '"' && len(next) > 0 && next[0] == '"'
		switch {
		case it.kind == kTime:
			it.scan = scanBracket
		case it.kind == kStrftime:
			it.scan = scanStrftime
		case quoted:
			it.scan = scanQuoted
		case it.kind == kStatus || it.kind == kBytes || it.kind == kBytesOut || it.kind == kNum:
			it.scan = scanNumber
		case it.field == FieldPath && k+1 < len(items) && items[k+1].kind == kQuery:
			it.scan = scanPath
		case next != nil:
			it.scan = scanUntil
		case k == len(items)-1:
			it.scan = scanEnd
		default:
			it.scan = scanSpace
		}
		p.has[it.field] = true
		switch it.kind {
		case kHost:
			if p.clientFrom == 0 {
				p.clientFrom = 'h'
			}
		case kAddr:
			p.clientFrom = 'a'
		case kBytes:
			p.hasB = true
		case kHeader:
			p.nHeaders++
		case kTime, kStrftime:
			p.has[FieldTime] = true
		case kRequest:
			for _, f := range []Field{FieldMethod, FieldPath, FieldQuery, FieldProtocol} {
				p.has[f] = true
			}
		case kText, kQuery:
			switch it.field {
			case FieldMethod:
				p.hasMethod = true
			case FieldPath:
				p.hasPath = true
			case FieldQuery:
				p.hasQuery = true
			case FieldProtocol:
				p.hasProto = true
			}
		}
	}
	if p.has[FieldBytesOut] {
		p.has[FieldBytes] = p.has[FieldBytes] || !p.hasB
	}
	p.has[FieldNone] = false
	p.items = items
	return nil
}

// directive compiles one %-directive; name is its letter (or "^ti"/"^to").
func directive(name, arg string, hasArg bool, redirect byte) (item, error) {
	text := func(f Field) (item, error) { return item{kind: kText, field: f}, nil }
	noArg := func(it item) (item, error) {
		if hasArg && arg != "" {
			return item{}, fmt.Errorf("takes no {%s}", arg)
		}
		return it, nil
	}
	switch name {
	case "h":
		if arg == "c" {
			return item{kind: kPeer, field: FieldPeerAddr}, nil
		}
		return item{kind: kHost, field: FieldRemoteHost}, nil
	case "a":
		switch arg {
		case "c":
			return item{kind: kPeer, field: FieldPeerAddr}, nil
		case "":
			return item{kind: kAddr, field: FieldRemoteAddr}, nil
		}
		return item{}, fmt.Errorf("unknown address kind {%s}", arg)
	case "l":
		return text(FieldIdent)
	case "u":
		return text(FieldUser)
	case "t":
		return compileTimeDirective(arg)
	case "r":
		return noArg(item{kind: kRequest, field: FieldRequest})
	case "s":
		prio := int8(1)
		if redirect == '>' {
			prio = 2
		}
		return noArg(item{kind: kStatus, field: FieldStatus, prio: prio})
	case "b", "B":
		return noArg(item{kind: kBytes, field: FieldBytes})
	case "O":
		return noArg(item{kind: kBytesOut, field: FieldBytesOut})
	case "I":
		return noArg(item{kind: kNum, field: FieldBytesIn})
	case "S":
		return noArg(item{kind: kNum})
	case "D":
		return noArg(item{kind: kNum, field: FieldDuration})
	case "T":
		switch arg {
		case "", "s", "ms", "us":
			return item{kind: kNum, field: FieldDuration}, nil
		}
		return item{}, fmt.Errorf("unknown time unit {%s}", arg)
	case "v":
		return text(FieldVHost)
	case "V":
		return text(FieldServerName)
	case "p":
		switch arg {
		case "", "canonical", "local":
			return item{kind: kNum, field: FieldPort}, nil
		case "remote":
			return item{kind: kNum}, nil
		}
		return item{}, fmt.Errorf("unknown port kind {%s}", arg)
	case "P":
		switch arg {
		case "", "pid":
			return item{kind: kText, field: FieldPid}, nil
		case "tid", "hextid":
			return item{kind: kText}, nil
		}
		return item{}, fmt.Errorf("unknown id kind {%s}", arg)
	case "m":
		return noArg(item{kind: kText, field: FieldMethod})
	case "U":
		return noArg(item{kind: kText, field: FieldPath})
	case "q":
		return noArg(item{kind: kQuery, field: FieldQuery})
	case "H":
		return noArg(item{kind: kText, field: FieldProtocol})
	case "X":
		return noArg(item{kind: kText, field: FieldConnStatus})
	case "i", "o":
		if arg == "" {
			return item{}, fmt.Errorf("needs a header name in {}")
		}
		if name == "i" {
			switch {
			case equalFold(arg, "Referer"):
				return item{kind: kText, field: FieldReferer}, nil
			case equalFold(arg, "User-Agent"):
				return item{kind: kText, field: FieldUserAgent}, nil
			case equalFold(arg, "X-Forwarded-For"):
				return item{kind: kText, field: FieldForwardedFor}, nil
			}
		}
		return item{kind: kHeader, name: arg, resp: name == "o"}, nil
	case "f", "k", "L", "R":
		return noArg(item{kind: kText})
	case "e":
		return item{kind: kText}, nil
	case "n", "C", "x", "c", "^ti", "^to":
		if arg == "" {
			return item{}, fmt.Errorf("needs a name in {}")
		}
		return item{kind: kText}, nil
	}
	return item{}, fmt.Errorf("unknown directive")
}

func compileTimeDirective(arg string) (item, error) {
	arg = strings.TrimPrefix(strings.TrimPrefix(arg, "begin:"), "end:")
	if arg == "" {
		return item{kind: kTime}, nil
	}
	tf, err := compileStrftime(arg)
	if err != nil {
		return item{}, err
	}
	return item{kind: kStrftime, tf: tf}, nil
}

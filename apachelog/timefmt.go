package apachelog

import (
	"fmt"
	"time"
)

// tparts collects the parts of a time as a line's time directives are read;
// several directives may describe one time (%{%d/%b/%Y %T}t.%{msec_frac}t).
type tparts struct {
	set                      bool
	year, mon, day           int
	hour, min, sec, nsec     int
	pm                       int8 // 0: 24-hour clock, 1: AM, 2: PM
	off                      int  // seconds east of UTC
	hasOff                   bool
	epoch, epochNsec         int64
	hasEpoch, hasFrac, has12 bool
}

// time builds the instant: in a fixed zone of the written offset if there
// is one, else in loc.
func (tp *tparts) time(loc *time.Location, zones *zoneCache) (time.Time, bool) {
	if tp.hasOff {
		loc = zones.get(tp.off)
	}
	if tp.hasEpoch {
		ns := tp.epochNsec
		if tp.hasFrac {
			ns = int64(tp.nsec)
		}
		return time.Unix(tp.epoch, ns).In(loc), true
	}
	mon, day, hour := tp.mon, tp.day, tp.hour
	if mon == 0 {
		mon = 1
	}
	if day == 0 {
		day = 1
	}
	if tp.has12 {
		if hour < 1 || hour > 12 {
			return time.Time{}, false
		}
		hour %= 12
		if tp.pm == 2 {
			hour += 12
		}
	}
	if mon > 12 || day > 31 || hour > 24 || tp.min > 59 || tp.sec > 60 {
		return time.Time{}, false
	}
	return time.Date(tp.year, time.Month(mon), day, hour, tp.min, tp.sec, tp.nsec, loc), true
}

// zoneCache keeps one *time.Location per offset seen, so that lines do not
// call time.FixedZone (which allocates).
type zoneCache struct {
	lastOff int
	last    *time.Location
	m       map[int]*time.Location
}

func newZoneCache() *zoneCache { return &zoneCache{m: make(map[int]*time.Location)} }

func (z *zoneCache) get(off int) *time.Location {
	if z.last != nil && z.lastOff == off {
		return z.last
	}
	l, ok := z.m[off]
	if !ok {
		if off == 0 {
			l = time.UTC
		} else {
			sign, a := '+', off
			if a < 0 {
				sign, a = '-', -a
			}
			l = time.FixedZone(fmt.Sprintf("%c%02d%02d", sign, a/3600, a/60%60), off)
		}
		if len(z.m) >= 256 {
			clear(z.m)
		}
		z.m[off] = l
	}
	z.last, z.lastOff = l, off
	return l
}

// parseCLFTime reads %t without its brackets: 10/Oct/2000:13:55:36 -0700.
func parseCLFTime(b []byte, tp *tparts) bool {
	if len(b) != 26 || b[2] != '/' || b[6] != '/' || b[11] != ':' || b[14] != ':' ||
		b[17] != ':' || b[20] != ' ' {
		return false
	}
	day, ok1 := digits2(b[0:])
	mon := monthIndex(b[3:6])
	y1, ok2 := digits2(b[7:])
	y2, ok3 := digits2(b[9:])
	h, ok4 := digits2(b[12:])
	m, ok5 := digits2(b[15:])
	s, ok6 := digits2(b[18:])
	off, ok7 := parseOffset(b[21:])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || mon == 0 || day == 0 || day > 31 ||
		h > 23 || m > 59 || s > 60 {
		return false
	}
	tp.set, tp.year, tp.mon, tp.day, tp.hour, tp.min, tp.sec = true, y1*100+y2, mon, day, h, m, s
	tp.off, tp.hasOff = off, true
	return true
}

// parseOffset reads exactly "+hhmm" or "-hhmm".
func parseOffset(b []byte) (int, bool) {
	if len(b) != 5 || (b[0] != '+' && b[0] != '-') {
		return 0, false
	}
	h, ok1 := digits2(b[1:])
	m, ok2 := digits2(b[3:])
	if !ok1 || !ok2 || h > 23 || m > 59 {
		return 0, false
	}
	off := h*3600 + m*60
	if b[0] == '-' {
		off = -off
	}
	return off, true
}

// parseCtime reads an error-log stamp without brackets:
// "Wed Oct 11 14:32:52.123456 2000" (2.4) or "Wed Oct 11 14:32:52 2000" (2.2);
// the day may be space-padded.
func parseCtime(b []byte, tp *tparts) bool {
	if len(b) < 20 || !isAlpha(b[0]) || !isAlpha(b[1]) || !isAlpha(b[2]) || b[3] != ' ' || b[7] != ' ' {
		return false
	}
	mon := monthIndex(b[4:7])
	if mon == 0 {
		return false
	}
	i := 8
	if b[i] == ' ' {
		i++
	}
	day, n := readDigits(b[i:], 2)
	if n == 0 || day == 0 || day > 31 {
		return false
	}
	i += n
	if i+9 > len(b) || b[i] != ' ' || b[i+3] != ':' || b[i+6] != ':' {
		return false
	}
	h, ok1 := digits2(b[i+1:])
	m, ok2 := digits2(b[i+4:])
	s, ok3 := digits2(b[i+7:])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || s > 60 {
		return false
	}
	i += 9
	nsec := 0
	if i < len(b) && b[i] == '.' {
		i++
		f, n := readDigits(b[i:], 9)
		if n == 0 {
			return false
		}
		for k := n; k < 9; k++ {
			f *= 10
		}
		nsec, i = f, i+n
	}
	if i+5 != len(b) || b[i] != ' ' {
		return false
	}
	y, n := readDigits(b[i+1:], 4)
	if n != 4 {
		return false
	}
	*tp = tparts{set: true, year: y, mon: mon, day: day, hour: h, min: m, sec: s, nsec: nsec}
	return true
}

func digits2(b []byte) (int, bool) {
	if len(b) < 2 || b[0] < '0' || b[0] > '9' || b[1] < '0' || b[1] > '9' {
		return 0, false
	}
	return int(b[0]-'0')*10 + int(b[1]-'0'), true
}

// readDigits reads up to max leading digits, returning the value and count.
func readDigits(b []byte, max int) (int, int) {
	v, n := 0, 0
	for n < len(b) && n < max && '0' <= b[n] && b[n] <= '9' {
		v = v*10 + int(b[n]-'0')
		n++
	}
	return v, n
}

func isAlpha(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

// monthIndex maps an English month abbreviation (any case) to 1..12, or 0.
func monthIndex(b []byte) int {
	if len(b) < 3 {
		return 0
	}
	switch uint32(b[0]|0x20)<<16 | uint32(b[1]|0x20)<<8 | uint32(b[2]|0x20) {
	case 'j'<<16 | 'a'<<8 | 'n':
		return 1
	case 'f'<<16 | 'e'<<8 | 'b':
		return 2
	case 'm'<<16 | 'a'<<8 | 'r':
		return 3
	case 'a'<<16 | 'p'<<8 | 'r':
		return 4
	case 'm'<<16 | 'a'<<8 | 'y':
		return 5
	case 'j'<<16 | 'u'<<8 | 'n':
		return 6
	case 'j'<<16 | 'u'<<8 | 'l':
		return 7
	case 'a'<<16 | 'u'<<8 | 'g':
		return 8
	case 's'<<16 | 'e'<<8 | 'p':
		return 9
	case 'o'<<16 | 'c'<<8 | 't':
		return 10
	case 'n'<<16 | 'o'<<8 | 'v':
		return 11
	case 'd'<<16 | 'e'<<8 | 'c':
		return 12
	}
	return 0
}

// strftime is a compiled %{format}t: a list of conversions and literals.
type strftime struct {
	src string
	ops []tfop
}

type tfop struct {
	conv byte // 0 for a literal; 'W' any whitespace; else a strftime letter or one of the specials below
	lit  byte
}

// Specials for Apache's %{sec}t, %{msec}t, %{usec}t, %{msec_frac}t, %{usec_frac}t.
const (
	convSec      = 1
	convMsec     = 2
	convUsec     = 3
	convMsecFrac = 4
	convUsecFrac = 5
)

var strftimeAlias = map[byte]string{
	'T': "%H:%M:%S", 'X': "%H:%M:%S", 'D': "%m/%d/%y", 'x': "%m/%d/%y", 'F': "%Y-%m-%d",
	'R': "%H:%M", 'r': "%I:%M:%S %p", 'c': "%a %b %e %H:%M:%S %Y", 'h': "%b",
}

func compileStrftime(src string) (*strftime, error) {
	tf := &strftime{src: src}
	switch src {
	case "sec":
		tf.ops = []tfop{{conv: convSec}}
		return tf, nil
	case "msec":
		tf.ops = []tfop{{conv: convMsec}}
		return tf, nil
	case "usec":
		tf.ops = []tfop{{conv: convUsec}}
		return tf, nil
	case "msec_frac":
		tf.ops = []tfop{{conv: convMsecFrac}}
		return tf, nil
	case "usec_frac":
		tf.ops = []tfop{{conv: convUsecFrac}}
		return tf, nil
	}
	if err := tf.add(src, 0); err != nil {
		return nil, err
	}
	return tf, nil
}

func (tf *strftime) add(s string, depth int) error {
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			tf.ops = append(tf.ops, tfop{lit: s[i]})
			continue
		}
		i++
		for i < len(s) && (s[i] == '-' || s[i] == '_' || s[i] == '0' || s[i] == '^' || s[i] == '#' ||
			s[i] == 'E' || s[i] == 'O') {
			i++
		}
		if i >= len(s) {
			return fmt.Errorf("time format %q ends inside a conversion", tf.src)
		}
		c := s[i]
		if a, ok := strftimeAlias[c]; ok && depth == 0 {
			if err := tf.add(a, depth+1); err != nil {
				return err
			}
			continue
		}
		switch c {
		case '%':
			tf.ops = append(tf.ops, tfop{lit: '%'})
		case 'n', 't':
			tf.ops = append(tf.ops, tfop{conv: 'W'})
		case 'Y', 'y', 'm', 'd', 'e', 'H', 'k', 'I', 'l', 'M', 'S', 'j', 'u', 'w', 'C', 'U', 'V', 'G', 'g',
			'b', 'B', 'a', 'A', 'p', 'P', 'z', 'Z', 's':
			tf.ops = append(tf.ops, tfop{conv: c})
		default:
			return fmt.Errorf("time format %q: unsupported conversion %%%c", tf.src, c)
		}
	}
	return nil
}

// scan reads the time at the start of b, returning the bytes consumed.
func (tf *strftime) scan(b []byte, tp *tparts) (int, bool) {
	tp.set = true
	i := 0
	for _, op := range tf.ops {
		if op.conv == 0 {
			if i >= len(b) || b[i] != op.lit {
				return i, false
			}
			i++
			continue
		}
		rest := b[i:]
		var (
			v, n int
			ok   = true
		)
		switch op.conv {
		case 'W':
			for n < len(rest) && (rest[n] == ' ' || rest[n] == '\t') {
				n++
			}
		case 'Y', 'G':
			v, n = readDigits(rest, 4)
			if op.conv == 'Y' {
				tp.year = v
			}
		case 'y':
			v, n = readDigits(rest, 2)
			if v < 69 {
				v += 2000
			} else {
				v += 1900
			}
			tp.year = v
		case 'm':
			v, n = readDigits(rest, 2)
			tp.mon = v
		case 'd', 'e':
			if v, n = readPadded(rest, op.conv == 'e'); n == 0 {
				return i, false
			}
			tp.day = v
		case 'H', 'k':
			if v, n = readPadded(rest, true); n == 0 {
				return i, false
			}
			tp.hour = v
		case 'I', 'l':
			if v, n = readPadded(rest, true); n == 0 {
				return i, false
			}
			tp.hour, tp.has12 = v, true
		case 'M':
			v, n = readDigits(rest, 2)
			tp.min = v
		case 'S':
			v, n = readDigits(rest, 2)
			tp.sec = v
		case 'j':
			_, n = readDigits(rest, 3)
		case 'u', 'w':
			_, n = readDigits(rest, 1)
		case 'C', 'U', 'V', 'g':
			_, n = readDigits(rest, 2)
		case 'b', 'B', 'a', 'A', 'Z':
			for n < len(rest) && isAlpha(rest[n]) {
				n++
			}
			if op.conv == 'b' || op.conv == 'B' {
				tp.mon = monthIndex(rest[:n])
				ok = tp.mon != 0
			}
		case 'p', 'P':
			for n < len(rest) && isAlpha(rest[n]) {
				n++
			}
			switch string(rest[:n]) {
			case "AM", "am":
				tp.pm = 1
			case "PM", "pm":
				tp.pm = 2
			default:
				ok = false
			}
		case 'z':
			n, ok = scanZone(rest, tp)
		case 's', convSec, convMsec, convUsec:
			var e int64
			for n < len(rest) && n < 19 && '0' <= rest[n] && rest[n] <= '9' {
				e = e*10 + int64(rest[n]-'0')
				n++
			}
			switch op.conv {
			case convMsec:
				tp.epoch, tp.epochNsec = e/1e3, e%1e3*1e6
			case convUsec:
				tp.epoch, tp.epochNsec = e/1e6, e%1e6*1e3
			default:
				tp.epoch = e
			}
			tp.hasEpoch = true
		case convMsecFrac:
			v, n = readDigits(rest, 3)
			ok = n == 3
			tp.nsec, tp.hasFrac = v*1e6, true
		case convUsecFrac:
			v, n = readDigits(rest, 6)
			ok = n == 6
			tp.nsec, tp.hasFrac = v*1e3, true
		}
		if (n == 0 && op.conv != 'W') || !ok {
			return i, false
		}
		i += n
	}
	return i, true
}

// scanZone reads "+hhmm", "+hh:mm" or "Z".
func scanZone(b []byte, tp *tparts) (int, bool) {
	if len(b) > 0 && b[0] == 'Z' {
		tp.off, tp.hasOff = 0, true
		return 1, true
	}
	if len(b) < 5 || (b[0] != '+' && b[0] != '-') {
		return 0, false
	}
	h, ok1 := digits2(b[1:])
	n := 3
	if b[n] == ':' {
		n++
	}
	m, ok2 := digits2(b[n:])
	if !ok1 || !ok2 || h > 23 || m > 59 {
		return 0, false
	}
	tp.off, tp.hasOff = h*3600+m*60, true
	if b[0] == '-' {
		tp.off = -tp.off
	}
	return n + 2, true
}

// parseISOStamp reads the compact ISO stamp of ErrorLogFormat's %{cu}t or
// %{c}t: "2024-03-12 06:25:14.123456" (fraction optional).
func parseISOStamp(b []byte, tp *tparts) bool {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || b[10] != ' ' || b[13] != ':' || b[16] != ':' {
		return false
	}
	y, n := readDigits(b, 4)
	mon, ok1 := digits2(b[5:])
	day, ok2 := digits2(b[8:])
	h, ok3 := digits2(b[11:])
	m, ok4 := digits2(b[14:])
	s, ok5 := digits2(b[17:])
	if n != 4 || !(ok1 && ok2 && ok3 && ok4 && ok5) || mon == 0 || mon > 12 || day == 0 || day > 31 ||
		h > 23 || m > 59 || s > 60 {
		return false
	}
	nsec := 0
	if len(b) > 19 {
		if b[19] != '.' {
			return false
		}
		f, k := readDigits(b[20:], 9)
		if k == 0 || 20+k != len(b) {
			return false
		}
		for ; k < 9; k++ {
			f *= 10
		}
		nsec = f
	}
	*tp = tparts{set: true, year: y, mon: mon, day: day, hour: h, min: m, sec: s, nsec: nsec}
	return true
}

// readPadded reads up to two digits, after leading spaces when spaces is
// set (%e, %k, %l pad with spaces); it returns the bytes used, 0 if there
// is no digit.
func readPadded(b []byte, spaces bool) (v, n int) {
	for spaces && n < len(b) && b[n] == ' ' {
		n++
	}
	v, k := readDigits(b[n:], 2)
	if k == 0 {
		return 0, 0
	}
	return v, n + k
}

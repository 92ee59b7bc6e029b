package apachelog

import (
	"errors"
	"testing"
	"unsafe"
)

// FuzzParse feeds arbitrary lines to every built-in format and to a custom
// format with headers and strftime times: Parse must never panic, must fail
// with ErrMalformed and an empty Event, or succeed with fields that all lie
// inside the line.
func FuzzParse(f *testing.F) {
	for _, td := range testdataFormats {
		for _, line := range readLines(f, td.file) {
			f.Add(line)
		}
	}
	for _, line := range readLines(f, "garbage.log") {
		f.Add(line)
	}
	f.Add([]byte(`2024-03-12 06:25:14.123 192.0.2.1:443 "GET /?a HTTP/1.1" 200 a=b 1234`))
	parsers := []*Parser{
		MustCompile("common"), MustCompile("combined"), MustCompile("vhost_combined"),
		MustCompile("error"), MustCompile("auto"),
		MustCompile(`%{%Y-%m-%d %H:%M:%S}t.%{msec_frac}t %a:%{remote}p "%r" %>s %{Cookie}i %D`),
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		for _, p := range parsers {
			var ev Event
			err := p.Parse(line, &ev)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("%s: error %v does not wrap ErrMalformed", p.Format(), err)
				}
				if ev.Client.IsValid() || ev.Kind != 0 || ev.Get(FieldRequest) != nil {
					t.Fatalf("%s: partial event after error", p.Format())
				}
				continue
			}
			for fl := Field(1); fl < NumFields; fl++ {
				if !within(ev.Get(fl), line) {
					t.Fatalf("%s: field %s = %q lies outside the line", p.Format(), fl, ev.Get(fl))
				}
			}
			for _, h := range ev.Headers {
				if !within(h.Value, line) {
					t.Fatalf("%s: header %s outside the line", p.Format(), h.Name)
				}
			}
			if ev.Client.IsValid() && ev.Client.Is4In6() {
				t.Fatalf("%s: client %v not unmapped", p.Format(), ev.Client)
			}
		}
	})
}

// within reports whether v is nil or a subslice of line.
func within(v, line []byte) bool {
	if v == nil {
		return true
	}
	if len(line) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(line)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
	return p >= start && p+uintptr(len(v)) <= start+uintptr(len(line))
}

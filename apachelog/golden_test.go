package apachelog

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the parser's output")

// TestGolden parses each testdata log and compares a readable dump of the
// Events with testdata/<name>.golden; run with -update to regenerate.
func TestGolden(t *testing.T) {
	files := append(testdataFormats[:len(testdataFormats):len(testdataFormats)],
		struct{ file, format string }{"garbage.log", "auto"})
	for _, td := range files {
		t.Run(td.file, func(t *testing.T) {
			p := MustCompile(td.format, WithLocation(time.UTC))
			var out bytes.Buffer
			var ev Event
			for _, line := range readLines(t, td.file) {
				fmt.Fprintf(&out, "%q\n", line)
				if err := p.Parse(line, &ev); err != nil {
					fmt.Fprintf(&out, "\terror: %v\n", err)
					continue
				}
				fmt.Fprintf(&out, "\t%v client=%s peer=%s time=%s status=%d bytes=%d\n", ev.Kind,
					addrString(ev.Client), addrString(ev.Peer), ev.Time.Format(time.RFC3339Nano), ev.Status, ev.Bytes)
				for f := Field(1); f < NumFields; f++ {
					if v := ev.Get(f); v != nil {
						fmt.Fprintf(&out, "\t%s=%q\n", f, v)
					}
				}
			}
			golden := filepath.Join("testdata", strings.TrimSuffix(td.file, ".log")+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("output differs from %s (run with -update and review the diff):\n%s", golden, out.Bytes())
			}
		})
	}
}

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/band-project/band/config"
	"github.com/band-project/band/internal/cmdtest"
)

// TestBuiltinJailsThroughBandctl runs the real bandctl binary, as an admin
// would (`bandctl test --jail J --matches -o json FILE`), on every built-in
// jail's sample lines: every line of JAIL.match.log counts, no line of
// JAIL.miss.log does. (replay's own test checks the details of each match.)
func TestBuiltinJailsThroughBandctl(t *testing.T) {
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(cfg.Jails))
	for name := range cfg.Jails {
		names = append(names, name)
	}
	sort.Strings(names)
	t.Setenv("TZ", "UTC") // error-log lines carry no offset
	for _, jail := range names {
		for _, kind := range []string{"match", "miss"} {
			file := filepath.Join("..", "..", "replay", "testdata", "jails", jail+"."+kind+".log")
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("every built-in jail needs %s: %v", file, err)
			}
			want := 0
			if kind == "match" {
				want = len(strings.Split(strings.TrimRight(string(b), "\n"), "\n"))
			}
			r := cmdtest.Run(t, "bandctl", "test", "--jail", jail, "--matches", "-o", "json", file)
			var rep jsonReport
			if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &rep) != nil {
				t.Fatalf("bandctl test --jail %s %s: exit %d, %s %s", jail, file, r.Code, r.Stdout, r.Stderr)
			}
			if len(rep.Matches) != want || rep.ParseErrors != 0 {
				t.Errorf("bandctl test --jail %s %s: %d matches, %d parse errors; want %d and 0", jail, filepath.Base(file), len(rep.Matches), rep.ParseErrors, want)
			}
		}
	}
}

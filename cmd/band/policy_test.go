package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/band-project/band/config"
	"github.com/band-project/band/pipeline"
)

func TestRepeatPolicyFromConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "band.toml")
	os.WriteFile(path, []byte(`
[daemon]
history_max_age = "7d"

[defaults]
bantime_increment = true
bantime_factor = 3
bantime_max = "2d"
bantime_overall = true

[jail.recidive]
enabled = true
kind = "recidive"
maxretry = 3
findtime = "1d"
bantime = "1w"
`), 0o644)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := pipeline.Check(cfg); err != nil {
		t.Fatalf("a recidive jail fails the check: %v", err)
	}
	esc, rec, age := repeatPolicy(cfg)
	if esc.Factor != 3 || esc.Max != 48*time.Hour || !esc.Overall {
		t.Errorf("escalation %+v", esc)
	}
	if len(rec) != 1 || rec[0].Name != "recidive" || rec[0].MaxRetry != 3 || rec[0].FindTime != 24*time.Hour || rec[0].BanTime != 7*24*time.Hour {
		t.Errorf("recidive %+v", rec)
	}
	if age != 7*24*time.Hour {
		t.Errorf("history age %v", age)
	}
	// Without bantime_increment there is no escalation.
	cfg, _ = config.Load("")
	if esc, _, _ := repeatPolicy(cfg); esc.Factor != 0 {
		t.Errorf("default escalation %+v, want none", esc)
	}
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/band-project/band/config"
	"github.com/band-project/band/pipeline"
	"github.com/band-project/band/replay"
)

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return fmt.Sprint(*m) }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses flags that may come before or after positional
// arguments, as an admin types them.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, &configError{err}
	}
	return cfg, nil
}

func cmdTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("test", stderr)
	cfgPath := fs.String("config", "", "configuration file (default: the embedded default jails)")
	var jails multiFlag
	fs.Var(&jails, "jail", "test only this jail (repeatable; enables it even if it is off)")
	format := fs.String("format", "auto", "log format: auto, common, combined, vhost_combined, error or a LogFormat string")
	matches := fs.Bool("matches", false, "list every matching line")
	out := fs.String("o", "text", "output: text or json")
	files, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usagef("test: give at least one log file, e.g. bandctl test /var/log/apache2/access.log")
	}
	if *out != "text" && *out != "json" {
		return usagef("test: -o must be text or json, got %q", *out)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	rep, err := replay.Run(ctx, cfg, files, replay.Options{Jails: jails, Format: *format, Matches: *matches})
	if err != nil {
		return err
	}
	if *out == "json" {
		enc := json.NewEncoder(stdout)
		return enc.Encode(struct {
			Lines       uint64         `json:"lines"`
			ParseErrors uint64         `json:"parse_errors"`
			Matches     []replay.Match `json:"matches"`
			Bans        []replay.Ban   `json:"bans"`
		}{rep.Lines, rep.ParseErrors, rep.Matches, rep.Bans})
	}
	return printReport(stdout, rep, *matches)
}

func printReport(w io.Writer, rep *replay.Report, matches bool) error {
	fmt.Fprintf(w, "lines read: %d, parse errors: %d\n\n", rep.Lines, rep.ParseErrors)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JAIL\tKIND\tLIMIT\tMATCHES\tBANS")
	for _, j := range rep.Jails {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", j.Name, j.Kind, j.Limit, j.Matches, j.Bans)
	}
	tw.Flush()
	if matches && len(rep.Matches) > 0 {
		fmt.Fprintln(w, "\nmatches:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, m := range rep.Matches {
			fmt.Fprintf(tw, "%s:%d\t%s\t%s\t%s\n", m.File, m.Line, m.Jail, m.Addr, m.Time.Format(time.RFC3339))
		}
		tw.Flush()
	}
	if len(rep.Bans) == 0 {
		fmt.Fprintln(w, "\nno bans")
		return nil
	}
	fmt.Fprintln(w, "\nbans:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tJAIL\tADDR\tHITS")
	for _, b := range rep.Bans {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", b.Time.Format(time.RFC3339), b.Jail, b.Addr, b.Count)
	}
	return tw.Flush()
}

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", stderr)
	cfgPath := fs.String("config", "", "configuration file (default: the embedded one)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if err := pipeline.Check(cfg); err != nil {
		return &configError{err}
	}
	name := *cfgPath
	if name == "" {
		name = "embedded default configuration"
	}
	fmt.Fprintf(stdout, "%s: OK (%d sources, %d jails enabled: %v)\n", name, len(cfg.Sources), len(cfg.EnabledJails()), cfg.EnabledJails())
	return nil
}

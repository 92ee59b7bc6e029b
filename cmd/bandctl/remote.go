package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/band-project/band/control"
	"github.com/band-project/band/rules"
)

// More exit codes, for the commands that talk to the daemon.
const (
	exitNotRunning = 4 // no daemon on the socket
	exitPermission = 5 // the socket or the daemon refused this user
	exitNotFound   = 6 // no such jail
	exitRefused    = 7 // the address is whitelisted or protected
)

// socketFlag adds --socket, defaulting to $BAND_SOCKET or the default path.
func socketFlag(fs *flag.FlagSet, global string) *string {
	def := global
	if def == "" {
		def = os.Getenv("BAND_SOCKET")
	}
	if def == "" {
		def = control.DefaultSocket
	}
	return fs.String("socket", def, "band's control socket (or set BAND_SOCKET)")
}

// apiError turns a client error into one with advice and an exit code.
type apiError struct {
	err  error
	code int
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

func remoteErr(err error, socket string) error {
	if err == nil {
		return nil
	}
	var ce *control.Error
	switch {
	case errors.Is(err, control.ErrNotRunning):
		return &apiError{fmt.Errorf("%v (start it with: systemctl start band)", err), exitNotRunning}
	case errors.Is(err, control.ErrPermission):
		return &apiError{fmt.Errorf("permission denied: %s is for root and members of group %s; run with sudo or join that group", socket, socketGroup(socket)), exitPermission}
	case errors.As(err, &ce):
		switch ce.Code {
		case control.CodeForbidden:
			return &apiError{fmt.Errorf("%s; run with sudo", ce.Message), exitPermission}
		case control.CodeNotFound:
			return &apiError{ce, exitNotFound}
		case control.CodeIgnored, control.CodeProtected:
			return &apiError{ce, exitRefused}
		case control.CodeBadRequest:
			return &usageError{ce.Message}
		}
	}
	return err
}

func socketGroup(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "root"
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "root"
	}
	if g, err := user.LookupGroupId(strconv.Itoa(int(st.Gid))); err == nil {
		return g.Name
	}
	return strconv.Itoa(int(st.Gid))
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return usagef("-o must be text or json, got %q", o)
	}
	return nil
}

func checkAddr(s string) error {
	if _, err := rules.ParsePrefix(s); err != nil {
		return usagef("%q is not an IP address or CIDR prefix (e.g. 192.0.2.7, 198.51.100.0/24, 2001:db8::/64)", s)
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdList(ctx context.Context, args []string, global string, stdout, stderr io.Writer) error {
	fs := newFlagSet("list", stderr)
	socket := socketFlag(fs, global)
	jail := fs.String("jail", "", "only bans of this jail")
	addr := fs.String("addr", "", "only bans covering this address or prefix")
	out := fs.String("o", "text", "output: text or json")
	if rest, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usagef("list: unexpected argument %q", rest[0])
	}
	if err := checkOutput(*out); err != nil {
		return err
	}
	if *addr != "" {
		if err := checkAddr(*addr); err != nil {
			return err
		}
	}
	bans, err := control.NewClient(*socket).List(ctx, *jail, *addr)
	if err != nil {
		return remoteErr(err, *socket)
	}
	if *out == "json" {
		return printJSON(stdout, bans)
	}
	if len(bans) == 0 {
		fmt.Fprintln(stdout, "no active bans")
		return nil
	}
	printBans(stdout, bans, time.Now())
	return nil
}

// printBans prints a table that fits 80 columns: the reason is cut to what
// is left.
func printBans(w io.Writer, bans []control.Ban, now time.Time) {
	rows := make([][]string, 0, len(bans)+1)
	rows = append(rows, []string{"ADDRESS", "JAIL", "SINCE", "EXPIRES IN", "HITS", "ORIGIN", "REASON"})
	for _, b := range bans {
		since := b.Start.Local().Format("15:04:05")
		if now.Sub(b.Start) > 20*time.Hour {
			since = b.Start.Local().Format("Jan 02 15:04")
		}
		hits := "-"
		if b.Hits > 0 {
			hits = strconv.Itoa(b.Hits)
		}
		rows = append(rows, []string{b.Addr, b.Jail, since, humanDuration(b.Expiry.Sub(now)), hits, b.Origin, oneLine(b.Reason)})
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r[:len(r)-1] {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	used := 0
	for _, wd := range widths[:len(widths)-1] {
		used += wd + 2
	}
	room := max(80-used, 10)
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r[:len(r)-1] {
			fmt.Fprintf(&b, "%-*s  ", widths[i], c)
		}
		reason := []rune(r[len(r)-1])
		if len(reason) > room {
			reason = append(reason[:room-1], '…')
		}
		b.WriteString(string(reason))
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' {
			return ' '
		}
		return r
	}, s)
}

// humanDuration writes 1h2m, 9m59s, 45s.
func humanDuration(d time.Duration) string {
	if d <= 0 {
		return "expired"
	}
	d = d.Round(time.Second)
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), (d%(24*time.Hour))/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, (d%time.Hour)/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%ds", d/time.Minute, (d%time.Minute)/time.Second)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

func cmdBan(ctx context.Context, args []string, global string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ban", stderr)
	socket := socketFlag(fs, global)
	dur := fs.String("for", "", "how long (e.g. 1h, 1d; default the jail's bantime or [defaults] bantime)")
	jail := fs.String("jail", "", "label the ban with this jail (and take its bantime)")
	reason := fs.String("reason", "", "why, for the list")
	force := fs.Bool("force", false, "ban even a whitelisted (ignoreip) address")
	addrs, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(addrs) != 1 {
		return usagef("ban: give one address or prefix, e.g. bandctl ban 192.0.2.7 --for 1h")
	}
	if err := checkAddr(addrs[0]); err != nil {
		return err
	}
	resp, err := control.NewClient(*socket).Ban(ctx, control.BanRequest{Addr: addrs[0], For: *dur, Jail: *jail, Reason: *reason, Force: *force})
	if err != nil {
		return remoteErr(err, *socket)
	}
	if resp.Already {
		fmt.Fprintf(stdout, "%s is already banned by %s, for %s more\n", resp.Ban.Addr, resp.Ban.Jail, humanDuration(time.Until(resp.Ban.Expiry)))
		return nil
	}
	fmt.Fprintf(stdout, "banned %s for %s\n", resp.Ban.Addr, humanDuration(resp.Ban.Expiry.Sub(resp.Ban.Start)))
	return nil
}

func cmdUnban(ctx context.Context, args []string, global string, stdout, stderr io.Writer) error {
	fs := newFlagSet("unban", stderr)
	socket := socketFlag(fs, global)
	all := fs.Bool("all", false, "lift every ban (of --jail, if given)")
	jail := fs.String("jail", "", "with --all: only this jail's bans")
	addrs, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *all && len(addrs) > 0:
		return usagef("unban: give addresses or --all, not both")
	case !*all && len(addrs) == 0:
		return usagef("unban: give one or more addresses, or --all")
	case *jail != "" && !*all:
		return usagef("unban: --jail goes with --all")
	}
	for _, a := range addrs {
		if err := checkAddr(a); err != nil {
			return err
		}
	}
	resp, err := control.NewClient(*socket).Unban(ctx, control.UnbanRequest{Addrs: addrs, All: *all, Jail: *jail})
	if err != nil {
		return remoteErr(err, *socket)
	}
	for _, a := range resp.Unbanned {
		fmt.Fprintln(stdout, "unbanned", a)
	}
	for _, a := range resp.NotFound {
		fmt.Fprintln(stdout, a, "was not banned")
	}
	if *all && len(resp.Unbanned) == 0 {
		fmt.Fprintln(stdout, "no active bans")
	}
	return nil
}

func cmdStatus(ctx context.Context, args []string, global string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", stderr)
	socket := socketFlag(fs, global)
	out := fs.String("o", "text", "output: text or json")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return usagef("status: give at most one jail")
	}
	if err := checkOutput(*out); err != nil {
		return err
	}
	st, err := control.NewClient(*socket).Status(ctx)
	if err != nil {
		return remoteErr(err, *socket)
	}
	if len(rest) == 1 {
		var keep []control.JailInfo
		for _, j := range st.Jails {
			if j.Name == rest[0] {
				keep = append(keep, j)
			}
		}
		if keep == nil {
			return &apiError{fmt.Errorf("no enabled jail named %q (bandctl status lists them)", rest[0]), exitNotFound}
		}
		st.Jails = keep
	}
	if *out == "json" {
		return printJSON(stdout, st)
	}
	if len(rest) == 0 {
		fmt.Fprintf(stdout, "band %s, up %s, firewall %s\n", st.Version, st.Uptime, st.Backend)
		switch {
		case st.State.Error != "":
			fmt.Fprintf(stdout, "state: %s: %s\n", st.State.Path, st.State.Error)
		case !st.State.Saved.IsZero():
			fmt.Fprintf(stdout, "state: %s, saved %s ago\n", st.State.Path, humanDuration(time.Since(st.State.Saved)))
		}
		fmt.Fprintln(stdout)
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SOURCE\tFILE\tLINES\tERRORS\tOFFSET\tLAG")
		for _, s := range st.Sources {
			if len(s.Files) == 0 {
				fmt.Fprintf(tw, "%s\t%s (waiting)\t%d\t%d\t-\t-\n", s.Name, s.Path, s.Lines, s.ParseErrors)
			}
			for _, f := range s.Files {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", s.Name, f.Path, s.Lines, s.ParseErrors, f.Offset, lag(f))
			}
		}
		tw.Flush()
		fmt.Fprintln(stdout)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JAIL\tKIND\tLIMIT\tBANTIME\tMATCHES\tBANNED\tTOTAL")
	for _, j := range st.Jails {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\n", j.Name, j.Kind, j.Limit, j.BanTime, j.Matches, j.ActiveBans, j.TotalBans)
	}
	return tw.Flush()
}

func lag(f control.FileInfo) string {
	if f.LagBytes == 0 {
		return "0"
	}
	return fmt.Sprintf("%dB/%.0fs", f.LagBytes, f.LagSeconds)
}

func cmdReload(ctx context.Context, args []string, global string, stdout, stderr io.Writer) error {
	fs := newFlagSet("reload", stderr)
	socket := socketFlag(fs, global)
	if rest, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usagef("reload: unexpected argument %q", rest[0])
	}
	if err := control.NewClient(*socket).Reload(ctx); err != nil {
		return remoteErr(err, *socket)
	}
	fmt.Fprintln(stdout, "configuration reloaded")
	return nil
}

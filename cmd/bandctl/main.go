// Command bandctl is band's operator CLI: it lists, bans and unbans through
// the daemon's control socket, and tests jails offline against log files.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes, distinct so scripts can branch.
const (
	exitOK     = 0
	exitError  = 1 // the command failed
	exitUsage  = 2 // bad arguments
	exitConfig = 3 // the configuration is invalid
)

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// configError is an invalid configuration.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "bandctl:", err)
	var ue *usageError
	var ce *configError
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.code
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "run 'bandctl help' for usage")
		return exitUsage
	case errors.As(err, &ce):
		return exitConfig
	}
	return exitError
}

const usage = `bandctl: control band, the Apache ban daemon

usage:
  bandctl [--socket PATH] COMMAND [flags]

  bandctl list [--jail J] [--addr A] [-o text|json]
        list active bans: address, jail, since, expiry, hits, origin, reason
  bandctl ban ADDR|PREFIX [--for 1h] [--jail NAME] [--reason TEXT] [--force]
        ban an address or prefix by hand (--force: even a whitelisted one)
  bandctl unban ADDR|PREFIX... | --all [--jail J]
        lift bans
  bandctl status [JAIL] [-o text|json]
        uptime, version, firewall, each source's lines, errors and lag, each jail's counts
  bandctl reload
        make band re-read its configuration
  bandctl completion bash|zsh
        print a shell completion script
  bandctl test [--config FILE] [--jail NAME]... [--format FMT] [--matches] [-o text|json] LOGFILE...
        replay log files offline through the jails and report matches and bans
  bandctl check [--config FILE]
        validate a configuration (default: the embedded one)
  bandctl version
        print the version
  bandctl help
        print this help

The control socket is /run/band/band.sock unless --socket or BAND_SOCKET says
otherwise. Exit codes: 0 ok, 1 failure, 2 bad usage, 3 invalid configuration,
4 band not running, 5 permission denied, 6 no such jail, 7 address whitelisted
or protected.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command given")
	}
	var global string
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && (strings.TrimLeft(args[0], "-") == "socket" || strings.HasPrefix(strings.TrimLeft(args[0], "-"), "socket=")) {
		if v, ok := strings.CutPrefix(strings.TrimLeft(args[0], "-"), "socket="); ok {
			global, args = v, args[1:]
		} else if len(args) > 1 {
			global, args = args[1], args[2:]
		} else {
			return usagef("--socket needs a path")
		}
	}
	if len(args) == 0 {
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "list", "ls":
		return cmdList(ctx, rest, global, stdout, stderr)
	case "ban":
		return cmdBan(ctx, rest, global, stdout, stderr)
	case "unban":
		return cmdUnban(ctx, rest, global, stdout, stderr)
	case "status":
		return cmdStatus(ctx, rest, global, stdout, stderr)
	case "reload":
		return cmdReload(ctx, rest, global, stdout, stderr)
	case "completion":
		return cmdCompletion(rest, stdout)
	case "test":
		return cmdTest(ctx, rest, stdout, stderr)
	case "check":
		return cmdCheck(rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "bandctl", version())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usagef("unknown command %q", cmd)
}

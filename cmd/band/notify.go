package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// notifier tells systemd (Type=notify) where band is: READY once sources and
// firewall are set up, RELOADING/READY around a reload, STOPPING on
// shutdown, and WATCHDOG from the main loop while it turns. Outside systemd
// (no NOTIFY_SOCKET) every call does nothing.
type notifier struct {
	log      *slog.Logger
	watchdog time.Duration // WATCHDOG_USEC, 0 when systemd does not watch band
}

func newNotifier(log *slog.Logger) *notifier {
	n := &notifier{log: log}
	wd, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("ignoring the systemd watchdog setting", "err", err)
	}
	n.watchdog = wd
	return n
}

func (n *notifier) send(state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		n.log.Warn("cannot notify systemd", "state", state, "err", err)
	}
}

// Ready says band is serving (after start, and after a reload).
func (n *notifier) Ready() { n.send(sd.SdNotifyReady) }

// Reloading says a reload began; Ready must follow.
func (n *notifier) Reloading() {
	// systemd ≥ 253 pairs RELOADING=1 with the monotonic time of the request.
	var ts unix.Timespec
	state := sd.SdNotifyReloading
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) == nil {
		state += fmt.Sprintf("\nMONOTONIC_USEC=%d", ts.Nano()/1000)
	}
	n.send(state)
}

// Stopping says band is shutting down.
func (n *notifier) Stopping() { n.send(sd.SdNotifyStopping) }

// Watchdog tells systemd band is alive.
func (n *notifier) Watchdog() { n.send(sd.SdNotifyWatchdog) }

// WatchdogTicker ticks at half the watchdog interval, as sd_watchdog_enabled(3)
// advises; the main loop calls Watchdog on each tick, so a wedged loop stops
// the pings and systemd restarts band. Without a watchdog the channel is nil
// (never ready). Call stop when done.
func (n *notifier) WatchdogTicker() (c <-chan time.Time, stop func()) {
	if n.watchdog <= 0 {
		return nil, func() {}
	}
	t := time.NewTicker(n.watchdog / 2)
	n.log.Debug("pinging the systemd watchdog", "every", n.watchdog/2)
	return t.C, t.Stop
}

// reloadNotified reloads between RELOADING=1 and READY=1; a failed reload
// keeps the running configuration, so band is ready again either way.
func (d *daemon) reloadNotified(ctx context.Context) error {
	d.notify.Reloading()
	defer d.notify.Ready()
	return d.reload(ctx)
}

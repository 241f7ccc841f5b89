package main

import (
	"log/slog"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/orphand/orphand/agent"
)

// notifier speaks sd_notify(3) to systemd when NOTIFY_SOCKET is set, and
// does nothing otherwise.
type notifier struct {
	log *slog.Logger
}

func newNotifier(log *slog.Logger) *notifier { return &notifier{log: log} }

func (n *notifier) notify(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("sd_notify failed", "err", err)
	}
}

// startWatchdog pings systemd's watchdog at half the interval it asked for
// (WATCHDOG_USEC), but only while the agent answers a health check: a
// wedged agent stops pinging and systemd restarts it. Without a watchdog
// nothing runs. It returns the function that stops the pinger and waits for
// it.
func (n *notifier) startWatchdog(a *agent.Agent) (stop func()) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn("ignoring a malformed watchdog setting", "err", err)
		return func() {}
	}
	if interval <= 0 {
		return func() {}
	}
	n.log.Info("systemd watchdog enabled", "interval", interval)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				if err := a.Ping(); err != nil {
					n.log.Warn("health check failed; not pinging the watchdog", "err", err)
					continue
				}
				n.notify("WATCHDOG=1")
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}

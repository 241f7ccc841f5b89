package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/orphand/orphand/internal/peercred"
	"github.com/orphand/orphand/proctree"
)

// hostFacts is what New probed about the agent's own process.
type hostFacts struct {
	pid     int
	uid     uint32           // the agent's effective uid: a per-user agent's user
	started time.Time        // when the process started (its metrics say so)
	peers   *peercred.Reader // reads who connected (SO_PEERCRED, SO_PEERPIDFD)
}

// forcePeerCredFallback makes New ignore SO_PEERPIDFD (tests of the
// fallback set it).
var forcePeerCredFallback bool

// probeHost checks once, at start, what the agent relies on, and logs which
// way peer identity will be read.
func probeHost(log *slog.Logger) (hostFacts, error) {
	h := hostFacts{pid: os.Getpid(), uid: uint32(os.Geteuid())}
	if runtime.GOOS != "linux" {
		return h, errors.New("agent: orphand runs on Linux only")
	}
	self, err := proctree.Open(h.pid)
	if err != nil {
		return h, fmt.Errorf("agent: pidfd_open does not work here (Linux 5.3 or later is needed): %w", err)
	}
	self.Close()
	h.started = processStart(h.pid)
	h.peers, err = peercred.NewReader(peercred.Options{NoPidfd: forcePeerCredFallback})
	if err != nil {
		return h, fmt.Errorf("agent: %w", err)
	}
	if h.peers.Pidfd() {
		log.Info("peer identity from SO_PEERPIDFD")
	} else {
		log.Info("SO_PEERPIDFD unavailable (Linux 6.5+ has it): peer identity from SO_PEERCRED pid + pidfd_open + start-time check")
	}
	return h, nil
}

// processStart is when pid started, from its start time in clock ticks
// after boot; now if that cannot be read.
func processStart(pid int) time.Time {
	now := time.Now()
	st, err := proctree.ReadStat(pid)
	boot := proctree.BootTicks()
	if err != nil || boot == 0 || st.StartTime > boot {
		return now
	}
	return now.Add(-time.Duration(boot-st.StartTime) * 10 * time.Millisecond) // USER_HZ is 100
}

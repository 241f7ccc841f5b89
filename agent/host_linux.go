package agent

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/orphand/orphand/internal/peercred"
	"github.com/orphand/orphand/proctree"
)

// forcePeerCredFallback makes New ignore SO_PEERPIDFD (tests of the
// fallback set it).
var forcePeerCredFallback bool

// probeHost checks once, at start, what the agent relies on, and logs which
// way peer identity will be read.
func probeHost(log *slog.Logger) (hostFacts, error) {
	h := hostFacts{pid: os.Getpid()}
	self, err := proctree.Open(h.pid)
	if err != nil {
		return h, fmt.Errorf("agent: pidfd_open does not work here (Linux 5.3 or later is needed): %w", err)
	}
	self.Close()
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

package agent

import (
	"fmt"
	"time"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
)

// ConnLimits bound what one connection may cost the agent: how long it may
// sit idle, how slowly it may send a request, and how big one may be.
// Exceeding one is answered with limit_exceeded (too_large for the size)
// naming the limit, and the connection is closed: nobody else is affected.
type ConnLimits struct {
	// IdleTimeout: a request must arrive within this of connecting or of
	// the previous response. Connections that wait on purpose are exempt:
	// a subscription (it only reads), and one that holds on=disconnect
	// groups (its close is their trigger), both as of its last response.
	// Zero disables it.
	IdleTimeout time.Duration
	// LineTimeout: once a request line has begun to arrive, all of it must
	// arrive within this — for every connection, subscribers included. It
	// stops a client from trickling bytes to hold a slot and a buffer.
	// Zero disables it.
	LineTimeout time.Duration
	// MaxRequest is the longest request line accepted, newline included:
	// between minRequest and ipc.MaxLine (the protocol's ceiling).
	MaxRequest int
}

// minRequest is the smallest MaxRequest allowed: every request but a long
// watch list fits in it.
const minRequest = 4 << 10

// DefaultConnLimits are the defaults of the orphand binary: long enough
// for a human typing into socat, short enough that a forgotten connection
// does not hold its slot for long.
func DefaultConnLimits() ConnLimits {
	return ConnLimits{IdleTimeout: 5 * time.Minute, LineTimeout: 10 * time.Second, MaxRequest: ipc.MaxLine}
}

// Validate reports the first limit that cannot work.
func (l ConnLimits) Validate() error {
	switch {
	case l.IdleTimeout < 0:
		return fmt.Errorf("agent: idle timeout %v is negative (0 disables it)", l.IdleTimeout)
	case l.LineTimeout < 0:
		return fmt.Errorf("agent: line timeout %v is negative (0 disables it)", l.LineTimeout)
	case l.MaxRequest < minRequest || l.MaxRequest > ipc.MaxLine:
		return fmt.Errorf("agent: max request %d must be between %d and %d bytes", l.MaxRequest, minRequest, ipc.MaxLine)
	}
	return nil
}

// targetUsageLocked is what the quotas on watch targets compare with: the
// targets uid's groups hold, and all groups together, reservations of
// registrations in flight included.
func (l *liveCounts) targetUsageLocked(uid uint32) policy.Usage {
	u := policy.Usage{Mine: l.targetsByUID[uid] + l.pendingTargetsByUID[uid], Total: l.pendingTargets}
	for _, n := range l.targetsByUID {
		u.Total += n
	}
	return u
}

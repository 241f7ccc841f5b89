package agent

import (
	"fmt"
	"syscall"
	"time"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
)

// Config tunes an Agent. The zero value is not meant to be used: start from
// [DefaultConfig] and change what you need.
type Config struct {
	// DefaultGrace is the time between the polite signal and SIGKILL for a
	// request that names no grace_ms. Zero means SIGKILL at once.
	DefaultGrace time.Duration
	// DefaultSignal is the polite signal for a request that names none.
	DefaultSignal syscall.Signal
	// Limits bound what callers can make the agent hold.
	Limits policy.Limits
	// Conn bounds one connection: read deadlines and the request size.
	Conn ConnLimits
	// DeadRetention is how long dead and released groups stay visible in
	// list and show; DeadMax bounds how many stay (oldest go first).
	DeadRetention time.Duration
	DeadMax       int
	// ParallelKills bounds the kills that run at once. A kill blocks in the
	// kernel (write to cgroup.kill) for tens of ms on big groups; others
	// queue behind it, never behind the watcher.
	ParallelKills int
	// SubscriberBuffer is how many events may wait for a slow subscriber
	// before it is dropped.
	SubscriberBuffer int
	// WriteTimeout bounds one response or event write to a client that does
	// not read; the connection is closed when it expires.
	WriteTimeout time.Duration
	// ShutdownGrace is how long Run, once its context ends, lets requests
	// and kills in flight finish before cancelling them.
	ShutdownGrace time.Duration
	// StuckAfter is how long a group may stay populated after SIGKILL
	// before the agent reports it stuck (an event, a warning naming each
	// remaining process, the stuck metrics). It goes on sending SIGKILL,
	// every StuckAfter, until the group is empty.
	StuckAfter time.Duration
	// Subreaper makes Run mark the process a child subreaper and reap
	// whatever lands on it. Only a process that owns its children's wait
	// (the orphand binary) should set it.
	Subreaper bool
	// OnReady, if set, is called once Run accepts connections.
	OnReady func()
	// User makes this a per-user agent: it serves only the uid it runs as
	// (its effective uid) and refuses every other caller, root included,
	// when it connects (policy.MayConnect). hello and status say "user"
	// in their mode.
	User bool
}

// DefaultConfig returns the configuration the orphand binary starts from.
func DefaultConfig() Config {
	return Config{
		DefaultGrace:     0,
		DefaultSignal:    syscall.SIGTERM,
		Limits:           policy.DefaultLimits(),
		Conn:             DefaultConnLimits(),
		DeadRetention:    10 * time.Minute,
		DeadMax:          1000,
		ParallelKills:    32,
		SubscriberBuffer: 1024,
		WriteTimeout:     10 * time.Second,
		ShutdownGrace:    5 * time.Second,
		StuckAfter:       10 * time.Second,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if err := c.Conn.Validate(); err != nil {
		return err
	}
	switch {
	case c.DefaultGrace < 0:
		return fmt.Errorf("agent: default grace %v is negative", c.DefaultGrace)
	case c.DefaultSignal <= 0 || c.DefaultSignal > 64:
		return fmt.Errorf("agent: default signal %d is not a signal", c.DefaultSignal)
	case c.DeadRetention < 0 || c.DeadMax < 0:
		return fmt.Errorf("agent: dead-group retention (%v, %d) must not be negative", c.DeadRetention, c.DeadMax)
	case c.ParallelKills < 1:
		return fmt.Errorf("agent: parallel kills %d must be at least 1", c.ParallelKills)
	case c.SubscriberBuffer < 1:
		return fmt.Errorf("agent: subscriber buffer %d must be at least 1", c.SubscriberBuffer)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("agent: write timeout %v must be positive", c.WriteTimeout)
	case c.ShutdownGrace < 0:
		return fmt.Errorf("agent: shutdown grace %v is negative", c.ShutdownGrace)
	case c.StuckAfter <= 0:
		return fmt.Errorf("agent: stuck_after %v must be positive", c.StuckAfter)
	}
	return nil
}

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

package agent

import (
	"fmt"
	"syscall"
	"time"

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
	// Subreaper makes Run mark the process a child subreaper and reap
	// whatever lands on it. Only a process that owns its children's wait
	// (the orphand binary) should set it.
	Subreaper bool
	// OnReady, if set, is called once Run accepts connections.
	OnReady func()
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
	}
	return nil
}

package family

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults for [Options].
const (
	DefaultMaxKeySize   = 4 << 10
	DefaultMaxValueSize = 64 << 20
	DefaultMemoryLimit  = 1 << 30
	DefaultMaxConns     = 1024
	DefaultHelloTimeout = 10 * time.Second
	DefaultStallTimeout = 30 * time.Second
)

// Options configures a [Master]. The zero value is ready to use.
type Options struct {
	// Dir is where the master's private (0700) socket directory is made.
	// Empty means os.TempDir(). The socket path must fit in 107 bytes.
	Dir string

	// Logger receives refused connections and protocol violations. Nil
	// discards them.
	Logger *slog.Logger

	// DescendantsOnly refuses peers that are not descendants of the
	// master's process (by parent chain, at connect time), on top of the
	// uid check that always applies. A descendant whose parent died before
	// it connected has been re-parented and no longer counts, unless the
	// master is its child subreaper.
	DescendantsOnly bool

	// MaxKeySize bounds keys and child names, in bytes (default 4 KiB, at
	// most MaxKeyLimit).
	MaxKeySize int

	// MaxValueSize bounds one value, in bytes (default 64 MiB, at most
	// MaxValueLimit). A child sending more is disconnected.
	MaxValueSize int64

	// MemoryLimit bounds the bytes the master holds for children: values
	// and keys received and not yet popped or cleared, values being
	// received, and a small overhead per child and per entry. A frame that
	// would exceed it disconnects its child with a limit_exceeded error.
	// Default: 1 GiB, or twice MaxValueSize if that is more.
	MemoryLimit int64

	// MaxConns bounds open connections, whether or not they have said
	// hello (default 1024). Connections past it are refused at once.
	MaxConns int

	// HelloTimeout is how long a new connection has to send a whole hello
	// frame (default 10 s).
	HelloTimeout time.Duration

	// StallTimeout drops a child that stops sending in the middle of a
	// frame for this long (default 30 s; the check may fire from 7/8 of
	// it). Its partial frame is discarded.
	StallTimeout time.Duration

	// IdleTimeout, when positive, drops a child that sends nothing at all
	// for this long (the check may fire from 7/8 of it). Zero, the
	// default, lets children stay connected silently for as long as they
	// run, as the seed's children do.
	IdleTimeout time.Duration

	// noPeerPidfd forces the fallback without SO_PEERPIDFD (tests).
	noPeerPidfd bool
}

// withDefaults returns o with zero fields set to their defaults, or an error
// naming the field that is out of range.
func (o Options) withDefaults() (Options, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxKeySize == 0 {
		o.MaxKeySize = DefaultMaxKeySize
	}
	if o.MaxKeySize < 1 || o.MaxKeySize > MaxKeyLimit {
		return o, fmt.Errorf("family: Options.MaxKeySize %d is outside 1..%d", o.MaxKeySize, MaxKeyLimit)
	}
	if o.MaxValueSize == 0 {
		o.MaxValueSize = DefaultMaxValueSize
	}
	if o.MaxValueSize < 0 || o.MaxValueSize > MaxValueLimit {
		return o, fmt.Errorf("family: Options.MaxValueSize %d is outside 0..%d", o.MaxValueSize, int64(MaxValueLimit))
	}
	if o.MemoryLimit == 0 {
		o.MemoryLimit = max(DefaultMemoryLimit, 2*o.MaxValueSize)
	}
	if o.MemoryLimit < o.MaxValueSize {
		return o, fmt.Errorf("family: Options.MemoryLimit %d is below MaxValueSize %d: no value that size could ever be received", o.MemoryLimit, o.MaxValueSize)
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxConns < 1 {
		return o, fmt.Errorf("family: Options.MaxConns %d must be positive", o.MaxConns)
	}
	if o.HelloTimeout == 0 {
		o.HelloTimeout = DefaultHelloTimeout
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	if o.HelloTimeout < 0 || o.StallTimeout < 0 || o.IdleTimeout < 0 {
		return o, fmt.Errorf("family: Options timeouts must not be negative")
	}
	return o, nil
}

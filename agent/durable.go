package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/orphand/orphand/agent/internal/fdstoreprobe"
	"github.com/orphand/orphand/agent/state"
	"github.com/orphand/orphand/internal/sdfdstore"
	"github.com/orphand/orphand/proctree"
)

// Durable is what lets a restarted agent take over the groups of the agent
// before it: the records in the state directory and, under systemd, the
// pidfds kept in systemd's fd store. Make one with [OpenDurable] (what the
// orphand binary does) or [NewDurable], give it to [New] with
// [WithDurable], and Close it after Run has returned. An agent without one
// keeps its groups in memory only.
type Durable struct {
	store  *state.Store
	fds    FDStore   // nil: no fd store
	closer io.Closer // the fd store's connection, closed by Close
	log    *slog.Logger

	boot string // this boot's id (proctree.BootID)

	mu      sync.Mutex
	handed  []*os.File        // pidfds systemd passed back, until restore takes them
	records map[string][]byte // the records read at open, until restore takes them

	failures atomic.Int64 // fd store sends that failed
}

// FDStore is systemd's file descriptor store, as the agent uses it
// (internal/sdfdstore's Notifier implements it): Store hands systemd
// duplicates of fds to keep under name across a restart, Remove drops
// every fd kept under name.
type FDStore interface {
	Store(name string, fds ...int) error
	Remove(name string) error
}

// DurableConfig describes a Durable.
type DurableConfig struct {
	// Dir is the state directory (created 0700 if missing; locked while
	// open, so that two agents never share one).
	Dir string
	// FDStore is systemd's fd store, or nil.
	FDStore FDStore
	// Handed are the pidfds the fd store passed back at start, each
	// *os.File named as it was stored; the Durable owns them.
	Handed []*os.File
	// Logger receives what the store finds; nil discards it.
	Logger *slog.Logger
}

// NewDurable opens the state directory cfg names and reads its records.
func NewDurable(cfg DurableConfig) (*Durable, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := state.Open(cfg.Dir, log)
	var recs map[string][]byte
	if err == nil {
		if recs, err = st.Records(); err != nil {
			_ = st.Close()
		}
	}
	if err != nil {
		for _, f := range cfg.Handed {
			f.Close()
		}
		return nil, err
	}
	return &Durable{store: st, fds: cfg.FDStore, log: log, handed: cfg.Handed, records: recs, boot: proctree.BootID()}, nil
}

// OpenDurable is NewDurable as the orphand binary uses it: it takes the
// pidfds systemd passed back ($LISTEN_FDNAMES; the socket unit's listener is
// left for the caller's socket activation), opens the fd store when
// $NOTIFY_SOCKET is set and the unit has one (FileDescriptorStoreMax=),
// logs what it found, and opens the state directory dir. Call it before
// taking the socket-activation listener.
func OpenDurable(ctx context.Context, dir string, log *slog.Logger) (*Durable, error) {
	handed, err := sdfdstore.Take(IsStoredFDName)
	if err != nil {
		log.Warn("taking back the pidfds systemd kept failed; groups are found again by pid and start time", "err", err)
	}
	cfg := DurableConfig{Dir: dir, Handed: handed, Logger: log}
	var closer io.Closer
	n, err := sdfdstore.Open()
	switch {
	case errors.Is(err, sdfdstore.ErrNoSocket):
		log.Info("fd store not in use: not started by systemd ($NOTIFY_SOCKET unset); after a restart, groups are found again by pid and start time")
	case err != nil:
		log.Warn("fd store not in use: cannot reach systemd's notify socket", "err", err)
	default:
		max, source, perr := fdstoreprobe.Max(ctx)
		switch {
		case len(handed) == 0 && perr != nil:
			// A notify socket without a systemd to ask (a test harness,
			// another supervisor): pidfds sent there would be lost.
			log.Info("fd store not in use: cannot ask systemd whether this unit has one", "err", perr)
			_ = n.Close()
		case len(handed) == 0 && max == 0:
			log.Warn("fd store not in use: the unit has FileDescriptorStoreMax=0 (set it, e.g. to 16384, to keep spawners' pidfds across restarts)", "source", source)
			_ = n.Close()
		default:
			log.Info("fd store in use: spawners' and watch targets' pidfds are kept by systemd across restarts",
				"max", max, "source", source, "handed_back", len(handed))
			cfg.FDStore, closer = n, n
		}
	}
	d, err := NewDurable(cfg)
	if err != nil {
		if closer != nil {
			closer.Close()
		}
		return nil, fmt.Errorf("agent: %w", err)
	}
	d.closer = closer
	return d, nil
}

// Close closes the state directory, the fd store's connection and any
// handed-back pidfd the agent did not take.
func (d *Durable) Close() error {
	d.mu.Lock()
	handed := d.handed
	d.handed = nil
	d.mu.Unlock()
	for _, f := range handed {
		f.Close()
	}
	if d.closer != nil {
		d.closer.Close()
	}
	return d.store.Close()
}

// takeHanded returns the handed-back pidfds, once.
// takeRecords returns the records read at open, once: restore is their
// only reader, and the agent's registry holds them from then on.
func (d *Durable) takeRecords() map[string][]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.records
	d.records = nil
	return r
}

func (d *Durable) takeHanded() []*os.File {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.handed
	d.handed = nil
	return h
}

// Option changes how New makes an Agent.
type Option func(*Agent)

// WithDurable makes the agent persist its groups in d and take over, when
// Run starts, the groups d's records describe.
func WithDurable(d *Durable) Option {
	return func(a *Agent) { a.durable = d }
}

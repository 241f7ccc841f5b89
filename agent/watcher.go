package agent

import (
	"errors"

	"github.com/orphand/orphand/proctree"
)

// exitWatcher tells the agent when a spawner exits. onExit runs once, on
// the watcher's goroutine, and must not block: the agent only moves the
// group to killing there and hands the kill to a goroutine of its own.
// proctree.Watcher implements it with one epoll instance and one goroutine
// for every spawner, and holds its own duplicate of each pidfd (the agent
// closes its handle once the watch is in place: one fd per group).
type exitWatcher interface {
	Add(p *proctree.Process, onExit func()) (cancel func(), err error)
	Close() error
}

func newExitWatcher() (exitWatcher, error) { return proctree.NewWatcher() }

// watcherClosed reports the error Add returns once the watcher is closed
// (the agent is stopping).
func watcherClosed(err error) bool { return errors.Is(err, proctree.ErrWatcherClosed) }

package agent

import (
	"errors"
	"sync"

	"github.com/orphand/orphand/proctree"
)

// exitWatcher tells the agent when a spawner exits. onExit runs once, on
// the watcher's goroutine, and must not block: the agent only moves the
// group to killing there and hands the kill to a goroutine of its own.
// proctree.Watcher implements it with one epoll instance for every spawner.
type exitWatcher interface {
	Add(p *proctree.Process, onExit func()) (cancel func(), err error)
	Close() error
}

// errWatcherClosed is returned by Add after Close.
var errWatcherClosed = errors.New("agent: spawner watcher closed")

// doneWatcher is an interim exitWatcher with a goroutine per process, used
// until proctree.Watcher is available.
type doneWatcher struct {
	mu     sync.Mutex
	closed bool
	quit   chan struct{}
	wg     sync.WaitGroup
}

func newExitWatcher() (exitWatcher, error) {
	return &doneWatcher{quit: make(chan struct{})}, nil
}

func (w *doneWatcher) Add(p *proctree.Process, onExit func()) (func(), error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, errWatcherClosed
	}
	cancelled := make(chan struct{})
	var once sync.Once
	done := p.Done() // here, not on the goroutine: the caller may Close p once cancel returns
	w.wg.Go(func() {
		select {
		case <-done:
			if p.Exited() {
				onExit()
			}
		case <-cancelled:
		case <-w.quit:
		}
	})
	return func() { once.Do(func() { close(cancelled) }) }, nil
}

func (w *doneWatcher) Close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.quit)
	}
	w.mu.Unlock()
	w.wg.Wait()
	return nil
}

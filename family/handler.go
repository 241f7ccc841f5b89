package family

import (
	"context"
	"fmt"
)

// The data handler is the seed's spawn_data_handler: the seed forks a
// process that gathers children's data and copies it to the master on
// request. Here it is a goroutine that owns the event stream and gathers
// into a state of its own; Collect moves that state (pointers, not bytes)
// into the one the read methods see.

type handler struct {
	requests chan *collectReq
	cancels  chan *collectReq
	exited   chan struct{}
}

// collectReq is one Collect call waiting for the handler.
type collectReq struct {
	mode  BlockMode
	stop  bool        // !keepRunning: the handler ends after this hand-over
	reply chan *state // buffered: the handler never blocks on it
}

// StartDataHandler starts gathering children's data in the background,
// from children that connected before or after the call. Fetch it with
// [Master.Collect]; ProcessChildData is refused while the handler runs.
func (m *Master) StartDataHandler() error {
	m.modeMu.Lock()
	defer m.modeMu.Unlock()
	select {
	case <-m.done:
		return ErrClosed
	default:
	}
	if m.handler != nil {
		return fmt.Errorf("family: StartDataHandler: %w", ErrHandlerRunning)
	}
	if m.processing {
		return ErrBusy
	}
	h := &handler{
		requests: make(chan *collectReq),
		cancels:  make(chan *collectReq),
		exited:   make(chan struct{}),
	}
	m.handler = h
	m.wg.Add(1)
	go m.runHandler(h)
	return nil
}

// Collect hands what the data handler gathered since the last Collect to
// the master's state, in one step: values it received overwrite older
// ones, queue elements are appended, children it saw end are finished.
// The handler's copy is then empty.
//
// mode says what must have been gathered since the last Collect before the
// hand-over: BlockNever, nothing (what has arrived is taken at once);
// BlockUntilChild, a child's disconnection; BlockUntilData, a value, a
// queue element or a disconnection. Unlike the seed, which waits for a new
// event after the request, an event that arrived before the call counts:
// the seed's way can wait forever for data that is already there.
//
// With keepRunning false the handler stops after the hand-over; unlike the
// seed, the master keeps listening, and ProcessChildData or a new
// StartDataHandler take over from there with nothing lost. If ctx ends
// first, nothing is handed over and the handler keeps gathering.
func (m *Master) Collect(ctx context.Context, keepRunning bool, mode BlockMode) error {
	if !mode.valid() {
		return fmt.Errorf("family: Collect: unknown %v", mode)
	}
	m.collectMu.Lock()
	defer m.collectMu.Unlock()
	m.modeMu.Lock()
	h := m.handler
	m.modeMu.Unlock()
	if h == nil {
		select {
		case <-m.done:
			return ErrClosed
		default:
			return ErrNoHandler
		}
	}
	r := &collectReq{mode: mode, stop: !keepRunning, reply: make(chan *state, 1)}
	select {
	case h.requests <- r:
	case <-h.exited:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("family: Collect(%v): %w", mode, ctx.Err())
	}
	select {
	case st := <-r.reply:
		m.take(h, r, st)
		return nil
	case <-ctx.Done():
		// Withdraw the request. The handler answers requests in order, so
		// once it has taken the withdrawal, a reply is either already in
		// the buffer or never coming.
		select {
		case h.cancels <- r:
		case <-h.exited:
		}
		err := fmt.Errorf("family: Collect(%v): %w", mode, ctx.Err())
		return m.takeIfReplied(h, r, err)
	case <-h.exited:
		return m.takeIfReplied(h, r, ErrClosed)
	}
}

func (m *Master) takeIfReplied(h *handler, r *collectReq, err error) error {
	select {
	case st := <-r.reply:
		m.take(h, r, st)
		return nil
	default:
		return err
	}
}

// take merges a handed-over state into the view and, for a stopping
// request, waits for the handler to end.
func (m *Master) take(h *handler, r *collectReq, st *state) {
	m.mu.Lock()
	m.view.merge(st)
	m.mu.Unlock()
	if r.stop {
		<-h.exited
		m.modeMu.Lock()
		m.handler = nil
		m.modeMu.Unlock()
	}
}

// runHandler is the handler goroutine: the only consumer of m.events while
// it runs, and the only user of its state.
func (m *Master) runHandler(h *handler) {
	defer m.wg.Done()
	defer close(h.exited)
	g := gatherer{st: newState(&m.budget)}
	var pending *collectReq
	for {
		select {
		case e := <-m.events:
			g.apply(e)
		case r := <-h.requests:
			// Take what is already queued, so BlockNever sees it.
			for n := len(m.events); n > 0; n-- {
				g.apply(<-m.events)
			}
			pending = r
		case r := <-h.cancels:
			if pending == r {
				pending = nil
			}
			continue
		case <-m.done:
			return
		}
		if pending != nil && g.satisfies(pending.mode) {
			pending.reply <- g.handOver(&m.budget)
			if pending.stop {
				return
			}
			pending = nil
		}
	}
}

// gatherer is the handler's state and what it saw since the last hand-over.
type gatherer struct {
	st              *state
	sawData, sawBye bool
}

func (g *gatherer) apply(e event) {
	switch g.st.apply(e) {
	case PacketData:
		g.sawData = true
	case PacketChildDisconnected:
		g.sawBye = true
	}
}

func (g *gatherer) satisfies(mode BlockMode) bool {
	switch mode {
	case BlockUntilChild:
		return g.sawBye
	case BlockUntilData:
		return g.sawBye || g.sawData
	}
	return true
}

func (g *gatherer) handOver(b *budget) *state {
	st := g.st
	*g = gatherer{st: newState(b)}
	return st
}

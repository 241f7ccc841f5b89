package agent

import (
	"strconv"
	"time"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/policy"
)

// subscriber streams events to one connection. The publisher never blocks
// on it: events go into a bounded buffer, and a subscriber whose buffer is
// full is dropped with a final error line.
type subscriber struct {
	c       *conn
	caller  policy.Caller
	group   string         // only this group's events; "" for all the caller may see
	events  chan ipc.Event // buffered; the publisher sends without blocking
	dropped chan struct{}  // closed by the publisher when events overflowed
	quit    chan struct{}  // closed by the connection's goroutine when it ends
	done    chan struct{}  // closed when the writer goroutine has ended
	started bool           // owned by the connection's goroutine
}

// Event reasons (ipc.Event.Reason) of a killing event.
const (
	reasonSpawnerExited = "spawner_exited"
	reasonDisconnect    = "disconnect"
	reasonRequest       = "request"
	reasonParent        = "parent"
)

// addSubscriber makes c's connection an event stream. Events published from
// now on are buffered; the writer starts once the ok response is written.
func (a *Agent) addSubscriber(c *conn, group string) *subscriber {
	s := &subscriber{
		c:       c,
		caller:  c.peer.caller,
		group:   group,
		events:  make(chan ipc.Event, a.cfg.SubscriberBuffer),
		dropped: make(chan struct{}),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	a.mu.Lock()
	a.subs[s] = struct{}{}
	a.mu.Unlock()
	c.sub = s
	return s
}

// publishLocked hands ev about g to every subscriber that may see it.
func (a *Agent) publishLocked(g *group, ev ipc.Event) {
	ev.Group = g.ID
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	for s := range a.subs {
		if s.group != "" && s.group != g.ID || !policy.MaySee(s.caller, g.OwnerUID) {
			continue
		}
		select {
		case s.events <- ev:
		default:
			delete(a.subs, s)
			close(s.dropped)
		}
	}
}

// start runs the writer goroutine; stop ends it. Both are called by the
// connection's goroutine, which thereby owns the writer.
func (s *subscriber) start() {
	s.started = true
	go s.writeLoop()
}

func (s *subscriber) stop() {
	a := s.c.a
	a.mu.Lock()
	delete(a.subs, s)
	a.mu.Unlock()
	close(s.quit)
	if s.started {
		<-s.done
	}
}

func (s *subscriber) writeLoop() {
	defer close(s.done)
	for {
		// A drop takes precedence over buffered events: the client is
		// behind, and more lines would only delay the error it must see.
		select {
		case <-s.dropped:
			s.drop()
			return
		case <-s.quit:
			return
		default:
		}
		select {
		case ev := <-s.events:
			if !s.c.write(ev) {
				return
			}
		case <-s.dropped:
			s.drop()
			return
		case <-s.quit:
			return
		}
	}
}

func (s *subscriber) drop() {
	n := s.c.a.cfg.SubscriberBuffer
	s.c.log.Warn("dropping a subscriber that does not keep up", "buffer", n)
	s.c.write(ipc.Response{Error: &ipc.Error{
		Code:    ipc.CodeLimitExceeded,
		Message: "event subscriber too slow: more than " + strconv.Itoa(n) + " events waiting; the subscription ends (read events faster, or subscribe to one group)",
		Limit:   ipc.LimitSubscriberBuffer,
	}})
	s.c.nc.Close() // ends the connection's reader too
}

package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"sync/atomic"
)

// Subscribe asks the agent for its events — of one group, or of every group
// the caller may see when group is "" — and returns them as an iterator.
//
// The iterator is the whole API: it yields each event with a nil error, and
// ends after yielding one non-nil error — ctx's error once ctx is done, an
// [*Error] when the agent ends the stream (for example because this
// subscriber read too slowly), or an error wrapping [ErrDisconnected]. No
// goroutine runs behind it: events wait in the socket until the loop reads
// them, so read promptly — the agent drops subscribers that fall behind.
//
// From the subscription on, the connection carries only events: other
// requests on this Client fail with [ErrStreaming]. Close the Client when
// done; the iterator can be ranged over once.
func (c *Client) Subscribe(ctx context.Context, group string) (iter.Seq2[Event, error], error) {
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	defer c.release()
	if c.streaming {
		return nil, fmt.Errorf("subscribe request: %w", ErrStreaming)
	}
	if _, err := c.roundTripLocked(ctx, Request{Op: OpSubscribe, Group: group}); err != nil {
		return nil, err
	}
	c.streaming = true
	var used atomic.Bool
	return func(yield func(Event, error) bool) {
		if used.Swap(true) {
			yield(Event{}, errors.New("subscription: the event iterator can be ranged over only once"))
			return
		}
		for {
			ev, err := c.nextEvent(ctx)
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}, nil
}

// streamLine is one line of an event stream: an event, or the error line the
// agent sends before it ends the stream.
type streamLine struct {
	Event
	OK    *bool  `json:"ok"`
	Error *Error `json:"error"`
}

// nextEvent reads the next event, skipping lines it does not know (a later
// agent may interleave other kinds).
func (c *Client) nextEvent(ctx context.Context) (Event, error) {
	if err := c.acquire(ctx); err != nil {
		return Event{}, err
	}
	defer c.release()
	if c.broken != nil {
		return Event{}, fmt.Errorf("subscription: %w", c.broken)
	}
	undo := c.watchContext(ctx)
	defer undo()
	for {
		raw, err := c.readLineLocked()
		if err != nil {
			return Event{}, c.ioError(ctx, OpSubscribe, "read event", err)
		}
		var l streamLine
		if err := json.Unmarshal(raw, &l); err != nil {
			c.broken = fmt.Errorf("%w: undecodable event line: %w", ErrOutOfSync, err)
			return Event{}, fmt.Errorf("subscription: agent sent %w", c.broken)
		}
		if l.Error != nil {
			c.broken = ErrDisconnected
			return Event{}, l.Error
		}
		if l.Event.Event != "" {
			return l.Event, nil
		}
	}
}

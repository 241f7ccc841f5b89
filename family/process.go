package family

import (
	"context"
	"fmt"
)

// Packet says what the last event [Master.ProcessChildData] processed was
// (the seed's FLAG_PACKET_* values).
type Packet int

const (
	// PacketNoError: nothing was pending (only with BlockNever).
	PacketNoError Packet = iota
	// PacketChildHello: a child connected and said hello.
	PacketChildHello
	// PacketData: a child's value or queue element was received.
	PacketData
	// PacketChildDisconnected: a child that had said hello ended, cleanly
	// or not. Connections that never said hello are not children and
	// never produce it.
	PacketChildDisconnected
)

func (p Packet) String() string {
	switch p {
	case PacketNoError:
		return "no-error"
	case PacketChildHello:
		return "child-hello"
	case PacketData:
		return "data"
	case PacketChildDisconnected:
		return "child-disconnected"
	}
	return fmt.Sprintf("Packet(%d)", int(p))
}

// BlockMode says how long [Master.ProcessChildData] and [Master.Collect]
// wait (the seed's BLOCK_* values).
type BlockMode int

const (
	// BlockNever processes what is pending and returns.
	BlockNever BlockMode = iota
	// BlockUntilChild waits until a child disconnects.
	BlockUntilChild
	// BlockUntilData waits until a child sends data or disconnects.
	BlockUntilData
)

func (b BlockMode) String() string {
	switch b {
	case BlockNever:
		return "never"
	case BlockUntilChild:
		return "until-child"
	case BlockUntilData:
		return "until-data"
	}
	return fmt.Sprintf("BlockMode(%d)", int(b))
}

// satisfiedBy reports whether packet p ends a wait in mode b.
func (b BlockMode) satisfiedBy(p Packet) bool {
	switch b {
	case BlockUntilChild:
		return p == PacketChildDisconnected
	case BlockUntilData:
		return p == PacketChildDisconnected || p == PacketData
	}
	return false
}

func (b BlockMode) valid() bool { return b >= BlockNever && b <= BlockUntilData }

// ProcessChildData takes what children have sent into the master's state,
// in the order they sent it, and returns the kind of the last event
// processed. With BlockNever it processes what has arrived and returns
// PacketNoError if nothing had; unlike the seed's, it never waits for the
// rest of a half-sent frame (frames are read by other goroutines). With
// BlockUntilChild it returns after processing a disconnection; with
// BlockUntilData, after a value, a queue element or a disconnection.
// Events after that one stay pending.
//
// Until it is called, children that outpace the master block in their
// writes, as in the seed. It fails with ErrHandlerRunning while the data
// handler runs, ErrBusy during another call, ErrClosed after Close, and
// with ctx's error when ctx ends first (what was processed is kept).
func (m *Master) ProcessChildData(ctx context.Context, mode BlockMode) (Packet, error) {
	if !mode.valid() {
		return PacketNoError, fmt.Errorf("family: ProcessChildData: unknown %v", mode)
	}
	if err := m.beginProcessing(); err != nil {
		return PacketNoError, err
	}
	defer m.endProcessing()

	last := PacketNoError
	if mode == BlockNever {
		// Take only what is queued now, so a flood cannot keep us here.
		for n := len(m.events); n > 0; n-- {
			select {
			case e := <-m.events:
				last = m.applyVisible(e)
			default:
				return last, nil
			}
		}
		return last, nil
	}
	for {
		select {
		case e := <-m.events:
			last = m.applyVisible(e)
			if mode.satisfiedBy(last) {
				return last, nil
			}
		case <-ctx.Done():
			return last, fmt.Errorf("family: ProcessChildData(%v): %w", mode, ctx.Err())
		case <-m.done:
			return last, ErrClosed
		}
	}
}

func (m *Master) applyVisible(e event) Packet {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.view.apply(e)
}

func (m *Master) beginProcessing() error {
	m.modeMu.Lock()
	defer m.modeMu.Unlock()
	select {
	case <-m.done:
		return ErrClosed
	default:
	}
	if m.handler != nil {
		return ErrHandlerRunning
	}
	if m.processing {
		return ErrBusy
	}
	m.processing = true
	return nil
}

func (m *Master) endProcessing() {
	m.modeMu.Lock()
	m.processing = false
	m.modeMu.Unlock()
}

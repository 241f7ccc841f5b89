package compat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// RecordSize is the size of one record on the wire.
const RecordSize = 12

// Action is a record's third field.
type Action uint32

// The actions of the protocol (orphand.h of the original daemon).
const (
	ActionRegister   Action = 1 // kill child when parent dies
	ActionUnregister Action = 2 // forget that pair: the parent has waited for the child
	ActionPing       Action = 3 // the daemon writes the same 12 bytes back
)

func (a Action) String() string {
	switch a {
	case ActionRegister:
		return "REGISTER"
	case ActionUnregister:
		return "UNREGISTER"
	case ActionPing:
		return "PING"
	}
	return fmt.Sprintf("action %d", uint32(a))
}

// Record is one message: three unsigned 32-bit integers in host byte
// order.
type Record struct {
	Parent uint32
	Child  uint32
	Action Action
}

// MaxPid is the kernel's PID_MAX_LIMIT on 64-bit: no process has a larger
// pid. A field above it (0xffffffff is -1 to a C client whose fork failed)
// never reaches a system call, where it would be read as a negative pid.
const MaxPid = 1 << 22

// Errors of [Record.Check].
var (
	// ErrUnknownAction: not 1, 2 or 3. The connection is then closed: the
	// stream is out of step (a byte lost or added) or not this protocol.
	ErrUnknownAction = errors.New("unknown action")
	// ErrBadPid: a REGISTER or UNREGISTER with a zero pid, or one above
	// MaxPid. Only that record is dropped.
	ErrBadPid = errors.New("pid is not a process id")
)

// Decode reads a record from b, which must hold at least RecordSize bytes.
func Decode(b []byte) Record {
	return Record{
		Parent: binary.NativeEndian.Uint32(b[0:4]),
		Child:  binary.NativeEndian.Uint32(b[4:8]),
		Action: Action(binary.NativeEndian.Uint32(b[8:12])),
	}
}

// Append appends r's 12 bytes to b.
func (r Record) Append(b []byte) []byte {
	b = binary.NativeEndian.AppendUint32(b, r.Parent)
	b = binary.NativeEndian.AppendUint32(b, r.Child)
	return binary.NativeEndian.AppendUint32(b, uint32(r.Action))
}

// Check reports a record the server must not hand on: an unknown action
// (wrapping ErrUnknownAction), or a REGISTER or UNREGISTER naming a pid no
// process can have (ErrBadPid). A PING is echoed whatever its pids.
func (r Record) Check() error {
	switch r.Action {
	case ActionPing:
		return nil
	case ActionRegister, ActionUnregister:
	default:
		return fmt.Errorf("%w %d (1 REGISTER, 2 UNREGISTER, 3 PING)", ErrUnknownAction, uint32(r.Action))
	}
	for _, f := range []struct {
		name string
		pid  uint32
	}{{"parent", r.Parent}, {"child", r.Child}} {
		if f.pid == 0 || f.pid > MaxPid {
			return fmt.Errorf("%s %s %d: %w (0 < pid <= %d)", r.Action, f.name, f.pid, ErrBadPid, MaxPid)
		}
	}
	return nil
}

// ShortError is a stream that ended in the middle of a record: a short
// record, or bytes trailing the last whole one.
type ShortError struct {
	N int // bytes of the unfinished record
}

func (e *ShortError) Error() string {
	return fmt.Sprintf("the stream ended %d bytes into a %d-byte record", e.N, RecordSize)
}

// Reader cuts a byte stream into records. It is not safe for concurrent
// use.
type Reader struct {
	r   io.Reader
	buf [RecordSize]byte
	n   int // bytes of the next record already read

	// BeforeRead, when set, is called before each read with the bytes of
	// the unfinished record already buffered (0 between records): a
	// connection starts its record clock when a record has begun.
	BeforeRead func(pending int)
}

// NewReader reads records from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Next returns the next record. At the end of the stream it returns io.EOF
// if the stream ended between records, else a *ShortError. Any other error
// is the underlying reader's (a deadline, a reset); the bytes of the record
// begun stay buffered ([Reader.Pending]).
func (r *Reader) Next() (Record, error) {
	for r.n < RecordSize {
		if r.BeforeRead != nil {
			r.BeforeRead(r.n)
		}
		m, err := r.r.Read(r.buf[r.n:])
		r.n += m
		if r.n == RecordSize {
			break
		}
		if errors.Is(err, io.EOF) {
			if r.n == 0 {
				return Record{}, io.EOF
			}
			return Record{}, &ShortError{N: r.n}
		}
		if err != nil {
			return Record{}, err
		}
	}
	r.n = 0
	return Decode(r.buf[:]), nil
}

// Pending is the number of bytes of a record begun but not finished.
func (r *Reader) Pending() int { return r.n }

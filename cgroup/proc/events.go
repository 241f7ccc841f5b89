package proc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The proc connector's wire format: netlink messages (netlink(7)) each
// carrying a connector message (include/uapi/linux/connector.h) whose data
// is a proc event (include/uapi/linux/cn_proc.h). All integers are in the
// host's byte order.
const (
	nlmsgHdrLen  = 16 // struct nlmsghdr
	nlmsgNoop    = 1
	nlmsgError   = 2
	nlmsgDone    = 3
	nlmsgOverrun = 4
	cnMsgLen     = 20 // struct cn_msg without its data
	cnIdxProc    = 1  // CN_IDX_PROC
	cnValProc    = 1  // CN_VAL_PROC
	mcastListen  = 1  // PROC_CN_MCAST_LISTEN
	mcastIgnore  = 2  // PROC_CN_MCAST_IGNORE
	evHeaderLen  = 16 // what, cpu, timestamp_ns of struct proc_event

	evNone = 0x00000000 // PROC_EVENT_NONE: the acknowledgement of a LISTEN or IGNORE
	evFork = 0x00000001 // PROC_EVENT_FORK: a process or thread was created
	evExit = 0x80000000 // PROC_EVENT_EXIT: a thread exited

	// maxMsgLen bounds one netlink message: a proc event is under 64
	// bytes, so anything much longer is not one.
	maxMsgLen = 4096
)

// procEvent is one proc connector event, reduced to what tracking needs.
type procEvent struct {
	what uint32
	// ack is the connector message's ack field. The kernel answers a
	// LISTEN or IGNORE sent with ack n by an evNone event with ack n+1.
	ack uint32
	// err is an evNone event's error (0: the request was accepted).
	err uint32
	// nsec is when the event happened: CLOCK_MONOTONIC, in nanoseconds.
	nsec uint64
	// Fork: the new task (pid; tgid is its process, pid == tgid for a new
	// process, pid != tgid for a new thread) and its parent (ppid, ptgid).
	// Exit: the exiting thread (pid) of process tgid, and its parent.
	pid, tgid   int
	ppid, ptgid int
}

// errBadMessage is wrapped by every error parseMessages returns for
// malformed input.
var errBadMessage = errors.New("malformed proc connector message")

// errOverrun is returned for an NLMSG_OVERRUN message: data was lost.
var errOverrun = errors.New("proc connector: netlink overrun")

// parseMessages decodes the netlink messages of one datagram read from a
// proc connector socket and calls fn with each proc event, in order.
// Connector messages that are not the proc connector's are skipped. An
// NLMSG_ERROR message is returned as an error wrapping its errno.
func parseMessages(r io.Reader, fn func(procEvent)) error {
	var p msgParser
	return p.parse(r, fn)
}

// msgParser is parseMessages with buffers kept from one datagram to the
// next (the reader decodes every fork and exit on the host).
type msgParser struct {
	hdr  [nlmsgHdrLen]byte
	body []byte
}

func (p *msgParser) parse(r io.Reader, fn func(procEvent)) error {
	hdr := p.hdr[:]
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("%w: short netlink header", errBadMessage)
		}
		n := binary.NativeEndian.Uint32(hdr[0:])
		typ := binary.NativeEndian.Uint16(hdr[4:])
		if n < nlmsgHdrLen || n > maxMsgLen {
			return fmt.Errorf("%w: netlink message length %d", errBadMessage, n)
		}
		// Messages are padded to 4 bytes (NLMSG_ALIGN); the last one of a
		// datagram may lack its padding.
		if m := int(n) - nlmsgHdrLen; cap(p.body) < m {
			p.body = make([]byte, m, max(m, 128))
		} else {
			p.body = p.body[:m]
		}
		body := p.body
		if _, err := io.ReadFull(r, body); err != nil {
			return fmt.Errorf("%w: netlink message of %d bytes is cut short", errBadMessage, n)
		}
		if pad := (4 - n%4) % 4; pad > 0 {
			var skip [3]byte
			if _, err := io.ReadFull(r, skip[:pad]); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				return err
			}
		}
		switch typ {
		case nlmsgNoop:
			continue
		case nlmsgOverrun:
			return errOverrun
		case nlmsgError:
			if len(body) < 4 {
				return fmt.Errorf("%w: short NLMSG_ERROR", errBadMessage)
			}
			errno := -int32(binary.NativeEndian.Uint32(body))
			return fmt.Errorf("proc connector: netlink error %d", errno)
		}
		ev, ok, err := parseConnector(body)
		if err != nil {
			return err
		}
		if ok {
			fn(ev)
		}
	}
}

// parseConnector decodes a connector message. ok is false for a message
// that is not a proc event.
func parseConnector(b []byte) (ev procEvent, ok bool, err error) {
	if len(b) < cnMsgLen {
		return ev, false, fmt.Errorf("%w: connector message of %d bytes", errBadMessage, len(b))
	}
	idx := binary.NativeEndian.Uint32(b[0:])
	val := binary.NativeEndian.Uint32(b[4:])
	ev.ack = binary.NativeEndian.Uint32(b[12:])
	dlen := int(binary.NativeEndian.Uint16(b[16:]))
	if idx != cnIdxProc || val != cnValProc {
		return ev, false, nil
	}
	data := b[cnMsgLen:]
	if dlen > len(data) {
		return ev, false, fmt.Errorf("%w: data length %d, only %d bytes", errBadMessage, dlen, len(data))
	}
	data = data[:dlen]
	if len(data) < evHeaderLen {
		return ev, false, fmt.Errorf("%w: proc event of %d bytes", errBadMessage, len(data))
	}
	ev.what = binary.NativeEndian.Uint32(data[0:])
	ev.nsec = binary.NativeEndian.Uint64(data[8:])
	d := data[evHeaderLen:]
	word := func(i int) int { return int(int32(binary.NativeEndian.Uint32(d[4*i:]))) }
	switch ev.what {
	case evNone:
		if len(d) < 4 {
			return ev, false, fmt.Errorf("%w: short acknowledgement", errBadMessage)
		}
		ev.err = binary.NativeEndian.Uint32(d)
	case evFork:
		if len(d) < 16 {
			return ev, false, fmt.Errorf("%w: short fork event", errBadMessage)
		}
		ev.ppid, ev.ptgid, ev.pid, ev.tgid = word(0), word(1), word(2), word(3)
	case evExit:
		// process_pid, process_tgid, exit_code, exit_signal; the parent
		// (parent_pid, parent_tgid) follows since Linux 4.17.
		if len(d) < 16 {
			return ev, false, fmt.Errorf("%w: short exit event", errBadMessage)
		}
		ev.pid, ev.tgid = word(0), word(1)
		if len(d) >= 24 {
			ev.ppid, ev.ptgid = word(4), word(5)
		}
	}
	return ev, true, nil
}

// controlMessage builds the netlink message that sends op (mcastListen or
// mcastIgnore) to the proc connector with the given ack number.
func controlMessage(op, ack uint32) []byte {
	const n = nlmsgHdrLen + cnMsgLen + 4
	b := make([]byte, n)
	binary.NativeEndian.PutUint32(b[0:], n)
	binary.NativeEndian.PutUint16(b[4:], nlmsgDone)
	c := b[nlmsgHdrLen:]
	binary.NativeEndian.PutUint32(c[0:], cnIdxProc)
	binary.NativeEndian.PutUint32(c[4:], cnValProc)
	binary.NativeEndian.PutUint32(c[12:], ack)
	binary.NativeEndian.PutUint16(c[16:], 4)
	binary.NativeEndian.PutUint32(c[cnMsgLen:], op)
	return b
}

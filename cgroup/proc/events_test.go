package proc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// message builds one netlink message carrying a connector message with the
// given connector id and data, padded to 4 bytes.
func message(idx, val, ack uint32, data []byte) []byte {
	n := nlmsgHdrLen + cnMsgLen + len(data)
	b := make([]byte, (n+3)&^3)
	binary.NativeEndian.PutUint32(b[0:], uint32(n))
	binary.NativeEndian.PutUint16(b[4:], nlmsgDone)
	c := b[nlmsgHdrLen:]
	binary.NativeEndian.PutUint32(c[0:], idx)
	binary.NativeEndian.PutUint32(c[4:], val)
	binary.NativeEndian.PutUint32(c[12:], ack)
	binary.NativeEndian.PutUint16(c[16:], uint16(len(data)))
	copy(c[cnMsgLen:], data)
	return b
}

// event builds a proc event: what, cpu, timestamp, then 32-bit words.
func event(what uint32, nsec uint64, words ...uint32) []byte {
	b := make([]byte, evHeaderLen+4*len(words))
	binary.NativeEndian.PutUint32(b[0:], what)
	binary.NativeEndian.PutUint64(b[8:], nsec)
	for i, w := range words {
		binary.NativeEndian.PutUint32(b[evHeaderLen+4*i:], w)
	}
	return b
}

func parseAll(t *testing.T, data []byte) ([]procEvent, error) {
	t.Helper()
	var evs []procEvent
	err := parseMessages(bytes.NewReader(data), func(ev procEvent) { evs = append(evs, ev) })
	return evs, err
}

func TestParseMessages(t *testing.T) {
	fork := message(cnIdxProc, cnValProc, 0, event(evFork, 42, 10, 10, 11, 11))
	exit := message(cnIdxProc, cnValProc, 0, event(evExit, 43, 11, 11, 0, 17, 10, 10))
	oldExit := message(cnIdxProc, cnValProc, 0, event(evExit, 44, 12, 11, 9, 17)) // before Linux 4.17
	ack := message(cnIdxProc, cnValProc, 8, event(evNone, 0, 22))
	exec := message(cnIdxProc, cnValProc, 0, event(0x2, 45, 11, 11))
	foreign := message(5, 1, 0, []byte{1, 2, 3})
	in := bytes.Join([][]byte{fork, foreign, exit, oldExit, ack, exec}, nil)
	evs, err := parseAll(t, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []procEvent{
		{what: evFork, nsec: 42, ppid: 10, ptgid: 10, pid: 11, tgid: 11},
		{what: evExit, nsec: 43, pid: 11, tgid: 11, ppid: 10, ptgid: 10},
		{what: evExit, nsec: 44, pid: 12, tgid: 11},
		{what: evNone, ack: 8, err: 22},
		{what: 0x2, nsec: 45},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d events %+v, want %d", len(evs), evs, len(want))
	}
	for i := range want {
		if evs[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, evs[i], want[i])
		}
	}

	// The last message of a datagram may come without its padding.
	odd := append(event(evNone, 0, 0), 9) // 21 bytes of data
	short := message(cnIdxProc, cnValProc, 3, odd)
	if evs, err := parseAll(t, short[:nlmsgHdrLen+cnMsgLen+len(odd)]); err != nil || len(evs) != 1 || evs[0].ack != 3 {
		t.Errorf("unpadded last message: %+v, %v", evs, err)
	}
	if evs, err := parseAll(t, nil); err != nil || len(evs) != 0 {
		t.Errorf("empty datagram: %+v, %v", evs, err)
	}
}

func TestParseMessagesErrors(t *testing.T) {
	nlerr := make([]byte, nlmsgHdrLen+4)
	binary.NativeEndian.PutUint32(nlerr[0:], uint32(len(nlerr)))
	binary.NativeEndian.PutUint16(nlerr[4:], nlmsgError)
	binary.NativeEndian.PutUint32(nlerr[nlmsgHdrLen:], uint32(0xffffffff)) // -EPERM
	overrun := make([]byte, nlmsgHdrLen)
	binary.NativeEndian.PutUint32(overrun[0:], nlmsgHdrLen)
	binary.NativeEndian.PutUint16(overrun[4:], nlmsgOverrun)
	fork := message(cnIdxProc, cnValProc, 0, event(evFork, 1, 1, 1, 2, 2))
	huge := bytes.Clone(fork)
	binary.NativeEndian.PutUint32(huge[0:], 1<<20)
	lying := bytes.Clone(fork)
	binary.NativeEndian.PutUint16(lying[nlmsgHdrLen+16:], 200) // data length past the end
	for name, in := range map[string][]byte{
		"short header":     fork[:10],
		"cut short":        fork[:len(fork)-8],
		"length too small": append(binary.NativeEndian.AppendUint32(nil, 8), make([]byte, 12)...),
		"length too large": huge,
		"data length lies": lying,
		"short fork":       message(cnIdxProc, cnValProc, 0, event(evFork, 1, 1, 1)),
		"short exit":       message(cnIdxProc, cnValProc, 0, event(evExit, 1, 1)),
		"short ack":        message(cnIdxProc, cnValProc, 0, event(evNone, 1)),
		"no event header":  message(cnIdxProc, cnValProc, 0, []byte{1, 2, 3, 4}),
		"no connector hdr": fork[:nlmsgHdrLen+8],
	} {
		if _, err := parseAll(t, in); !errors.Is(err, errBadMessage) {
			t.Errorf("%s: err = %v, want errBadMessage", name, err)
		}
	}
	if _, err := parseAll(t, nlerr); err == nil || errors.Is(err, errBadMessage) {
		t.Errorf("NLMSG_ERROR: %v", err)
	}
	if _, err := parseAll(t, overrun); !errors.Is(err, errOverrun) {
		t.Errorf("NLMSG_OVERRUN: %v", err)
	}
}

func TestControlMessage(t *testing.T) {
	b := controlMessage(mcastListen, 7)
	if len(b) != nlmsgHdrLen+cnMsgLen+4 || binary.NativeEndian.Uint32(b) != uint32(len(b)) {
		t.Fatalf("length: %d / %d", len(b), binary.NativeEndian.Uint32(b))
	}
	c := b[nlmsgHdrLen:]
	if binary.NativeEndian.Uint32(c[0:]) != cnIdxProc || binary.NativeEndian.Uint32(c[4:]) != cnValProc ||
		binary.NativeEndian.Uint32(c[12:]) != 7 || binary.NativeEndian.Uint16(c[16:]) != 4 ||
		binary.NativeEndian.Uint32(c[cnMsgLen:]) != mcastListen {
		t.Errorf("control message % x", b)
	}
}

func FuzzParseMessages(f *testing.F) {
	f.Add(message(cnIdxProc, cnValProc, 0, event(evFork, 42, 10, 10, 11, 11)))
	f.Add(message(cnIdxProc, cnValProc, 0, event(evExit, 43, 11, 11, 0, 17, 10, 10)))
	f.Add(message(cnIdxProc, cnValProc, 8, event(evNone, 0, 22)))
	f.Add(bytes.Repeat(message(cnIdxProc, cnValProc, 0, event(evFork, 1, 1, 1, 2, 2)), 3))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		n := 0
		err := parseMessages(bytes.NewReader(data), func(procEvent) { n++ })
		if err == nil && n > len(data)/(nlmsgHdrLen+cnMsgLen+evHeaderLen) {
			t.Fatalf("%d events from %d bytes", n, len(data))
		}
	})
}

package compat

import (
	"cmp"
	"sync/atomic"

	"github.com/orphand/orphand/internal/peercred"
)

// Peer is who is at the other end of a connection, read when it was
// accepted. Its process handle is shared by the connection and every
// record of it still being handled: it is closed when the last of them is
// done, so a handler may use it for as long as it runs.
type Peer struct {
	peercred.Peer
	// Accepted is proctree.BootTicks when the connection was accepted: a
	// process a record names started no later than this, or its pid was
	// reused after the record was sent.
	Accepted uint64

	refs atomic.Int32
}

// newPeer wraps p with one reference, the connection's.
func newPeer(p peercred.Peer, accepted uint64) *Peer {
	x := &Peer{Peer: p, Accepted: accepted}
	x.refs.Store(1)
	return x
}

func (p *Peer) hold() { p.refs.Add(1) }

// release drops one reference; the last closes the process handle.
func (p *Peer) release() {
	if p.refs.Add(-1) == 0 && p.Proc != nil {
		p.Proc.Close()
	}
}

// Seq orders records: connections by the order they were accepted (which is
// the order their clients connected), records of one connection by the
// order they were read. A client that connects once per record, as
// orphand-forkwait.so does, sent its REGISTER before its UNREGISTER if and
// only if the REGISTER's Seq is the smaller, whichever worker gets to
// either first.
type Seq struct {
	Conn   uint64 // 1 for the first connection accepted
	Record uint64 // 0 for a connection's first record
}

// Compare returns -1, 0 or +1 as s is before, the same as, or after t.
func (s Seq) Compare(t Seq) int {
	if c := cmp.Compare(s.Conn, t.Conn); c != 0 {
		return c
	}
	return cmp.Compare(s.Record, t.Record)
}

// Request is a REGISTER or UNREGISTER for the handler.
type Request struct {
	Peer   *Peer // valid until Handle returns
	Record Record
	Seq    Seq
}

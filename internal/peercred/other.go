//go:build !linux

package peercred

import (
	"errors"
	"net"

	"github.com/orphand/orphand/proctree"
)

var errNotLinux = errors.New("peercred: peer credentials are read on Linux only")

// Peer is who is at the other end of a connection.
type Peer struct {
	UID, GID uint32
	Pid      int
	Proc     *proctree.Process
	SameNS   bool
}

// Reader reads the peers of connections (Linux only).
type Reader struct{}

// Options tune a Reader.
type Options struct{ NoPidfd bool }

// NewReader is not supported on this system.
func NewReader(Options) (*Reader, error) { return nil, errNotLinux }

// Pidfd reports false on this system.
func (r *Reader) Pidfd() bool { return false }

// Read is not supported on this system.
func (r *Reader) Read(net.Conn, uint64) (Peer, error) { return Peer{}, errNotLinux }

// SameNS reports false on this system.
func (r *Reader) SameNS(int) bool { return false }

// PidfdSupported reports false: SO_PEERPIDFD is Linux's.
func PidfdSupported() bool { return false }

//go:build !linux

package family

import (
	"errors"
	"fmt"
	"net"
)

// The master checks its peers with SO_PEERCRED and /proc, which are Linux's.
// Children work anywhere; a master needs Linux.

type peer struct {
	pid, uid int
}

type peerChecker struct{ pidfd bool }

func supported() error {
	return fmt.Errorf("family: a master needs Linux (SO_PEERCRED); children work anywhere: %w", errors.ErrUnsupported)
}

func newPeerChecker(Options) peerChecker { return peerChecker{} }

func (peerChecker) check(*net.UnixConn) (peer, error) { return peer{}, supported() }

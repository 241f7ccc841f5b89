package family

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// peer is who is on the other end of a connection, from the kernel.
type peer struct {
	pid, uid int
}

// peerChecker decides which peers may talk to the master.
type peerChecker struct {
	uid         int  // the master's effective uid
	self        int  // the master's pid, for DescendantsOnly
	descendants bool // Options.DescendantsOnly
	pidfd       bool // SO_PEERPIDFD works: the peer is pinned while its ancestry is read
}

func supported() error { return nil }

// newPeerChecker probes SO_PEERPIDFD once (Linux 6.5+).
func newPeerChecker(o Options) peerChecker {
	pc := peerChecker{uid: os.Geteuid(), self: os.Getpid(), descendants: o.DescendantsOnly}
	if !o.noPeerPidfd {
		pc.pidfd = peerPidfdSupported()
	}
	return pc
}

// peerPidfdSupported reports whether getsockopt(SO_PEERPIDFD) works, asking
// it on a socket pair the first time. The agent has the same probe
// (internal/peercred); this package stands alone, importing nothing of the
// module, so it asks for itself.
var peerPidfdSupported = sync.OnceValue(func() bool {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	pfd, err := unix.GetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_PEERPIDFD)
	if err != nil {
		return false
	}
	unix.Close(pfd)
	return true
})

// check returns the peer of c, or a *FrameError with CodePermissionDenied
// saying why it is refused.
func (pc peerChecker) check(c *net.UnixConn) (peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return peer{}, fmt.Errorf("family: peer credentials: %w", err)
	}
	var (
		p     peer
		pidfd = -1
		opErr error
	)
	err = raw.Control(func(fd uintptr) {
		cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			opErr = os.NewSyscallError("getsockopt SO_PEERCRED", err)
			return
		}
		p = peer{pid: int(cred.Pid), uid: int(cred.Uid)}
		if pc.descendants && pc.pidfd {
			pidfd, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD)
			if err != nil {
				opErr = os.NewSyscallError("getsockopt SO_PEERPIDFD", err)
			}
		}
	})
	if err == nil {
		err = opErr
	}
	if err != nil {
		return peer{}, fmt.Errorf("family: peer credentials: %w", err)
	}
	if pidfd >= 0 {
		defer unix.Close(pidfd)
	}
	if p.uid != pc.uid {
		return p, frameErrorf(CodePermissionDenied, "peer uid %d is not the master's uid %d", p.uid, pc.uid)
	}
	if !pc.descendants {
		return p, nil
	}
	ok, err := p.pid == pc.self, error(nil) // the master's own process may be its own child
	if !ok {
		ok, err = isDescendant(p.pid, pc.self)
	}
	if err != nil {
		return p, frameErrorf(CodePermissionDenied, "peer pid %d: cannot read its ancestry: %v", p.pid, err)
	}
	// With a pidfd, the peer still being alive after the walk proves the
	// pid read above was its own and not a reused one.
	if ok && pidfd >= 0 {
		if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
			return p, frameErrorf(CodePermissionDenied, "peer pid %d exited while its ancestry was read", p.pid)
		}
	}
	if !ok {
		return p, frameErrorf(CodePermissionDenied, "peer pid %d is not a descendant of the master (pid %d)", p.pid, pc.self)
	}
	return p, nil
}

// isDescendant walks pid's parent chain through /proc looking for ancestor.
func isDescendant(pid, ancestor int) (bool, error) {
	if pid <= 0 {
		return false, nil // outside our pid namespace
	}
	// pid_max bounds the chain; the cap only guards against a /proc that lies.
	for range 1 << 22 {
		ppid, err := readPPid(pid)
		if err != nil {
			return false, err
		}
		if ppid == ancestor {
			return true, nil
		}
		if ppid <= 1 {
			return false, nil
		}
		pid = ppid
	}
	return false, errors.New("parent chain does not end")
}

// readPPid reads field 4 of /proc/<pid>/stat.
func readPPid(pid int) (int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parsePPid(f)
}

package peercred

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/proctree"
)

// Peer is who is at the other end of a connection.
type Peer struct {
	// UID, GID and Pid are SO_PEERCRED's, as of the connect. Pid is 0 when
	// the peer lives in a pid namespace the reader cannot see.
	UID, GID uint32
	Pid      int
	// Proc holds the connecting process; nil when the reader cannot see it
	// (another pid namespace) or it is already gone. The caller closes it.
	Proc *proctree.Process
	// SameNS is true when Proc shares the reader's pid namespace, so that
	// pid numbers the peer sends mean what they mean to the reader.
	SameNS bool
}

// Reader reads the peers of connections. Make one with [NewReader], once:
// it probes what the kernel offers. It is safe for concurrent use.
type Reader struct {
	pidfd    bool   // SO_PEERPIDFD is used
	pidNS    string // this process's pid namespace (/proc/self/ns/pid)
	nsLevels int    // entries of this process's NSpid: line (1: /proc is its namespace's); 0 if unknown
}

// Options tune a Reader.
type Options struct {
	// NoPidfd ignores SO_PEERPIDFD even where the kernel has it, as on
	// kernels before 6.5 (tests of the fallback set it).
	NoPidfd bool
}

// NewReader probes SO_PEERPIDFD and reads this process's pid namespace.
func NewReader(opts Options) (*Reader, error) {
	ns, err := proctree.PidNamespace(0)
	if err != nil {
		return nil, fmt.Errorf("peercred: read own pid namespace (is /proc mounted?): %w", err)
	}
	r := &Reader{pidNS: ns, pidfd: PidfdSupported() && !opts.NoPidfd}
	if st, err := proctree.ReadStatus(0); err == nil && st.Need(proctree.StatusNSpid) == nil {
		r.nsLevels = len(st.NSpid) // 0 otherwise: SameNS compares ns/pid links instead
	}
	return r, nil
}

// Pidfd reports whether the reader takes the peer's process from
// SO_PEERPIDFD (else from SO_PEERCRED's pid and a start-time check).
func (r *Reader) Pidfd() bool { return r.pidfd }

// Read reads the peer of nc, a Unix socket connection, and holds its
// process: by the pidfd SO_PEERPIDFD gives, else by its pid, accepted only
// if that process started no later than the connection was accepted (a
// process that reused the pid afterwards started later). accepted is
// [proctree.BootTicks] at accept. A peer that is gone, or in a pid
// namespace the reader cannot see, is returned without Proc.
func (r *Reader) Read(nc net.Conn, accepted uint64) (Peer, error) {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return Peer{}, fmt.Errorf("not a unix socket connection (%T)", nc)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var (
		cred     *unix.Ucred
		credErr  error
		pidfd    = -1
		pidfdErr error
	)
	if err := rc.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if r.pidfd {
			pidfd, pidfdErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD)
		}
	}); err != nil {
		return Peer{}, err
	}
	if credErr != nil {
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
		return Peer{}, fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	p := Peer{UID: cred.Uid, GID: cred.Gid, Pid: int(cred.Pid)}
	if cred.Pid <= 0 {
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
		return p, nil // the peer lives in a pid namespace the reader cannot see
	}
	switch {
	case r.pidfd && pidfdErr == nil:
		p.Proc, err = proctree.FromPidfd(pidfd)
	case r.pidfd && !errors.Is(pidfdErr, syscall.ESRCH):
		return Peer{}, fmt.Errorf("SO_PEERPIDFD: %w", pidfdErr)
	case !r.pidfd:
		p.Proc, err = proctree.Open(int(cred.Pid))
		if err == nil && p.Proc.Identity().StartTime > accepted {
			p.Proc.Close()
			p.Proc, err = nil, os.ErrProcessDone // a newcomer has the pid now
		}
	}
	if err != nil {
		p.Proc = nil // the peer is gone already; it can still ask about what it owns
	}
	if p.Proc != nil {
		p.SameNS = r.SameNS(p.Proc.Pid())
	}
	return p, nil
}

// SameNS reports whether pid shares the reader's pid namespace. When /proc
// is the reader's namespace's own (its NSpid: has one entry), the
// world-readable NSpid: line of pid's status tells: one entry means the
// same namespace. Otherwise it compares /proc/<pid>/ns/pid links, which
// needs ptrace access to pid (CAP_SYS_PTRACE for a root peer when the
// reader runs with fewer capabilities, as the packaged agent does).
func (r *Reader) SameNS(pid int) bool {
	if r.nsLevels == 1 {
		st, err := proctree.ReadStatus(pid)
		return err == nil && st.Need(proctree.StatusNSpid) == nil && len(st.NSpid) == 1
	}
	ns, err := proctree.PidNamespace(pid)
	return err == nil && ns == r.pidNS
}

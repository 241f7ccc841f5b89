package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/internal/peercred"
	"github.com/orphand/orphand/policy"
	"github.com/orphand/orphand/proctree"
)

// probeHost checks once, at start, what the agent relies on, and logs which
// way peer identity will be read.
func probeHost(log *slog.Logger) (hostFacts, error) {
	h := hostFacts{pid: os.Getpid()}
	self, err := proctree.Open(h.pid)
	if err != nil {
		return h, fmt.Errorf("agent: pidfd_open does not work here (Linux 5.3 or later is needed): %w", err)
	}
	self.Close()
	h.pidNS, err = os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return h, fmt.Errorf("agent: read own pid namespace (is /proc mounted?): %w", err)
	}
	h.nsLevels, _ = statusNSpidLevels(h.pid) // 0 on error: readlink below, as a fallback
	h.peerPidfd = peercred.PidfdSupported()
	if h.peerPidfd {
		log.Info("peer identity from SO_PEERPIDFD")
	} else {
		log.Info("SO_PEERPIDFD unavailable (Linux 6.5+ has it): peer identity from SO_PEERCRED pid + pidfd_open + start-time check")
	}
	return h, nil
}

// forcePeerCredFallback makes readPeer ignore SO_PEERPIDFD (tests of the
// fallback set it).
var forcePeerCredFallback bool

// bootTicks is now in clock ticks since boot, the unit of a process's start
// time (field 22 of /proc/<pid>/stat; USER_HZ is 100 on Linux).
func bootTicks() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return uint64(ts.Sec)*100 + uint64(ts.Nsec)/10_000_000
}

// readPeer reads the peer's credentials and holds its process: by the
// pidfd SO_PEERPIDFD gives (no race), else by its pid, accepted only if that
// process started no later than the connection was accepted (a process that
// reused the pid afterwards started later). acceptTicks is bootTicks() at
// accept.
func readPeer(nc net.Conn, h hostFacts, acceptTicks uint64) (peer, error) {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return peer{}, fmt.Errorf("not a unix socket connection (%T)", nc)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return peer{}, err
	}
	var (
		cred     *unix.Ucred
		credErr  error
		pidfd    = -1
		pidfdErr error
	)
	usePidfd := h.peerPidfd && !forcePeerCredFallback
	if err := rc.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if usePidfd {
			pidfd, pidfdErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD)
		}
	}); err != nil {
		return peer{}, err
	}
	if credErr != nil {
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
		return peer{}, fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	p := peer{caller: policy.Caller{UID: cred.Uid, GID: cred.Gid, Pid: int(cred.Pid)}}
	if cred.Pid <= 0 {
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
		return p, nil // the peer lives in a pid namespace the agent cannot see
	}
	switch {
	case usePidfd && pidfdErr == nil:
		p.proc, err = proctree.FromPidfd(pidfd)
	case usePidfd && !errors.Is(pidfdErr, syscall.ESRCH):
		return peer{}, fmt.Errorf("SO_PEERPIDFD: %w", pidfdErr)
	case !usePidfd:
		p.proc, err = proctree.Open(int(cred.Pid))
		if err == nil && p.proc.Identity().StartTime > acceptTicks {
			p.proc.Close()
			p.proc, err = nil, os.ErrProcessDone // a newcomer has the pid now
		}
	}
	if err != nil {
		p.proc = nil // the peer is gone already; it can still ask about groups
	}
	if p.proc != nil {
		p.sameNS = sameNS(p.proc.Pid(), h)
	}
	return p, nil
}

// sameNS reports whether pid shares the agent's pid namespace. When /proc
// is the agent's namespace's own (the agent's NSpid: has one entry), the
// world-readable NSpid: line of the peer's status tells: one entry means the
// same namespace. Otherwise it compares /proc/<pid>/ns/pid links, which
// needs ptrace access to the peer (CAP_SYS_PTRACE for a root peer when the
// agent runs with fewer capabilities, as the packaged unit does).
func sameNS(pid int, h hostFacts) bool {
	if h.nsLevels == 1 {
		n, err := statusNSpidLevels(pid)
		return err == nil && n == 1
	}
	ns, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/pid")
	return err == nil && ns == h.pidNS
}

// statusNSpidLevels reads the NSpid: line of /proc/<pid>/status.
func statusNSpidLevels(pid int) (int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseStatusNSpid(f)
}

// processFacts gathers what the policy needs about p, read through p's
// verified identity: the reads below describe p's process only if it was
// not reaped meanwhile (a pid is reused only after the reap), which the
// signal 0 through the pidfd checks afterwards.
func processFacts(p *proctree.Process) (policy.Process, error) {
	pid := p.Pid()
	st, err := proctree.ReadStat(pid)
	if err != nil {
		return policy.Process{}, err
	}
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return policy.Process{}, fmt.Errorf("pid %d: %w", pid, os.ErrProcessDone)
	}
	u, err := parseStatusUIDs(f)
	f.Close()
	if err != nil {
		return policy.Process{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	if err := p.Signal(0); err != nil || st.StartTime != p.Identity().StartTime {
		return policy.Process{}, fmt.Errorf("pid %d exited while being checked: %w", pid, os.ErrProcessDone)
	}
	return policy.Process{Pid: pid, RealUID: u.Real, SavedUID: u.Saved, KernelThread: st.IsKernelThread()}, nil
}

// policyHost gathers the agent's place in the tree now: its ancestors
// change when a parent dies and the agent is reparented.
func (a *Agent) policyHost() policy.Host {
	h := policy.Host{AgentPid: a.host.pid}
	pid := os.Getppid()
	for i := 0; pid > 0 && i < 4096; i++ {
		h.Ancestors = append(h.Ancestors, pid)
		st, err := proctree.ReadStat(pid)
		if err != nil {
			break
		}
		pid = st.PPid
	}
	return h
}

// procCgroup returns pid's cgroup v2 path.
func procCgroup(pid int) (string, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return "", fmt.Errorf("pid %d: %w", pid, os.ErrProcessDone)
	}
	defer f.Close()
	return cgroup.ParseProcCgroup(f)
}

// children returns pid's direct children (of all its threads). A process
// that vanishes has none; a read that fails midway gives what it read.
func children(pid int) []int {
	c, _ := proctree.Children(pid)
	return c
}

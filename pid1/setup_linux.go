package pid1

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/proctree"
)

// role is what init is to the orphans of its descendants.
type role int

const (
	roleInit      role = iota // PID 1 of a pid namespace: every orphan in it lands here
	roleSubreaper             // a child subreaper: orphans below it land here
	roleNone                  // neither: orphans go elsewhere
)

func (r role) String() string {
	switch r {
	case roleInit:
		return "pid 1"
	case roleSubreaper:
		return "child subreaper"
	}
	return "neither pid 1 nor a subreaper"
}

// becomeReaper makes sure orphans land on init: PID 1 already is their
// reaper; anywhere else init becomes a child subreaper. When it cannot, it
// fails if required is set and warns otherwise, as tini does.
func (s *supervisor) becomeReaper(required bool) error {
	if s.self == 1 && !required {
		s.role = roleInit
		return nil
	}
	err := proctree.AcquireReaper()
	if err == nil || errors.Is(err, proctree.ErrAlreadyReaper) {
		s.role = roleSubreaper
		if s.self == 1 {
			s.role = roleInit
		}
		return nil
	}
	if required {
		return fmt.Errorf("cannot become a child subreaper (-s): %w; run orphand init as PID 1 of the container instead, or allow prctl(PR_SET_CHILD_SUBREAPER) (Linux >= 3.4, and no seccomp profile refusing it)", err)
	}
	if s.self == 1 {
		s.role = roleInit
		return nil
	}
	s.role = roleNone
	s.log.Warn("orphand init: not PID 1 and not a child subreaper: orphaned processes will not be re-parented to init, so init cannot reap them, and descendants that escape CMD are killed at exit only through a cgroup",
		"pid", s.self, "err", err,
		"fix", "run orphand init as PID 1 of the container (its ENTRYPOINT), or allow prctl(PR_SET_CHILD_SUBREAPER) (Linux >= 3.4, not refused by a seccomp profile); -s makes this an error")
	return nil
}

// checkProc makes sure /proc shows this process's own pid namespace: the
// tree walks (who is left to kill) read it, and a /proc of the parent
// namespace would show the host's processes under pid numbers that mean
// other processes here. /proc/self names the reader's pid as the mount's
// namespace numbers it: one readlink.
func checkProc(self int) error {
	link, err := os.Readlink("/proc/self")
	if err != nil {
		return fmt.Errorf("cannot read /proc (%w): mount /proc for this pid namespace (unshare --mount-proc; containers have it)", err)
	}
	if link != strconv.Itoa(self) {
		return fmt.Errorf("/proc belongs to another pid namespace (it shows this process as pid %s, not %d): mount /proc for this pid namespace, e.g. unshare --pid --fork --mount-proc", link, self)
	}
	return nil
}

// inheritedFDs lists the descriptors >= 3 that init inherited: those without
// FD_CLOEXEC, since Go opens every descriptor of its own with O_CLOEXEC.
// Raw system calls: os.Open would set up Go's network poller, which init
// does not otherwise need on its way to starting CMD.
func inheritedFDs() ([]int, error) {
	dir, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("open /proc/self/fd", err)
	}
	defer unix.Close(dir)
	var names []string
	buf := make([]byte, 4096)
	for {
		n, err := unix.ReadDirent(dir, buf)
		if err != nil {
			return nil, os.NewSyscallError("getdents /proc/self/fd", err)
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	var out []int
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd < 3 || fd == dir {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err == nil && flags&unix.FD_CLOEXEC == 0 {
			out = append(out, fd)
		}
	}
	return out, nil
}

// prepareFDs decides which inherited descriptors reach CMD: the n sockets of
// socket activation (passed explicitly), and all the others only with
// KeepFDs. The others are marked close-on-exec. It returns the
// descriptors init should close in itself once CMD has started.
func (s *supervisor) prepareFDs(nListen int) []int {
	fds, err := inheritedFDs()
	if err != nil {
		// Without /proc/self/fd, mark everything >= 3 close-on-exec in one
		// call (Linux 5.11); the listen sockets are passed explicitly anyway.
		if !s.cfg.KeepFDs {
			if cerr := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); cerr != nil {
				s.log.Warn("orphand init: cannot keep inherited file descriptors from CMD", "err", errors.Join(err, cerr))
			}
		}
		return nil
	}
	for _, fd := range fds {
		listen := fd >= firstListenFD && fd < firstListenFD+nListen
		if listen || !s.cfg.KeepFDs {
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
				s.log.Warn("orphand init: cannot mark an inherited file descriptor close-on-exec", "fd", fd, "err", err)
			}
		}
		if !listen && !s.cfg.KeepFDs {
			s.log.Debug("orphand init: inherited file descriptor not passed to CMD (--keep-fds passes it)", "fd", fd)
		}
	}
	return fds
}

// planTerminal lets CMD have the terminal on its stdin where init may hand
// it over: the foreground process group (own process group), or the
// controlling terminal of its new session (Setsid) when init can first give
// it up.
func (s *supervisor) planTerminal(sys *syscall.SysProcAttr, stdin *os.File) {
	fd := int(stdin.Fd())
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return // not a terminal
	}
	if !s.cfg.Setsid {
		fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
		if err == nil && fg == unix.Getpgrp() {
			// Like tini: CMD's group becomes the foreground, so that it
			// reads the terminal and gets ^C and ^Z from it directly.
			sys.Foreground, sys.Ctty = true, fd
		}
		return
	}
	sid, err := unix.IoctlGetInt(fd, unix.TIOCGSID)
	if err == nil && sid == s.self {
		// init leads the terminal's session (PID 1 of `docker run -t`):
		// give the terminal up, as dumb-init does, so that CMD can take it.
		// Not while os/signal installs handlers: giveUpTerminal puts back
		// the dispositions it read.
		s.reg.waitFirst()
		if err := giveUpTerminal(fd); err != nil {
			s.log.Debug("orphand init: cannot give up the controlling terminal", "err", err)
		}
		_, err = unix.IoctlGetInt(fd, unix.TIOCGSID)
	}
	if errors.Is(err, unix.ENOTTY) {
		// No session owns the terminal: CMD, as a session leader, takes it.
		sys.Setctty, sys.Ctty = true, 0
		return
	}
	s.log.Debug("orphand init: the terminal belongs to another session; CMD runs without a controlling terminal", "session", sid)
}

// giveUpTerminal detaches init from its controlling terminal (TIOCNOTTY).
// As the session leader, that sends SIGHUP and SIGCONT to init's own
// process group, init included: both are ignored for that moment, behind
// the Go runtime's back (rt_sigaction), so that nothing else changes —
// signal.Ignore would make CMD inherit them ignored.
func giveUpTerminal(fd int) error {
	sigs := []syscall.Signal{syscall.SIGHUP, syscall.SIGCONT}
	var old [2]kernelSigaction
	ign := kernelSigaction{sigIgn}
	for i, sig := range sigs {
		if err := rtSigaction(sig, &ign, &old[i]); err != nil {
			return err
		}
		defer rtSigaction(sig, &old[i], nil) //nolint:errcheck // put back what was read
	}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCNOTTY, 0); errno != 0 {
		return errno
	}
	return nil
}

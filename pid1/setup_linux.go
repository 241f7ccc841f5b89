package pid1

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
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
// other processes here.
func checkProc(self int) error {
	f, err := os.Open("/proc/self/stat")
	if err != nil {
		return fmt.Errorf("cannot read /proc (%w): mount /proc for this pid namespace (unshare --mount-proc; containers have it)", err)
	}
	defer f.Close()
	st, err := proctree.ParseStat(f)
	if err != nil {
		return fmt.Errorf("cannot read /proc/self/stat: %w", err)
	}
	if st.Pid != self {
		return fmt.Errorf("/proc belongs to another pid namespace (it shows this process as pid %d, not %d): mount /proc for this pid namespace, e.g. unshare --pid --fork --mount-proc", st.Pid, self)
	}
	return nil
}

// inheritedFDs lists the descriptors >= 3 that init inherited: those without
// FD_CLOEXEC, since Go opens every descriptor of its own with O_CLOEXEC.
func inheritedFDs() ([]int, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	var out []int
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd < 3 {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			continue // the directory's own descriptor, closed since
		}
		if flags&unix.FD_CLOEXEC == 0 {
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
// it up. It must run before signal.Notify: giving up the terminal sends
// SIGHUP and SIGCONT to init's foreground process group.
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
		signal.Ignore(syscall.SIGHUP, syscall.SIGCONT)
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCNOTTY, 0); errno != 0 {
			s.log.Debug("orphand init: cannot give up the controlling terminal", "err", errno)
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

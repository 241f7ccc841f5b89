package sdfdstore

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// listenFDsStart is SD_LISTEN_FDS_START: passed descriptors begin at 3.
const listenFDsStart = 3

// Take removes from the descriptors systemd passed ($LISTEN_FDS, named by
// $LISTEN_FDNAMES) those whose name want accepts, and returns them as
// files named after them (close-on-exec, at fresh numbers). The others are
// moved down to 3, 4, … in their order and $LISTEN_FDS / $LISTEN_FDNAMES
// are rewritten to describe only them, so that a later reader (go-systemd's
// activation.Listeners, which takes every passed descriptor) sees only the
// sockets. When nothing is left the variables are unset.
//
// systemd passes stored descriptors after the socket-activation ones, so
// usually nothing moves; the compaction handles any order. Take does
// nothing when $LISTEN_PID is not this process. Call it early, before
// other code opens files (the moves rely on 3…3+$LISTEN_FDS-1 being the
// passed descriptors).
func Take(want func(name string) bool) ([]*os.File, error) {
	// Malformed or foreign variables mean nothing was passed to us, as
	// sd_listen_fds(3) reads them.
	pid, n := envInt("LISTEN_PID"), envInt("LISTEN_FDS")
	if pid != os.Getpid() || n <= 0 {
		return nil, nil
	}
	namesVar, named := os.LookupEnv("LISTEN_FDNAMES")
	names := strings.Split(namesVar, ":")
	nameOf := func(i int) string {
		if named && i < len(names) && names[i] != "" {
			return names[i]
		}
		return "unknown"
	}
	var (
		taken     []*os.File
		keep      []int // indexes of the descriptors left in place
		keepNames []string
	)
	for i := range n {
		fd := listenFDsStart + i
		if !want(nameOf(i)) {
			keep = append(keep, i)
			keepNames = append(keepNames, nameOf(i))
			continue
		}
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, listenFDsStart+n)
		if err != nil {
			for _, f := range taken {
				f.Close()
			}
			return nil, fmt.Errorf("sdfdstore: take passed descriptor %d (%s): %w", fd, nameOf(i), os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err))
		}
		taken = append(taken, os.NewFile(uintptr(nfd), nameOf(i)))
	}
	if len(taken) == 0 {
		return nil, nil
	}
	// Move the kept descriptors down. Slot 3+j holds either a descriptor
	// already copied (taken, or kept and moved further down) or keep[j]
	// itself, since keep[j] >= j: overwriting it loses nothing.
	for j, i := range keep {
		if i == j {
			continue
		}
		if err := unix.Dup3(listenFDsStart+i, listenFDsStart+j, 0); err != nil {
			return taken, fmt.Errorf("sdfdstore: move passed descriptor %d to %d: %w", listenFDsStart+i, listenFDsStart+j, os.NewSyscallError("dup3", err))
		}
	}
	for fd := listenFDsStart + len(keep); fd < listenFDsStart+n; fd++ {
		unix.Close(fd)
	}
	// Setenv and Unsetenv fail only on malformed names, never on these.
	if len(keep) == 0 {
		_ = os.Unsetenv("LISTEN_PID")
		_ = os.Unsetenv("LISTEN_FDS")
		_ = os.Unsetenv("LISTEN_FDNAMES")
		return taken, nil
	}
	_ = os.Setenv("LISTEN_FDS", strconv.Itoa(len(keep)))
	if named {
		_ = os.Setenv("LISTEN_FDNAMES", strings.Join(keepNames, ":"))
	}
	return taken, nil
}

// envInt reads a decimal variable; absent or malformed is 0.
func envInt(name string) int {
	v, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		return 0
	}
	return v
}

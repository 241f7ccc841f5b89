package proctree

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The reaper decides who owns a zombie child by looking for pidfds in this
// process's fd table: os/exec holds one for every child it starts until its
// Wait has reaped the child. Pidfds that proctree itself opened (Process,
// Watcher) are not a promise to wait, so they are kept in this registry and
// skipped by the scan.
//
// An entry is keyed by fd number and also records the pidfs inode (unique
// per process on Linux >= 6.9) and the pid, so that a stale entry whose fd
// number was reused by someone else's pidfd is recognised as foreign. Entries
// are added after the fd is opened and removed before it is closed: in both
// windows the scan sees the fd as foreign, which only defers a reap.

type ownFd struct {
	ino uint64
	pid int
}

var ownFds = struct {
	sync.Mutex
	m map[int]ownFd
}{m: map[int]ownFd{}}

// ownKey names one registry entry: an fd number and the inode it had.
type ownKey struct {
	fd  int
	ino uint64
}

// trackOwnPidfd records fd (a pidfd for pid) as proctree's own and returns
// the key to untrack it with.
func trackOwnPidfd(fd, pid int) ownKey {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return ownKey{fd: -1} // stays "foreign": conservative; no inode known
	}
	ownFds.Lock()
	ownFds.m[fd] = ownFd{ino: st.Ino, pid: pid}
	ownFds.Unlock()
	return ownKey{fd: fd, ino: st.Ino}
}

// untrackOwnPidfd forgets the entry k; call it before closing k.fd. An entry
// that now belongs to another pidfd (the number was reused) is left alone.
func untrackOwnPidfd(k ownKey) {
	ownFds.Lock()
	if e, ok := ownFds.m[k.fd]; ok && e.ino == k.ino {
		delete(ownFds.m, k.fd)
	}
	ownFds.Unlock()
}

func isOwnPidfd(fd int, ino uint64, pid int) bool {
	ownFds.Lock()
	e, ok := ownFds.m[fd]
	ownFds.Unlock()
	return ok && e.ino == ino && e.pid == pid
}

// pidfdDev is the st_dev of pidfds: pidfs on Linux >= 6.9, where only pidfds
// live on that device; the anonymous-inode device before that, shared with
// eventfd and epoll (then pidfdKind says readlink must decide).
var pidfdKind = sync.OnceValues(func() (dev uint64, pidfs bool) {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return 0, false
	}
	defer unix.Close(fd)
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return 0, false
	}
	defer unix.Close(efd)
	var a, b unix.Stat_t
	if unix.Fstat(fd, &a) != nil || unix.Fstat(efd, &b) != nil {
		return 0, false
	}
	return a.Dev, a.Dev != b.Dev
})

// isPidfd reports whether the fd whose fstat is st is a pidfd.
func isPidfd(fd int, st *unix.Stat_t) bool {
	dev, pidfs := pidfdKind()
	if pidfs {
		return st.Dev == dev
	}
	if dev != 0 && st.Dev != dev {
		return false
	}
	target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	return err == nil && target == "anon_inode:[pidfd]"
}

// foreignPidfd is a pidfd in the fd table that proctree did not open.
type foreignPidfd struct {
	fd, pid int
}

// scanForeignPidfds lists the pidfds in this process's fd table that
// proctree did not open and that refer to a process not yet reaped.
func scanForeignPidfds() ([]foreignPidfd, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("proctree: list own fds: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("proctree: list own fds: %w", err)
	}
	dirfd := int(d.Fd())
	var out []foreignPidfd
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd == dirfd {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || !isPidfd(fd, &st) {
			continue // closed meanwhile, or not a pidfd
		}
		pid, err := pidfdTarget(fd)
		if err != nil || pid <= 0 {
			continue // reaped (nothing left to own) or outside our pid namespace
		}
		if isOwnPidfd(fd, st.Ino, pid) {
			continue
		}
		out = append(out, foreignPidfd{fd: fd, pid: pid})
	}
	return out, nil
}

// pidfdTarget returns the pid of a pidfd's process, -1 once it has been
// reaped: PIDFD_GET_INFO where the kernel has it (6.13+), else the Pid: line
// of /proc/self/fdinfo/<fd>.
func pidfdTarget(fd int) (int, error) {
	info := unix.PidfdInfo{Mask: unix.PIDFD_INFO_PID}
	err := unix.IoctlPidfdInfo(fd, &info)
	if err == nil {
		return int(info.Pid), nil
	}
	if errors.Is(err, syscall.ESRCH) {
		return -1, nil
	}
	f, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parsePidfdInfo(f)
}

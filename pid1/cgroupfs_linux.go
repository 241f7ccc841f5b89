package pid1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/proctree"
)

// The few cgroup v2 file operations CMD's cgroup needs, kept here rather
// than taken from package cgroup (the agent's, with its backends) so that
// an init binary links pid1, proctree and x/sys only.

// cgroup2Mount finds where the cgroup v2 hierarchy is mounted (on a hybrid
// host /sys/fs/cgroup/unified, in a container usually /sys/fs/cgroup), and
// which cgroup the mount shows at its top ("/" unless a subtree is
// bind-mounted).
func cgroup2Mount() (mnt, root string, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mount-point options ... - fstype source options
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if !ok || len(pf) < 5 || len(qf) < 1 || qf[0] != "cgroup2" {
			continue
		}
		var st unix.Statfs_t
		if unix.Statfs(pf[4], &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return pf[4], pf[3], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", err
	}
	return "", "", errors.New("no cgroup v2 hierarchy is mounted")
}

// ownCgroup returns init's cgroup v2 path ("0::" in /proc/self/cgroup).
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(b)) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
			return p, nil
		}
	}
	return "", errors.New("init is in no cgroup v2 (no 0:: line in /proc/self/cgroup)")
}

// startTime returns a process's start time (clock ticks after boot).
func startTime(pid int) (uint64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := proctree.ParseStat(f)
	return st.StartTime, err
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// members lists the processes in the cgroup and the cgroups below it.
func (c *cmdCgroup) members() ([]int, error) {
	var pids []int
	err := filepath.WalkDir(c.path, func(path string, d os.DirEntry, err error) error {
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil // a child cgroup removed meanwhile
		case err != nil:
			return err
		case !d.IsDir():
			return nil
		}
		b, rerr := os.ReadFile(filepath.Join(path, "cgroup.procs"))
		if rerr != nil {
			return nil //nolint:nilerr // removed meanwhile: nothing left in it
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids, err
}

func (c *cmdCgroup) countMembers() (int, error) {
	pids, err := c.members()
	return len(pids), err
}

// signalAll sends sig to every process in the cgroup (and SIGCONT after
// it, so that a stopped one can act on it), each through a pidfd opened
// after checking that the pid is still a member: a pid reused meanwhile by
// a process elsewhere is never hit. It returns how many it signalled.
func (c *cmdCgroup) signalAll(sig unix.Signal) (int, error) {
	pids, err := c.members()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone
		}
		if c.holds(pid) {
			if unix.PidfdSendSignal(fd, sig, nil, 0) == nil {
				n++
			}
			if sig != unix.SIGKILL && sig != unix.SIGCONT {
				_ = unix.PidfdSendSignal(fd, unix.SIGCONT, nil, 0)
			}
		}
		unix.Close(fd)
	}
	return n, nil
}

// holds reports whether pid is in the cgroup or below, by /proc/<pid>/cgroup.
func (c *cmdCgroup) holds(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
			return p == c.rel || strings.HasPrefix(p, c.rel+"/")
		}
	}
	return false
}

// waitEmpty waits until no live process is left in the cgroup, woken by
// inotify on cgroup.events (armed before the first look; the file is read
// again after every wake-up, since the kernel rate-limits the events).
func (c *cmdCgroup) waitEmpty(ctx context.Context) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return os.NewSyscallError("inotify_init1", err)
	}
	f := os.NewFile(uintptr(fd), "inotify") // on Go's netpoller
	defer f.Close()
	if _, err := unix.InotifyAddWatch(fd, filepath.Join(c.path, "cgroup.events"), unix.IN_MODIFY); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // removed: it was empty
		}
		return fmt.Errorf("watch %s/cgroup.events: %w", c.path, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 4096)
	for c.populated() {
		if _, err := f.Read(buf); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
	return nil
}

package pid1

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// cmdCgroup is the child cgroup CMD is spawned into, under init's own
// cgroup v2: membership is inherited at fork, so setsid'ed double forks stay
// in it, and cgroup.kill ends them all at once. init uses one when it is
// neither PID 1 nor a subreaper (Config.Cgroup), since the process tree
// then loses whatever is re-parented away from it.
//
// Its name says who made it, orphand-init-<pid>-<start time>, and init
// holds an exclusive flock(2) on the directory for as long as it lives: a
// cgroup left behind by an init that was SIGKILLed is recognised by the
// next init in the same cgroup, which removes it if it is empty (see
// removeStale). The lock is what proves the owner gone, even when the pid
// in the name means another process in the reader's pid namespace.
type cmdCgroup struct {
	path string   // the directory
	rel  string   // the cgroup, as /proc/<pid>/cgroup shows it
	dir  *os.File // the directory, locked; for CLONE_INTO_CGROUP
}

// cgroupPrefix starts the name of every cgroup init creates.
const cgroupPrefix = "orphand-init-"

// openCgroup creates CMD's cgroup when Config.Cgroup asks for one, and
// returns nil (saying why at Info level) when init cannot create one.
func (s *supervisor) openCgroup() *cmdCgroup {
	switch {
	case s.cfg.NoKillRemaining || s.cfg.Cgroup == CgroupOff:
		return nil
	case s.cfg.Cgroup == CgroupAuto && s.role != roleNone:
		return nil // the process tree holds every descendant
	}
	cg, err := newCmdCgroup(s.self, s.log)
	if err != nil {
		s.log.Info("orphand init: CMD runs without a cgroup of its own; remaining descendants are found by walking the process tree", "reason", err)
		return nil
	}
	return cg
}

// newCmdCgroup creates CMD's cgroup below init's own, after removing what
// dead inits left there.
func newCmdCgroup(self int, log *slog.Logger) (*cmdCgroup, error) {
	mnt, root, err := cgroup2Mount()
	if err != nil {
		return nil, err
	}
	own, err := ownCgroup()
	if err != nil {
		return nil, err
	}
	under, ok := strings.CutPrefix(own, strings.TrimSuffix(root, "/"))
	if !ok || (under != "" && under[0] != '/') {
		return nil, fmt.Errorf("init's cgroup %s is not in the cgroup2 mount at %s (which shows %s)", own, mnt, root)
	}
	start, err := startTime(self)
	if err != nil {
		return nil, err
	}
	parent := filepath.Join(mnt, under)
	removeStale(parent, self, log)
	name := fmt.Sprintf("%s%d-%d", cgroupPrefix, self, start)
	cg := &cmdCgroup{path: filepath.Join(parent, name), rel: filepath.Join(own, name)}
	if err := unix.Mkdir(cg.path, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", cg.path, err)
	}
	if cg.dir, err = lockDir(cg.path, 0); err != nil {
		_ = unix.Rmdir(cg.path)
		return nil, err
	}
	return cg, nil
}

// lockDir opens dir and takes an exclusive flock on it (how is 0 to wait,
// unix.LOCK_NB not to).
func lockDir(dir string, how int) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|how); err != nil {
		f.Close()
		return nil, os.NewSyscallError("flock "+dir, err)
	}
	return f, nil
}

// removeStale removes the cgroups in parent that inits now dead left there
// (SIGKILLed before they could), if they are empty. One whose owner lives
// is never touched: a process with its pid and start time exists, or its
// directory is locked. One that still has processes is left as it is: they
// are not this init's to kill.
func removeStale(parent string, self int, log *slog.Logger) {
	names, err := readDirNames(parent)
	if err != nil {
		return
	}
	for _, name := range names {
		pid, start, ok := ownerOf(name)
		if !ok || pid == self {
			continue
		}
		if st, err := startTime(pid); err == nil && st == start {
			continue // its owner lives in this pid namespace
		}
		path := filepath.Join(parent, name)
		f, err := lockDir(path, unix.LOCK_NB)
		if err != nil {
			continue // locked: its owner lives (elsewhere), or it is gone
		}
		err = unix.Rmdir(path)
		f.Close()
		if err != nil {
			log.Info("orphand init: a cgroup left by a dead init still has processes; leaving it", "cgroup", path, "err", err)
			continue
		}
		log.Debug("orphand init: removed a cgroup left by a dead init", "cgroup", path)
	}
}

// ownerOf parses orphand-init-<pid>-<start>.
func ownerOf(name string) (pid int, start uint64, ok bool) {
	rest, ok := strings.CutPrefix(name, cgroupPrefix)
	if !ok {
		return 0, 0, false
	}
	if _, err := fmt.Sscanf(rest, "%d-%d", &pid, &start); err != nil || pid <= 0 {
		return 0, 0, false
	}
	return pid, start, true
}

// dirFD is the directory's descriptor, for CLONE_INTO_CGROUP. It stays open
// (and locked) until remove.
func (c *cmdCgroup) dirFD() int { return int(c.dir.Fd()) }

// populated reports whether a live process is left in the cgroup or below
// (zombies do not count).
func (c *cmdCgroup) populated() bool {
	b, err := os.ReadFile(filepath.Join(c.path, "cgroup.events"))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) // unreadable: assume the worst
	}
	return strings.Contains(string(b), "populated 1")
}

// killNow writes cgroup.kill without waiting for the cgroup to empty.
func (c *cmdCgroup) killNow() error {
	return os.WriteFile(filepath.Join(c.path, "cgroup.kill"), []byte("1"), 0)
}

// kill SIGKILLs everything in the cgroup — through cgroup.kill (Linux 5.14),
// else member by member until none is left — and waits until it is empty.
// It returns how many processes it found there, and how it killed them.
func (c *cmdCgroup) kill(ctx context.Context) (int, string, error) {
	n, _ := c.countMembers()
	if err := c.killNow(); err == nil {
		return n, "cgroup.kill", c.waitEmpty(ctx)
	}
	for c.populated() {
		if _, err := c.signalAll(unix.SIGKILL); err != nil {
			return n, "sigkill", err
		}
		wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		err := c.waitEmpty(wctx)
		cancel()
		if ctx.Err() != nil {
			return n, "sigkill", ctx.Err()
		}
		if err == nil {
			break
		}
	}
	return n, "sigkill", nil
}

// remove deletes the cgroup (retrying while the kernel still holds it busy
// for a moment after "populated 0") and releases the lock.
func (c *cmdCgroup) remove() error {
	defer c.dir.Close()
	var err error
	for delay := time.Millisecond; delay < time.Second; delay *= 2 {
		err = unix.Rmdir(c.path)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(delay)
	}
	return fmt.Errorf("remove %s: %w", c.path, err)
}

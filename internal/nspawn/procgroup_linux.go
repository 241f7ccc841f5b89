package nspawn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// procGroup is a cgroup of our own holding a process tree we started (nspawn
// and the container, or mmdebstrap), so that all of it can be ended with
// cgroup.kill whatever state it is in. On hybrid hosts the tree is also put
// in a group of the same name under the name=systemd v1 hierarchy, which
// nspawn uses for the container's own tracking; that one is only removed.
type procGroup struct {
	v2    string // directory in the cgroup2 mount
	v1    string // directory in the name=systemd hierarchy, or ""
	guard *guard // ends the group if this program dies; nil for a found group

	noKillFile bool // tests: act as if cgroup.kill were missing (kernel < 5.14)
}

// hostCgroups finds the cgroup2 mount and the name=systemd v1 hierarchy.
func hostCgroups() (v2, v1 string, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	mounts, err := mountinfo.GetMountsFromReader(f, nil)
	if err != nil {
		return "", "", fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	v2, v1 = cgroupMounts(mounts)
	if v2 == "" {
		return "", "", errors.New("no cgroup2 mount in /proc/self/mountinfo: mount one (mount -t cgroup2 none /sys/fs/cgroup/unified) or boot with cgroup v2")
	}
	return v2, v1, nil
}

// newProcGroup creates the group name; withV1 also creates it under the
// name=systemd hierarchy when the host has one. It starts the group's guard,
// which also removes the directory remove ("" for none) should this program
// die before destroy.
func newProcGroup(name string, withV1 bool, remove string) (*procGroup, error) {
	v2root, v1root, err := hostCgroups()
	if err != nil {
		return nil, err
	}
	g := &procGroup{v2: filepath.Join(v2root, name)}
	if err := os.Mkdir(g.v2, 0o755); err != nil {
		return nil, fmt.Errorf("create cgroup %s (needs root and a writable cgroup2 mount): %w", g.v2, err)
	}
	if withV1 && v1root != "" {
		g.v1 = filepath.Join(v1root, name)
		if err := os.Mkdir(g.v1, 0o755); err != nil {
			_ = os.Remove(g.v2)
			return nil, fmt.Errorf("create cgroup %s: %w", g.v1, err)
		}
	}
	if g.guard, err = startGuard(g, remove); err != nil {
		return nil, errors.Join(err, g.destroy(teardownWait))
	}
	return g, nil
}

// openV2 opens the cgroup2 directory for clone3(CLONE_INTO_CGROUP), so the
// first process is inside from its first instruction.
func (g *procGroup) openV2() (*os.File, error) {
	return os.OpenFile(g.v2, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// populated reads "populated" from cgroup.events: whether any process is
// left in the group or below it.
func (g *procGroup) populated() (bool, error) {
	b, err := os.ReadFile(filepath.Join(g.v2, "cgroup.events"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("populated ")); ok {
			return string(v) == "1", nil
		}
	}
	return false, fmt.Errorf("%s/cgroup.events has no populated line", g.v2)
}

// kill SIGKILLs everything in the group and below. cgroup.kill (Linux 5.14)
// does it in one write, escapees included; without it every pid of every
// cgroup.procs below is signalled (callers repeat until empty).
func (g *procGroup) kill() error {
	err := fs.ErrNotExist
	if !g.noKillFile {
		err = writeExisting(filepath.Join(g.v2, "cgroup.kill"), "1")
	}
	if err == nil || errors.Is(err, fs.ErrNotExist) && !g.exists() {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write %s/cgroup.kill: %w", g.v2, err)
	}
	return filepath.WalkDir(g.v2, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil //nolint:nilerr // a group vanishing mid-walk is expected
		}
		b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		for f := range strings.FieldsSeq(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		return nil
	})
}

// writeExisting writes to a file that must exist: cgroupfs files are never
// created, and O_CREAT would turn "no such feature" into a confusing error.
func writeExisting(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (g *procGroup) exists() bool {
	_, err := os.Stat(g.v2)
	return err == nil
}

// destroy kills what is left, waits until the group is empty and removes
// both directories with everything nspawn and systemd created below them.
// It uses its own deadline: it runs after the run's context has ended. On
// failure the guard stays armed, so the cleanup is tried again when this
// program exits.
func (g *procGroup) destroy(wait time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := g.empty(ctx); err != nil {
		return err
	}
	var errs []error
	for _, root := range []string{g.v2, g.v1} {
		if root != "" {
			errs = append(errs, removeTree(ctx, root))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if g.guard != nil {
		err := g.guard.release()
		g.guard = nil
		return err
	}
	return nil
}

// empty kills until no process is left in the group.
func (g *procGroup) empty(ctx context.Context) error {
	for {
		busy, err := g.populated()
		if err != nil || !busy {
			return err
		}
		if err := g.kill(); err != nil {
			return err
		}
		// "populated 0" arrives asynchronously after the kill; a short sleep
		// between re-reads is plenty for a test harness's teardown.
		select {
		case <-ctx.Done():
			return fmt.Errorf("cgroup %s still has processes after cgroup.kill: %w", g.v2, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// removeTree removes an empty cgroup and its child groups, deepest first.
// rmdir of a just-emptied v1 group can fail with EBUSY for a moment, so
// that is retried until ctx ends.
func removeTree(ctx context.Context, root string) error {
	var dirs []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	slices.Reverse(dirs) // children after parents in walk order
	for _, d := range dirs {
		for {
			err := unix.Rmdir(d)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || ctx.Err() != nil {
				return fmt.Errorf("remove cgroup %s: %w", d, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

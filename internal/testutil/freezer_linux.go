package testutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
)

// FreezerV1 is a cgroup a test made in the cgroup v1 freezer hierarchy of
// a hybrid host. A process put there and frozen ignores even SIGKILL (it
// sits in D state in __refrigerator) until it is thawed, then dies: a real
// fault for tests of kills that do not finish.
type FreezerV1 struct {
	t    testing.TB
	Dir  string // the cgroup's directory
	Path string // the cgroup, as /proc/<pid>/cgroup names it
}

// freezeTimeout bounds a freeze or a thaw: the kernel does it in
// milliseconds, but a loaded machine is slow.
const freezeTimeout = 30 * time.Second

// NewFreezerV1 makes a cgroup in the v1 freezer hierarchy, found in
// /proc/self/mountinfo, or skips the test with the reason (fails it in
// strict mode) where none is mounted. When the test ends it is thawed, the
// processes still in it are killed, and it is removed.
func NewFreezerV1(t testing.TB) *FreezerV1 {
	t.Helper()
	RequireRoot(t)
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	var root string
	for _, m := range mounts {
		if slices.Contains(strings.Split(m.VFSOptions, ","), "freezer") && m.Root == "/" {
			root = m.Mountpoint
			break
		}
	}
	if root == "" {
		Skipf(t, "needs a cgroup v1 freezer hierarchy (a hybrid or legacy cgroup host); this host mounts none")
	}
	name := "orphand-test-" + RandHex(4)
	f := &FreezerV1{t: t, Dir: filepath.Join(root, name), Path: "/" + name}
	if err := os.Mkdir(f.Dir, 0o755); err != nil {
		t.Fatalf("make a v1 freezer cgroup: %v", err)
	}
	t.Cleanup(f.cleanup)
	return f
}

// Add moves pid into the cgroup.
func (f *FreezerV1) Add(pid int) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.Dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		f.t.Fatalf("move pid %d into %s: %v", pid, f.Dir, err)
	}
}

// Freeze freezes the cgroup and waits until the kernel says FROZEN.
func (f *FreezerV1) Freeze() {
	f.t.Helper()
	if err := f.set("FROZEN"); err != nil {
		f.t.Fatal(err)
	}
}

// Thaw thaws the cgroup and waits until the kernel says THAWED.
func (f *FreezerV1) Thaw() {
	f.t.Helper()
	if err := f.set("THAWED"); err != nil {
		f.t.Fatal(err)
	}
}

// set writes freezer.state and waits for it to read back the same: the
// v1 freezer passes through FREEZING and has no notification to wait on.
func (f *FreezerV1) set(state string) error {
	file := filepath.Join(f.Dir, "freezer.state")
	if err := os.WriteFile(file, []byte(state), 0); err != nil {
		return fmt.Errorf("%s: write %s: %w", file, state, err)
	}
	deadline := time.Now().Add(freezeTimeout)
	for {
		b, err := os.ReadFile(file)
		if err == nil && strings.TrimSpace(string(b)) == state {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("%s: read after writing %s: %w", file, state, err)
			}
			return fmt.Errorf("%s still reads %q %v after writing %s", file, b, freezeTimeout, state)
		}
		time.Sleep(time.Millisecond)
	}
}

// cleanup thaws, kills what is left (by pid: they are the test's own) and
// removes the cgroup, which the kernel allows once it has no task.
func (f *FreezerV1) cleanup() {
	if err := f.set("THAWED"); err != nil {
		f.t.Error(err)
	}
	deadline := time.Now().Add(freezeTimeout)
	for {
		err := os.Remove(f.Dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		if b, rerr := os.ReadFile(filepath.Join(f.Dir, "cgroup.procs")); rerr == nil {
			for _, p := range strings.Fields(string(b)) {
				if pid, _ := strconv.Atoi(p); pid > 0 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if time.Now().After(deadline) {
			f.t.Errorf("remove the v1 freezer cgroup %s: %v", f.Dir, err)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

package nspawn

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
)

// startInGroup starts a shell in g that leaves a setsid escapee and a
// child behind, and waits until all three are in the group.
func startInGroup(t *testing.T, g *procGroup) *exec.Cmd {
	t.Helper()
	fd, err := g.openV2()
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	cmd := exec.Command("/bin/sh", "-c", "setsid sleep 600 & sleep 600 & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = g.kill()
		_ = cmd.Wait()
		_ = g.destroy(teardownWait)
	})
	waitFor(t, time.Minute, "three processes in the group", func() bool {
		b, _ := os.ReadFile(filepath.Join(g.v2, "cgroup.procs"))
		return len(strings.Fields(string(b))) == 3
	})
	return cmd
}

func newTestGroup(t *testing.T, remove string) *procGroup {
	t.Helper()
	testutil.RequireRoot(t)
	id, err := newRunID()
	if err != nil {
		t.Fatal(err)
	}
	g, err := newProcGroup(id.group(), true, remove)
	if err != nil {
		testutil.Skipf(t, "cannot create a cgroup: %v", err)
	}
	return g
}

// TestDestroyWithoutCgroupKill forces the fallback for kernels without
// cgroup.kill: every pid of the group is signalled until it is empty.
func TestDestroyWithoutCgroupKill(t *testing.T) {
	g := newTestGroup(t, "")
	g.noKillFile = true
	cmd := startInGroup(t, g)
	if err := g.destroy(teardownWait); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("the group's first process ended with %v, want killed", err)
	}
	for _, d := range []string{g.v2, g.v1} {
		if _, err := os.Stat(d); d != "" && err == nil {
			t.Errorf("%s still exists", d)
		}
	}
}

// TestGuardActsWhenOwnerGoes closes the guard's pipe without "done", as
// the owner's death does: the guard must kill the group, remove it and the
// extra directory, and exit.
func TestGuardActsWhenOwnerGoes(t *testing.T) {
	extra := filepath.Join(t.TempDir(), "control")
	if err := os.MkdirAll(filepath.Join(extra, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	g := newTestGroup(t, extra)
	cmd := startInGroup(t, g)
	gd := g.guard
	g.guard = nil // the test plays the dead owner
	gd.w.Close()
	if err := gd.cmd.Wait(); err != nil {
		t.Errorf("guard: %v", err)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("the group's first process ended with %v, want killed", err)
	}
	for _, d := range []string{g.v2, g.v1, extra} {
		if _, err := os.Stat(d); d != "" && err == nil {
			t.Errorf("%s still exists after the guard ran", d)
		}
	}
}

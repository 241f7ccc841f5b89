package cgroup_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/internal/cgtest"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/proctree"
)

func TestMain(m *testing.M) { cgtest.Main(m, "orphand-test-cgroup") }

// openFS opens the host's cgroup2 hierarchy for a root test, probed under
// the test root.
func openFS(t *testing.T, opts cgroup.Options) *cgroup.FS {
	t.Helper()
	testutil.RequireRoot(t)
	m, err := cgroup.Discover()
	if err != nil {
		testutil.Skipf(t, "no cgroup2: %v", err)
	}
	fs, err := cgroup.OpenFS(m, opts)
	if err != nil {
		t.Fatalf("OpenFS: %v", err)
	}
	t.Cleanup(func() { fs.Close() })
	_, root := cgtest.Root(t)
	p, err := fs.Probe(context.Background(), root)
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if !p.Writable {
		t.Fatalf("cgroup2 at %s is not writable", m.Path)
	}
	return fs
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// spawnSleeps starts n `sleep 1000` straight into the cgroup rel and reaps
// them when the test ends.
func spawnSleeps(t *testing.T, fs *cgroup.FS, rel string, n int) []*exec.Cmd {
	t.Helper()
	dir, err := fs.OpenDir(rel)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	var cmds []*exec.Cmd
	for range n {
		c := exec.Command("sleep", "1000")
		c.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
		if err := c.Start(); err != nil {
			t.Fatalf("start sleep in %s: %v", rel, err)
		}
		t.Cleanup(func() {
			_ = c.Process.Kill()
			_ = c.Wait()
		})
		cmds = append(cmds, c)
	}
	return cmds
}

// holdAll opens a pidfd for every pid, so the test can check afterwards
// that each process exited.
func holdAll(t *testing.T, pids []int) []*proctree.Process {
	t.Helper()
	var ps []*proctree.Process
	for _, pid := range pids {
		p, err := proctree.Open(pid)
		if errors.Is(err, os.ErrProcessDone) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		ps = append(ps, p)
	}
	return ps
}

// assertGone checks that the cgroup rel is empty and every held process
// has exited (zombies count: reaping is their parents' business).
func assertGone(t *testing.T, fs *cgroup.FS, rel string, held []*proctree.Process) {
	t.Helper()
	ev, err := fs.Events(rel)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Populated {
		t.Errorf("%s still populated after Kill", rel)
	}
	if pids, err := fs.Procs(rel, true); err != nil || len(pids) != 0 {
		t.Errorf("%s still has processes %v (err %v)", rel, pids, err)
	}
	ctx := ctxTimeout(t, 10*time.Second)
	for _, p := range held {
		if err := p.Wait(ctx); err != nil {
			t.Errorf("pid %d still running after Kill: %v", p.Pid(), err)
		}
	}
}

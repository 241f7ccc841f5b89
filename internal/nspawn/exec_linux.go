package nspawn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/orphand/orphand/proctree"
)

// runInGroup starts cmd as the first process of g, waits for it to exit,
// then empties and removes g. The process is cloned straight into the
// cgroup2 group, so nothing it starts can be outside it, and it gets SIGKILL
// if this program dies first (Pdeathsig; the signal follows the creating
// thread, so that thread stays locked until the child is reaped). Every
// `every`, onTick runs; when it returns true, or ctx ends, the whole group is
// killed with cgroup.kill. waitErr is cmd.Wait's result; err reports a
// failure to start or to clean up.
func runInGroup(ctx context.Context, cmd *exec.Cmd, g *procGroup, every time.Duration, onTick func() bool) (waitErr, err error) {
	cgfd, err := g.openV2()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open cgroup %s: %w", g.v2, err), g.destroy(teardownWait))
	}
	defer cgfd.Close()
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cgfd.Fd()), Pdeathsig: syscall.SIGKILL}
	// Bound Wait's wait for the output pipes, should anything the group
	// killed have passed them on.
	cmd.WaitDelay = 5 * time.Second

	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, errors.Join(fmt.Errorf("start %s: %w", cmd.Path, err), g.destroy(teardownWait))
	}

	ticker := time.NewTicker(every)
	defer ticker.Stop()
	done := ctx.Done()
	killing := false
	for waiting := true; waiting; {
		select {
		case waitErr = <-exited:
			waiting = false
			continue
		case <-done:
			killing, done = true, nil
		case <-ticker.C:
			// Once killing, kill again on every tick until the exit: a
			// process in uninterruptible sleep dies only when it wakes.
			killing = killing || (onTick != nil && onTick())
		}
		if killing {
			if err := g.kill(); err != nil {
				_ = cmd.Process.Kill() // at least the head of the tree; destroy retries the rest
			}
		}
	}
	if err := g.destroy(teardownWait); err != nil {
		return waitErr, fmt.Errorf("clean up after %s: %w", filepath.Base(cmd.Path), err)
	}
	return waitErr, nil
}

// sweepStale removes what runs of dead processes left behind: groups (with
// anything still in them) and control directories named by runID.group
// whose owner is gone. A test binary killed by SIGKILL (go test -timeout
// does that) cannot clean up after itself; Pdeathsig ends its nspawn, and
// this ends the rest the next time anyone runs.
func sweepStale(log *slog.Logger) {
	v2root, v1root, err := hostCgroups()
	if err != nil {
		return
	}
	stale := map[string]bool{}
	for _, dir := range []string{v2root, v1root, os.TempDir()} {
		if dir == "" {
			continue
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if pid, start, ok := parseGroupOwner(e.Name()); ok && e.IsDir() && !alive(pid, start) {
				stale[e.Name()] = true
			}
		}
	}
	for name := range stale {
		g := &procGroup{v2: filepath.Join(v2root, name)}
		if v1root != "" {
			g.v1 = filepath.Join(v1root, name)
		}
		err := g.destroy(teardownWait)
		if rerr := os.RemoveAll(filepath.Join(os.TempDir(), name)); err == nil {
			err = rerr
		}
		log.Info("nspawn: removed what a dead test process left behind", "name", name, "err", err)
	}
}

// alive reports whether the process pid that started at start still runs.
func alive(pid int, start uint64) bool {
	st, err := proctree.ReadStat(pid)
	return err == nil && st.StartTime == start
}

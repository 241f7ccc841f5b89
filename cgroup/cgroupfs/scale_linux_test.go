package cgroupfs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/cgroupfs"
	"github.com/orphand/orphand/cgroup/internal/cgtest"
	"github.com/orphand/orphand/internal/testutil"
)

// TestParallel200 creates 200 groups, fills each with a small tree, then
// kills and removes them all at once.
func TestParallel200(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			b, _ := openBackend(t, mode.cfg)
			c := ctx(t, 3*time.Minute)
			const n = 200
			groups := make([]cgroup.Group, n)
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Go(func() {
					g, err := b.Create(c, cgroup.Spec{ID: fmt.Sprintf("p%03d", i)})
					if err != nil {
						errs <- err
						return
					}
					groups[i] = g
					// Two sleepers double-forked away from the shell, which execs a third.
					spawnInto(t, g, "sh", "-c", "(sleep 1000 &); (setsid sleep 1000 &); exec sleep 1000")
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("Create: %v", err)
			}
			// Wait for each tree to be complete before killing.
			for _, g := range groups {
				for {
					m, err := g.Members(c)
					if err != nil {
						t.Fatal(err)
					}
					if len(m) == 3 {
						break
					}
					if c.Err() != nil {
						t.Fatalf("group %s never reached 3 members: %v", g.ID(), m)
					}
					time.Sleep(time.Millisecond)
				}
			}
			var killed sync.Map
			for _, g := range groups {
				wg.Go(func() {
					res, err := g.Kill(c, cgroup.KillOptions{})
					if err == nil {
						err = g.Remove(c)
					}
					if err != nil {
						t.Errorf("%s: %v", g.ID(), err)
					}
					killed.Store(g.ID(), res.Killed)
				})
			}
			wg.Wait()
			total := 0
			killed.Range(func(_, v any) bool { total += v.(int); return true })
			if total != 3*n {
				t.Errorf("killed %d processes in all, want %d", total, 3*n)
			}
			if refs, err := b.Groups(c); err != nil || len(refs) != 0 {
				t.Errorf("left behind: %v (%v)", refs, err)
			}
		})
	}
}

// TestDelegatedRoot runs Open with no root configured in a process whose
// cgroup carries systemd's delegation mark: it must move itself into the
// leaf "agent" and put groups under "groups".
func TestDelegatedRoot(t *testing.T) {
	testutil.RequireRoot(t)
	own := cgtest.Dir(t)
	dir := filepath.Join(cgtest.Mount(), own)
	if err := unix.Setxattr(dir, "trusted.delegate", []byte("1"), 0); err != nil {
		testutil.Skipf(t, "cannot set trusted.delegate on a cgroup (kernel < 5.7?): %v", err)
	}
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := cgtest.Helper("open-default")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	var got struct{ Root, Own string }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("helper said %q: %v", out, err)
	}
	if got.Root != own+"/groups" || got.Own != own+"/agent" {
		t.Errorf("delegated: root %q, agent in %q; want %s/groups and %s/agent", got.Root, got.Own, own, own)
	}
}

// helperOpenDefault opens the backend with the default root and prints
// the root and the process's cgroup afterwards.
func helperOpenDefault() error {
	b, err := cgroupfs.Open(context.Background(), cgroupfs.Config{})
	if err != nil {
		return err
	}
	defer b.Close()
	own, err := b.FS().CgroupOf(os.Getpid())
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]string{"Root": b.Features().Root, "Own": own})
}

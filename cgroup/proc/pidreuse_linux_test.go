package proc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/internal/cgtest"
	"github.com/orphand/orphand/cgroup/proc"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/proctree"
)

// TestPidReuse: a tracked member exits and is reaped, and a newcomer gets
// its pid and forks. Neither the newcomer nor its child becomes a member,
// and killing the group leaves them alone.
//
// With the proc connector the test runs in the initial pid namespace (the
// only one the connector serves), where ns_last_pid is shared with the
// whole host: it retries until the newcomer gets the pid. The fallback runs
// in a pid namespace of its own, where the reuse is certain — and where the
// connector's probe must fail and fall back by itself.
func TestPidReuse(t *testing.T) {
	t.Run("connector", func(t *testing.T) {
		b := openBackend(t, proc.Config{})
		rel := cgtest.Dir(t)
		var spawned []*exec.Cmd
		t.Cleanup(func() {
			_ = cgtest.KillAll(cgtest.Mount(), rel)
			for _, c := range spawned {
				_ = c.Wait()
			}
		})
		spawn := func(argv ...string) (*exec.Cmd, error) {
			c, err := spawnInto(rel, argv...)
			if err == nil {
				spawned = append(spawned, c)
			}
			return c, err
		}
		out, err := pidReuse(ctx(t, 2*time.Minute), b, spawn)
		t.Log(out)
		if errors.Is(err, errNoReuse) {
			testutil.Skipf(t, "could not make the pid be reused in the shared pid namespace: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("fallback", func(t *testing.T) {
		openBackend(t, proc.Config{NoConnector: true}) // the prerequisites
		cmd := cgtest.Helper("pid-reuse")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS}
		w := start(t, "", cmd)
		var out bytes.Buffer
		_, _ = out.ReadFrom(w.out)
		err := w.cmd.Wait()
		t.Log(out.String())
		if err != nil {
			t.Fatalf("pid-reuse helper: %v", err)
		}
	})
}

var errNoReuse = errors.New("the pid was not reused")

// helperPidReuse runs as PID 1 of a new pid namespace.
func helperPidReuse() error {
	if os.Getpid() != 1 {
		return fmt.Errorf("pid %d, want 1 in a new pid namespace", os.Getpid())
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount proc: %w", err)
	}
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := proc.Open(c, proc.Config{})
	if err != nil {
		return err
	}
	defer b.Close()
	if b.Tracking() != proc.TrackRescan {
		return fmt.Errorf("tracking %q in a pid namespace, want %q (the proc connector serves only the initial one)", b.Tracking(), proc.TrackRescan)
	}
	var spawned []*exec.Cmd
	defer func() {
		for _, c := range spawned {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}()
	spawn := func(argv ...string) (*exec.Cmd, error) {
		c := exec.Command(argv[0], argv[1:]...)
		if err := c.Start(); err != nil {
			return nil, err
		}
		spawned = append(spawned, c)
		return c, nil
	}
	out, err := pidReuse(c, b, spawn)
	fmt.Println(out)
	return err
}

// spawnInto starts argv inside the test cgroup rel.
func spawnInto(rel string, argv ...string) (*exec.Cmd, error) {
	dir, err := os.Open(cgtest.Mount() + rel)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	c := exec.Command(argv[0], argv[1:]...)
	c.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	return c, c.Start()
}

// pidReuse is the scenario of TestPidReuse. spawn starts a child of the
// caller (whom it reaps).
func pidReuse(c context.Context, b *proc.Backend, spawn func(argv ...string) (*exec.Cmd, error)) (string, error) {
	var log strings.Builder
	spawner, err := spawn("sleep", "1000")
	if err != nil {
		return "", err
	}
	victim, err := spawn("sleep", "1000")
	if err != nil {
		return "", err
	}
	pid := victim.Process.Pid
	g, err := b.Create(c, cgroup.Spec{ID: "reuse", Pids: []int{spawner.Process.Pid, pid}})
	if err != nil {
		return "", err
	}
	if m, err := g.Members(c); err != nil || !slices.Equal(m, sorted(spawner.Process.Pid, pid)) {
		return "", fmt.Errorf("members %v (%w), want the spawner and the victim", m, err)
	}
	_ = victim.Process.Kill()
	_ = victim.Wait() // reaped: the pid is free

	// The newcomer takes the pid and forks a child of its own.
	var newcomer *exec.Cmd
	for try := 0; ; try++ {
		if try == 2000 {
			return log.String(), fmt.Errorf("%w: pid %d not obtained in %d tries", errNoReuse, pid, try)
		}
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			return "", fmt.Errorf("write ns_last_pid: %w", err)
		}
		n, err := spawn("sh", "-c", "sleep 1000 & wait")
		if err != nil {
			return "", err
		}
		if n.Process.Pid == pid {
			newcomer = n
			fmt.Fprintf(&log, "pid %d reused after %d tries\n", pid, try+1)
			break
		}
		_ = n.Process.Kill()
		_ = n.Wait()
	}
	child, err := waitChild(c, pid)
	if err != nil {
		return log.String(), err
	}
	held, err := proctree.Open(child)
	if err != nil {
		return log.String(), err
	}
	defer held.Close()
	m, err := g.Members(c)
	if err != nil || !slices.Equal(m, []int{spawner.Process.Pid}) {
		return log.String(), fmt.Errorf("members %v (%w), want only the spawner %d: the newcomer %d or its child %d was taken for the victim",
			m, err, spawner.Process.Pid, pid, child)
	}
	if _, err := g.Kill(c, cgroup.KillOptions{}); err != nil {
		return log.String(), err
	}
	if newcomer.Process.Signal(syscall.Signal(0)) != nil || held.Exited() {
		return log.String(), fmt.Errorf("the kill reached the newcomer %d or its child %d", pid, child)
	}
	fmt.Fprintf(&log, "newcomer %d and its child %d untouched\n", pid, child)
	return log.String(), nil
}

// waitChild waits for pid's first child.
func waitChild(c context.Context, pid int) (int, error) {
	for {
		ds, err := proctree.Descendants(pid)
		if err != nil {
			return 0, err
		}
		if len(ds) > 0 {
			return ds[0], nil
		}
		select {
		case <-c.Done():
			return 0, c.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func sorted(pids ...int) []int {
	slices.Sort(pids)
	return pids
}

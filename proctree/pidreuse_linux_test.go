package proctree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/internal/testutil"
)

func init() { helpers["pid-reuse"] = helperPidReuse }

// TestPidReuse makes a pid be reused, inside a new pid namespace (where
// ns_last_pid is ours alone), and shows that a *Process opened before the
// reuse neither signals nor waits for the newcomer, and that OpenIdentity
// refuses it.
func TestPidReuse(t *testing.T) {
	testutil.RequireRoot(t)
	out := runHelper(t, "pid-reuse", time.Minute, func(cmd *exec.Cmd) {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS}
	})
	t.Log(out)
}

func TestOpenIdentityIno(t *testing.T) {
	self, err := Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	id := self.Identity()
	if _, pidfs := pidfdKind(); !pidfs {
		t.Skip("no pidfs (Linux < 6.9): identities carry no inode")
	}
	if id.Ino == 0 {
		t.Fatalf("identity %v has no pidfs inode", id)
	}
	old := id
	old.Ino = 0 // a record written without the inode still matches
	if p, err := OpenIdentity(old); err != nil {
		t.Fatalf("OpenIdentity without inode: %v", err)
	} else {
		p.Close()
	}
	other := id
	other.Ino++
	if _, err := OpenIdentity(other); !errors.Is(err, ErrIdentityMismatch) {
		t.Fatalf("OpenIdentity with another inode = %v, want ErrIdentityMismatch", err)
	}
	if s := id.String(); s != fmt.Sprintf("%d@%d#%d", id.Pid, id.StartTime, id.Ino) {
		t.Errorf("String = %q", s)
	}
}

func helperPidReuse() error {
	if os.Getpid() != 1 {
		return fmt.Errorf("pid %d, want 1 in a new pid namespace", os.Getpid())
	}
	if err := mountOwnProc(); err != nil {
		return err
	}
	old := exec.Command("sleep", "60")
	if err := old.Start(); err != nil {
		return err
	}
	pid := old.Process.Pid
	stale, err := Open(pid)
	if err != nil {
		return err
	}
	defer stale.Close()
	_ = old.Process.Kill()
	_ = old.Wait() // reaped: the pid is free

	// Make the next fork get the same pid.
	var newcomer *exec.Cmd
	for try := 0; ; try++ {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			return fmt.Errorf("write ns_last_pid: %w", err)
		}
		newcomer = exec.Command("sleep", "60")
		if err := newcomer.Start(); err != nil {
			return err
		}
		if newcomer.Process.Pid == pid {
			break
		}
		_ = newcomer.Process.Kill()
		_ = newcomer.Wait()
		if try == 10 {
			return fmt.Errorf("could not get pid %d again (got %d)", pid, newcomer.Process.Pid)
		}
	}
	defer killWait(newcomer)
	fresh, err := Open(pid)
	if err != nil {
		return err
	}
	defer fresh.Close()
	// Both may well have started in the same 10 ms tick: the pidfs inode
	// tells them apart.
	if _, pidfs := pidfdKind(); !pidfs {
		fmt.Printf("no pidfs: identities %v and %v compared by start time only\n", stale.Identity(), fresh.Identity())
	} else if fresh.Identity() == stale.Identity() || stale.Identity().Ino == 0 {
		return fmt.Errorf("old and new process share identity %v", fresh.Identity())
	}
	fmt.Printf("stale %v, newcomer %v\n", stale.Identity(), fresh.Identity())

	if err := stale.Signal(syscall.SIGKILL); !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stale Signal = %w, want ErrProcessDone", err)
	}
	if _, pidfs := pidfdKind(); pidfs || stale.Identity().StartTime != fresh.Identity().StartTime {
		if _, err := OpenIdentity(stale.Identity()); !errors.Is(err, ErrIdentityMismatch) {
			return fmt.Errorf("OpenIdentity(stale) = %w, want ErrIdentityMismatch", err)
		}
	}
	if err := stale.Wait(context.Background()); err != nil {
		return fmt.Errorf("stale Wait = %w, want nil (it exited)", err)
	}
	w, err := NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	fired := make(chan struct{})
	if _, err := w.Add(stale, func() { close(fired) }); err != nil {
		return err
	}
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		return errors.New("a watch on the stale process did not fire")
	}
	// The newcomer was not hit.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := fresh.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("the newcomer exited (%w): the stale handle reached it", err)
	}
	return nil
}

// mountOwnProc mounts a /proc for the current pid namespace, privately.
func mountOwnProc() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount proc: %w", err)
	}
	return nil
}

package proctree

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startSleeper starts `sleep 60` and makes sure it is gone when the test ends.
func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func TestProcessSignalAndWait(t *testing.T) {
	cmd := startSleeper(t)
	p, err := Open(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Pid() != cmd.Process.Pid || p.Identity().StartTime == 0 {
		t.Fatalf("identity %v", p.Identity())
	}
	if p.Exited() {
		t.Fatal("Exited before the signal")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a live process = %v, want deadline exceeded", err)
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(context.Background()); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if !p.Exited() {
		t.Fatal("Exited false after Wait")
	}
	_ = cmd.Wait() // reap: now the pid is free
	if err := p.Signal(0); !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("Signal after reap = %v, want ErrProcessDone", err)
	}
}

func TestProcessCloseStopsWaiters(t *testing.T) {
	cmd := startSleeper(t)
	p, err := Open(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Wait(context.Background()) }()
	time.Sleep(10 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Wait after Close = %v, want os.ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(0); err == nil {
		t.Fatal("Open(0) succeeded")
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(cmd.Process.Pid); !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("Open of a reaped pid = %v, want ErrProcessDone", err)
	}
	self, err := Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	id := self.Identity()
	id.StartTime++
	if _, err := OpenIdentity(id); !errors.Is(err, ErrIdentityMismatch) {
		t.Fatalf("OpenIdentity with a wrong start time = %v, want ErrIdentityMismatch", err)
	}
	same, err := OpenIdentity(self.Identity())
	if err != nil {
		t.Fatal(err)
	}
	same.Close()
}

func TestFromPidfd(t *testing.T) {
	cmd := startSleeper(t)
	fd, err := pidfdOpen(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	p, err := FromPidfd(fd)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Pid() != cmd.Process.Pid {
		t.Fatalf("pid %d, want %d", p.Pid(), cmd.Process.Pid)
	}
}

// TestDup checks that a duplicate is a handle of its own on the same
// process: it outlives the original's Close, and it refuses a reaped one.
func TestDup(t *testing.T) {
	cmd := startSleeper(t)
	p, err := Open(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.Dup()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Identity() != p.Identity() {
		t.Errorf("duplicate is %v, want %v", d.Identity(), p.Identity())
	}
	p.Close()
	if err := d.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("Signal through the duplicate after the original's Close: %v", err)
	}
	if err := d.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if _, err := d.Dup(); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Dup of a reaped process = %v, want ErrProcessDone", err)
	}
}

// TestManyWaitersFewThreads waits on many processes at once and checks that
// the waits do not each hold an OS thread.
func TestManyWaitersFewThreads(t *testing.T) {
	const n = 300
	var procs []*Process
	for range n {
		p, err := Open(startSleeper(t).Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() { _ = p.Wait(context.Background()) })
	}
	time.Sleep(100 * time.Millisecond)
	if threads := countThreads(t); threads > 50 {
		t.Errorf("%d OS threads while %d waits are pending: waits hold threads", threads, n)
	}
	for _, p := range procs {
		if err := p.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	for _, p := range procs {
		if !p.Exited() {
			t.Fatalf("pid %d not exited after Wait", p.Pid())
		}
		p.Close()
	}
}

func countThreads(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestProcessCloseRacesFirstWait closes a Process while its first Wait and
// Done start; under -race this catches a WaitGroup Add racing its Wait.
func TestProcessCloseRacesFirstWait(t *testing.T) {
	cmd := startSleeper(t)
	for range 50 {
		p, err := Open(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() { _ = p.Wait(context.Background()) })
		wg.Go(func() { <-p.Done() })
		wg.Go(func() { _ = p.Close() })
		wg.Wait()
		if err := p.Wait(context.Background()); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Wait after Close = %v, want os.ErrClosed", err)
		}
	}
}

func TestReadCmdlineAndWchan(t *testing.T) {
	cmd := startSleeper(t) // Start returns once the exec is done
	if got, err := ReadCmdline(cmd.Process.Pid, 0); got != "sleep 60" || err != nil {
		t.Fatalf("ReadCmdline = %q, %v", got, err)
	}
	if _, err := ReadWchan(cmd.Process.Pid); err != nil {
		t.Fatalf("ReadWchan: %v", err)
	}
	if _, err := ReadCmdline(1<<30, 0); !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("ReadCmdline of no process: %v", err)
	}
	if _, err := ReadWchan(1 << 30); !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("ReadWchan of no process: %v", err)
	}
}

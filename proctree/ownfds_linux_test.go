package proctree

import (
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// foreignFor returns the foreign pidfds that refer to pid.
func foreignFor(t *testing.T, pid int) []foreignPidfd {
	t.Helper()
	fds, err := scanForeignPidfds()
	if err != nil {
		t.Fatal(err)
	}
	var out []foreignPidfd
	for _, f := range fds {
		if f.pid == pid {
			out = append(out, f)
		}
	}
	return out
}

// os/exec's pidfd is foreign (a promise to wait); proctree's own pidfds
// (Process, Watcher) are not; a stale registry entry whose fd number now
// holds someone else's pidfd does not hide it.
func TestScanForeignPidfds(t *testing.T) {
	cmd := startSleeper(t)
	pid := cmd.Process.Pid
	if got := foreignFor(t, pid); len(got) != 1 {
		t.Fatalf("foreign pidfds for os/exec's child %d: %v, want os/exec's one", pid, got)
	}
	p, err := Open(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w, err := NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Add(p, func() {}); err != nil {
		t.Fatal(err)
	}
	if got := foreignFor(t, pid); len(got) != 1 {
		t.Fatalf("with a Process and a watch: %v, want only os/exec's pidfd", got)
	}

	// A leaked registry entry: fd closed without untracking, number reused.
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killWait(other) })
	fd1, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	k := trackOwnPidfd(fd1, pid)
	unix.Close(fd1)
	fd2, err := unix.PidfdOpen(other.Process.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd2)
	defer untrackOwnPidfd(k)
	if fd2 != fd1 {
		t.Skipf("fd number not reused (%d, then %d)", fd1, fd2)
	}
	found := false
	for _, f := range foreignFor(t, other.Process.Pid) {
		found = found || f.fd == fd2
	}
	if !found {
		t.Fatalf("pidfd %d for pid %d hidden by a stale registry entry", fd2, other.Process.Pid)
	}
}

func TestSiginfoPid(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	waitFor(t, "the child to exit", 10*time.Second, func() bool {
		return peekWaitable(unix.P_PID, cmd.Process.Pid, 0) == cmd.Process.Pid
	})
	if got := peekWaitable(unix.P_PID, cmd.Process.Pid, 0); got != cmd.Process.Pid {
		t.Fatalf("si_pid %d, want %d", got, cmd.Process.Pid)
	}
}

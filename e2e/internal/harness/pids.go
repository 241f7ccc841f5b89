package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/proctree"
)

// lastPidFile holds the last pid the kernel handed out in this pid
// namespace; root in the namespace's owning user namespace may write it.
const lastPidFile = "/proc/sys/kernel/ns_last_pid"

// pidMu keeps pid steering to one test at a time in a test binary.
var pidMu sync.Mutex

// LockPids serialises pid steering within the test binary: tests running
// in parallel would steer each other's forks. It returns the unlock.
func LockPids() (unlock func()) {
	pidMu.Lock()
	return pidMu.Unlock
}

// SetLastPid makes last+1 the pid of the next fork in this pid namespace,
// unless another process forks first (on a busy machine, retry).
func SetLastPid(last int) error {
	if err := os.WriteFile(lastPidFile, []byte(strconv.Itoa(last)), 0); err != nil {
		return fmt.Errorf("set ns_last_pid: %w", err)
	}
	return nil
}

// ErrNotReused is returned by ReusePid when every try lost the pid to
// another process.
var ErrNotReused = errors.New("pid not reused")

// reapTimeout bounds the wait for a newcomer killed by the cleanup.
const reapTimeout = time.Minute

// ReusePid starts a `sleep 1000` that gets pid, which must be free: it
// sets ns_last_pid to pid-1 and forks, up to tries times while other
// processes take the pid first. Where /proc/sys is read-only (a
// systemd-nspawn container) a shell does it in a mount namespace of its
// own where /proc/sys is remounted writable. The test's cleanup kills the
// newcomer. The error wraps ErrNotReused when the machine forked faster
// than the test every time; any other error means pids cannot be steered
// here.
func ReusePid(t testing.TB, pid, tries int) (*proctree.Process, error) {
	t.Helper()
	defer LockPids()()
	direct := true
	if probe, err := os.OpenFile(lastPidFile, os.O_WRONLY, 0); err == nil {
		probe.Close()
	} else {
		direct = false
		testutil.RequireCommand(t, "unshare")
	}
	for range tries {
		var got int
		if direct {
			if err := SetLastPid(pid - 1); err != nil {
				return nil, err
			}
			got = startSleep(t)
		} else {
			got = forkAfterLastPid(t, pid-1)
		}
		p, err := proctree.Open(got)
		if err != nil {
			t.Fatalf("pidfd for the newcomer %d: %v", got, err)
		}
		if got == pid {
			t.Cleanup(func() { killWait(p) })
			return p, nil
		}
		_ = p.Signal(syscall.SIGKILL)
		p.Close()
	}
	return nil, fmt.Errorf("%w: could not get pid %d in %d tries (a busy machine forks faster than the test)", ErrNotReused, pid, tries)
}

// startSleep starts `sleep 1000` as a child and returns its pid; the
// cleanup kills it if it still runs and reaps it.
func startSleep(t testing.TB) int {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { _ = cmd.Wait(); close(reaped) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-reaped })
	return cmd.Process.Pid
}

// forkAfterLastPid runs a shell that sets ns_last_pid to last in a mount
// namespace of its own, with /proc/sys remounted writable, then forks a
// sleep and waits for it. It returns the sleep's pid; killing the sleep
// ends the shell.
func forkAfterLastPid(t testing.TB, last int) int {
	t.Helper()
	cmd := exec.Command("unshare", "--mount", "sh", "-c",
		`mount -o remount,bind,rw /proc/sys && echo "$1" > /proc/sys/kernel/ns_last_pid && { sleep 1000 & echo $!; wait; }`,
		"sh", strconv.Itoa(last))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
		_ = cmd.Wait()
		close(reaped)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-reaped })
	pid, err := strconv.Atoi(strings.TrimSpace(<-line))
	if err != nil {
		<-reaped
		t.Fatalf("set ns_last_pid in a private mount namespace: %v (%v)", err, cmd.ProcessState)
	}
	return pid
}

// killWait SIGKILLs p through its pidfd (never another process), waits
// until it has exited and closes it.
func killWait(p *proctree.Process) {
	_ = p.Signal(syscall.SIGKILL)
	ctx, cancel := context.WithTimeout(context.Background(), reapTimeout)
	defer cancel()
	_ = p.Wait(ctx)
	p.Close()
}

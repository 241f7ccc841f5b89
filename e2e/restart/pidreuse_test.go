package restart

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/proctree"
)

// reusePid starts a `sleep 1000` that gets pid, which must be free: it sets
// ns_last_pid to pid-1 and forks, retrying while other processes take the
// pid first. Where /proc/sys is read-only (a systemd-nspawn container) a
// shell does it in a mount namespace of its own where /proc/sys is
// remounted writable. It returns nil when the machine forks too fast for
// the test to get the pid (it then says so); the newcomer is killed by the
// cleanup.
func reusePid(t *testing.T, pid int) *proctree.Process {
	t.Helper()
	direct := true
	if probe, err := os.OpenFile("/proc/sys/kernel/ns_last_pid", os.O_WRONLY, 0); err == nil {
		probe.Close()
	} else {
		direct = false
		testutil.RequireCommand(t, "unshare")
	}
	const tries = 300
	for range tries {
		var got int
		if direct {
			if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
				testutil.Skipf(t, "cannot steer pids through /proc/sys/kernel/ns_last_pid: %v", err)
			}
			c, _, _ := startChild(t, false, "sleep", "1000")
			got = c.p.Pid()
		} else {
			got = forkAfterLastPid(t, pid-1)
		}
		p, err := proctree.Open(got)
		if err != nil {
			t.Fatalf("pidfd for the newcomer %d: %v", got, err)
		}
		if got == pid {
			t.Cleanup(func() { killWait(p) })
			return p
		}
		_ = p.Signal(syscall.SIGKILL)
		p.Close()
	}
	t.Logf("note: could not get pid %d reused in %d tries (the machine forks faster than the test)", pid, tries)
	return nil
}

// forkAfterLastPid runs a shell that sets ns_last_pid to last in a mount
// namespace of its own, with /proc/sys remounted writable, then forks a
// sleep and waits for it. It returns the sleep's pid; killing the sleep
// ends the shell.
func forkAfterLastPid(t *testing.T, last int) int {
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

package cgtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// What the backends' benchmarks share: the same workload and the same
// floor (the bare kernel interface) to compare each backend with.

// FlatTree starts, straight inside the cgroup directory dir (a path, not
// relative to the mount), a shell that forks n-1 sleeps and then becomes
// the n-th, and returns once all n run and the shell has exec'd (so that
// every sleep is its child). The caller kills it (by the cgroup) and waits.
func FlatTree(t testing.TB, dir string, n int) *exec.Cmd {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("sh", "-c", `i=1; while [ $i -lt $0 ]; do sleep 1000 & i=$((i+1)); done; exec sleep 1000`, strconv.Itoa(n))
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for {
		procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(string(procs), "\n") >= n {
			if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)); err == nil && string(comm) == "sleep\n" {
				return cmd
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// KillFloor is the floor of a kill: with inotify (ifd, made by the caller)
// armed on the cgroup directory dir's cgroup.events, write cgroup.kill and
// block in read(2) until "populated 0". The caller closes ifd after the
// clock stops: closing an inotify instance waits for an RCU grace period
// (5-20 ms here), a cost a long-lived instance avoids.
func KillFloor(ifd int, dir string) error {
	if _, err := unix.InotifyAddWatch(ifd, filepath.Join(dir, "cgroup.events"), unix.IN_MODIFY); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err != nil {
		return err
	}
	ev, err := os.Open(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return err
	}
	defer ev.Close()
	buf := make([]byte, 256)
	ibuf := make([]byte, 4096)
	for {
		n, err := ev.ReadAt(buf, 0)
		if n == 0 && err != nil {
			return err
		}
		if strings.Contains(string(buf[:n]), "populated 0") {
			return nil
		}
		if _, err := unix.Read(ifd, ibuf); err != nil && err != unix.EINTR {
			return err
		}
	}
}

// MedianMS is the median of d in milliseconds, 0 for none.
func MedianMS(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2]) / float64(time.Millisecond)
}

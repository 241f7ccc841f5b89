package proctree

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/orphand/orphand/internal/testutil"
)

// Tests that change process-wide state (subreaper, reaper, parent-death
// signal, pid namespace) run in a child: the test binary re-executed with
// helperEnv naming a helper, which runs instead of the tests and reports by
// its exit status and output.
const helperEnv = "ORPHAND_PROCTREE_HELPER"

// helpers maps a helper name to its function; a returned error fails it.
var helpers = map[string]func() error{}

func TestMain(m *testing.M) {
	if name := os.Getenv(helperEnv); name != "" {
		os.Exit(runHelperMain(name))
	}
	code := m.Run()
	if testbinDir != "" {
		os.RemoveAll(testbinDir)
	}
	os.Exit(code)
}

func runHelperMain(name string) int {
	f, ok := helpers[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "no helper %q\n", name)
		return 2
	}
	if err := f(); err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", name, err)
		return 1
	}
	return 0
}

// helperCmd returns a command that runs the named helper in a child.
func helperCmd(t testing.TB, name string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + name}, env...)...)
	return cmd
}

// runHelper runs the named helper to completion (bounded by timeout) and
// fails the test when it fails.
func runHelper(t *testing.T, name string, timeout time.Duration, setup func(*exec.Cmd), env ...string) string {
	t.Helper()
	cmd := helperCmd(t, name, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if setup != nil {
		setup(cmd)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("helper %s: %v\n%s", name, err, out.String())
		}
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-errc
		t.Fatalf("helper %s: still running after %v (killed)\n%s", name, timeout, out.String())
	}
	return out.String()
}

// testCgroup creates a cgroup v2 directory for a test's processes and
// removes it, killing whatever is left in it, when the test ends. It returns
// the directory and an open fd for SysProcAttr.CgroupFD.
func testCgroup(t *testing.T) (dir string, fd int) {
	t.Helper()
	testutil.RequireRoot(t)
	mnt, err := cgroup2Mount()
	if err != nil {
		testutil.Skipf(t, "no cgroup2 mount: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	dir = filepath.Join(mnt, "orphand-test-proctree-"+hex.EncodeToString(b[:]))
	if err := os.Mkdir(dir, 0o755); err != nil {
		testutil.Skipf(t, "cannot create a cgroup under %s: %v", mnt, err)
	}
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if err := killCgroup(dir); err != nil {
			t.Errorf("cleanup of %s: %v", dir, err)
		}
	})
	return dir, int(f.Fd())
}

// killCgroup kills everything in dir, waits until it is empty and removes it.
func killCgroup(dir string) error {
	_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cgroup2Mount finds the cgroup v2 mount point in /proc/self/mountinfo.
func cgroup2Mount() (string, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup2"))
	if err != nil {
		return "", err
	}
	if len(mounts) == 0 {
		return "", errors.New("no cgroup2 in /proc/self/mountinfo")
	}
	return mounts[0].Mountpoint, nil
}

// cgroupProcs returns the pids listed in dir's cgroup.procs.
func cgroupProcs(t testing.TB, dir string) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		var pid int
		fmt.Sscan(f, &pid)
		pids = append(pids, pid)
	}
	return pids
}

// waitFor polls cond until it holds or the deadline passes. Polling is fine
// in tests that wait for a setup to settle; nothing asserts on its timing.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitForErr is waitFor for helpers, which have no *testing.T.
func waitForErr(what string, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// killWait kills cmd's process and waits for it; for t.Cleanup.
func killWait(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
}

// zombieChildren lists the children of this process that are zombies.
func zombieChildren() ([]int, error) {
	var zs []int
	err := readChildren(os.Getpid(), func(pid int) {
		if st, err := readStat(pid); err == nil && st.IsZombie() {
			zs = append(zs, pid)
		}
	})
	return zs, err
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func ctxBackground() context.Context { return context.Background() }

var testbin struct {
	once sync.Once
	path string
	err  error
}

// testbinPath builds ./internal/testbin without cgo, once per test binary.
func testbinPath(t testing.TB) string {
	t.Helper()
	goTool := testutil.RequireCommand(t, "go")
	testbin.once.Do(func() {
		dir, err := os.MkdirTemp("", "proctree-testbin-")
		if err != nil {
			testbin.err = err
			return
		}
		testbinDir = dir
		testbin.path = filepath.Join(dir, "testbin")
		cmd := exec.Command(goTool, "build", "-o", testbin.path, "./internal/testbin")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			testbin.err = fmt.Errorf("go build ./internal/testbin: %w\n%s", err, out)
		}
	})
	if testbin.err != nil {
		t.Fatal(testbin.err)
	}
	return testbin.path
}

// testbinDir is removed by TestMain after the tests.
var testbinDir string

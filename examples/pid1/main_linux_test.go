package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/proctree"
)

// TestRunsAsPid1 runs the example as PID 1 of a new pid namespace: every
// os/exec status is right while the reaper takes the orphans, SIGTERM stops
// it, and the escaped daemon is gone before it exits.
func TestRunsAsPid1(t *testing.T) {
	testutil.RequireRoot(t)
	unshare := testutil.RequireCommand(t, "unshare")
	gobin := testutil.RequireCommand(t, "go")
	exe := filepath.Join(t.TempDir(), "pid1-example")
	build := exec.Command(gobin, "build", "-o", exe, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cg := testCgroup(t)
	dir, err := cg.fs.OpenDir(cg.rel)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()

	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", "--kill-child", exe, "-jobs", "100")
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(out)
			t.Logf("output:\n%s", b)
		}
	})
	output := func() string { b, _ := os.ReadFile(out); return string(b) }
	waitFor(t, "ready", func() bool { return strings.Contains(output(), "ready: waiting for SIGTERM") })
	for _, want := range []string{"pid 1: reaper started", "jobs: 100 run, 0 with a wrong exit status"} {
		if !strings.Contains(output(), want) {
			t.Fatalf("output lacks %q", want)
		}
	}
	// SIGTERM to the example, as PID 1 of its namespace: the child of
	// unshare.
	var kids []int
	waitFor(t, "unshare's child", func() bool {
		kids, _ = proctree.Descendants(cmd.Process.Pid)
		return len(kids) > 0
	})
	if err := syscall.Kill(kids[0], syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("did not exit after SIGTERM")
	}
	if !strings.Contains(output(), ", 0 descendants left") {
		t.Errorf("descendants left at exit")
	}
}

type cgroupDir struct {
	fs  *cgroup.FS
	rel string
}

// testCgroup makes a cgroup that holds everything the test starts; it is
// killed and removed when the test ends.
func testCgroup(t *testing.T) cgroupDir {
	t.Helper()
	m, err := cgroup.Discover()
	if err != nil {
		testutil.Skipf(t, "no cgroup2: %v", err)
	}
	fs, err := cgroup.OpenFS(m, cgroup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	rel := "/orphand-test-example-pid1-" + hex.EncodeToString(b)
	if err := fs.Mkdir(rel); err != nil {
		fs.Close()
		t.Fatal(err)
	}
	fs.SetFeatures(fs.HasFile(rel, "cgroup.kill"), fs.HasFile(rel, "cgroup.freeze"))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := fs.Kill(ctx, rel, cgroup.KillOptions{}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := fs.Remove(ctx, rel); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		fs.Close()
	})
	return cgroupDir{fs, rel}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

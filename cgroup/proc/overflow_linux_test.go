package proc

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/internal/cgtest"
	"github.com/orphand/orphand/internal/testutil"
)

// TestOverflowWalksAgain makes the kernel drop proc connector events (the
// smallest receive buffer, and the reader held up while a tracked process
// forks 50 children): the backend must notice, count it, and find the
// children by walking.
func TestOverflowWalksAgain(t *testing.T) {
	testutil.RequireRoot(t)
	if cgtest.Mount() == "" {
		testutil.Skipf(t, "no cgroup2 mount (the tests use cgroups as their safety net)")
	}
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := Open(c, Config{ReceiveBuffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Tracking() != TrackConnector {
		t.Fatalf("tracking %q", b.Tracking())
	}
	rel := cgtest.Dir(t)
	dir, err := os.Open(filepath.Join(cgtest.Mount(), rel))
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	sh := exec.Command("/bin/sh", "-c", `read x; for i in $(seq 50); do sleep 1000 & done; echo done; wait`)
	sh.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	in, _ := sh.StdinPipe()
	outPipe, _ := sh.StdoutPipe()
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cgtest.KillAll(cgtest.Mount(), rel)
		_ = sh.Wait()
	})
	g, err := b.Create(c, cgroup.Spec{ID: "overflow", Pids: []int{sh.Process.Pid}})
	if err != nil {
		t.Fatal(err)
	}

	b.mu.Lock() // the reader stops at its next fork or exit event
	_, _ = in.Write([]byte("go\n"))
	line, err := bufio.NewReader(outPipe).ReadString('\n')
	b.mu.Unlock()
	if err != nil || strings.TrimSpace(line) != "done" {
		t.Fatalf("workload said %q, %v", line, err)
	}

	m, err := g.Members(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 51 {
		t.Errorf("%d members, want the shell and its 50 children", len(m))
	}
	if s := b.Stats(); s.Overflows == 0 {
		t.Errorf("Stats = %+v: no overflow noticed", s)
	}
	if _, err := g.Kill(c, cgroup.KillOptions{}); err != nil {
		t.Fatal(err)
	}
}

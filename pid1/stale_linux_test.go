package pid1_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/proctree"
)

// TestCgroupOfAKilledInitIsRemovedByTheNext: an init SIGKILLed with
// --cgroup leaves its CMD's cgroup behind (and CMD in it, since a
// subreaper's children outlive it). Once that is empty, the next init in
// the same cgroup removes it.
func TestCgroupOfAKilledInitIsRemovedByTheNext(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	cg := newTestCgroup(t)
	r := start(t, spec{cg: cg, binary: bin.init, args: []string{"--cgroup", "--", "sh", "-c", cmdCgroupLine + `echo ready; read x`}})
	left := r.waitOutput("cgroup ")
	r.waitOutput("ready")
	if err := r.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if r.exitCode() != 128+int(syscall.SIGKILL) {
		t.Fatal("init was not SIGKILLed")
	}
	// CMD lives on in the cgroup: empty it, as whoever cleans up would.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cg.fs.Kill(ctx, left, cgroup.KillOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cg.fs.Path(left)); err != nil {
		t.Fatalf("the killed init's cgroup is not there to be cleaned: %v", err)
	}
	next := start(t, spec{cg: cg, binary: bin.init, args: []string{"--cgroup", "-v", "--", "true"}})
	next.expectExit(0)
	if _, err := os.Stat(cg.fs.Path(left)); !os.IsNotExist(err) {
		t.Errorf("the next init did not remove %s (%v):\n%s", left, err, next.stderr.String())
	}
}

// TestStaleCgroupsOfLiveOwnersAreKept: only a cgroup whose owner is gone
// and which is empty is removed. Kept: one named after a live process of
// this pid namespace (this test), one whose directory is locked (an init
// in another pid namespace, where the name's pid means nothing here), one
// with processes in it; and another init's, running meanwhile.
func TestStaleCgroupsOfLiveOwnersAreKept(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	cg := newTestCgroup(t)
	self := os.Getpid()
	start0 := startTimeOf(t, self)
	dirs := map[string]bool{ // name -> removed
		fmt.Sprintf("orphand-init-%d-%d", self, start0):   false, // a live owner here
		fmt.Sprintf("orphand-init-%d-%d", self, start0+1): true,  // that pid, another start: gone
		"orphand-init-2147483646-1":                       false, // locked below
		"orphand-init-2147483645-1":                       true,  // gone, empty
		"orphand-init-2147483644-1":                       false, // gone, but a process is in it
		"orphand-init-junk":                               false, // not a name init makes
	}
	for name := range dirs {
		if err := cg.fs.Mkdir(cg.rel + "/" + name); err != nil {
			t.Fatal(err)
		}
	}
	lock, err := os.Open(cg.fs.Path(cg.rel + "/orphand-init-2147483646-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	occupant := start(t, spec{cg: cg, binary: "/bin/sh", args: []string{
		"-c", `echo $$ > "$1/cgroup.procs" && echo moved && read x`, "sh",
		cg.fs.Path(cg.rel + "/orphand-init-2147483644-1"),
	}})
	occupant.waitOutput("moved")
	other := start(t, spec{cg: cg, binary: bin.init, args: []string{"--cgroup", "--", "sh", "-c", cmdCgroupLine + `read x`}})
	otherDir := other.waitOutput("cgroup ")

	r := start(t, spec{cg: cg, binary: bin.init, args: []string{"--cgroup", "--", "true"}})
	r.expectExit(0)
	for name, removed := range dirs {
		_, err := os.Stat(cg.fs.Path(cg.rel + "/" + name))
		if gone := os.IsNotExist(err); gone != removed {
			t.Errorf("%s: removed %v, want %v", name, gone, removed)
		}
	}
	if _, err := os.Stat(cg.fs.Path(otherDir)); err != nil {
		t.Errorf("the running init's cgroup %s was removed: %v", otherDir, err)
	}
	other.release()
	other.expectExit(0)
	occupant.release()
	occupant.expectExit(0)
}

// startTimeOf is a process's start time, as init names its cgroups.
func startTimeOf(t *testing.T, pid int) uint64 {
	t.Helper()
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := proctree.ParseStat(f)
	if err != nil {
		t.Fatal(err)
	}
	return st.StartTime
}

package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/orphand/orphand/proctree"
)

// testHardenedOps exercises, against the sandboxed service, each thing the
// agent needs a privilege for: signalling another user's processes
// (CAP_KILL: the polite signal of a grace, watch targets), reading their
// /proc, identifying a non-root peer, moving a process between cgroups
// (attach) and killing on request. A sandbox setting that takes one of them
// away fails here with the operation's name.
func testHardenedOps(t *testing.T) {
	t.Run("OtherUserGrace", func(t *testing.T) {
		// nobody's group, killed with a polite SIGTERM first: the agent
		// signals each of nobody's processes itself.
		g := spawnGroup(t, "nobody", "nobody", "--grace", "30s", "--signal", "TERM")
		if g.OwnerUID != 65534 {
			t.Errorf("nobody's group has owner uid %d, want 65534", g.OwnerUID)
		}
		g.killSpawner(t)
		g.waitAllGone(t)
	})
	t.Run("WatchOtherUser", func(t *testing.T) {
		watched := startUnit(t, "pkgtest-watched.service", "", "sleep", "1000")
		targets := startUnit(t, "pkgtest-targets.service", "nobody", "sh", "-c", "sleep 1000 & sleep 1000 & wait")
		var pids []string
		waitUntil(t, "started: nobody's two sleeps", func() bool {
			pids = unitProcs(t, "pkgtest-targets.service", targets)
			return len(pids) == 2
		})
		held := holdPids(t, pids)
		mustCtl(t, "watch", "--pid", strconv.Itoa(watched), "--kill", strings.Join(pids, ","), "--name", "watch")
		run(t, "systemctl", "kill", "--signal=KILL", "pkgtest-watched.service")
		waitGone(t, held)
	})
	t.Run("AttachAndKill", func(t *testing.T) {
		g := spawnGroup(t, "attach", "")
		loner := startUnit(t, "pkgtest-loner.service", "nobody", "sleep", "1000")
		held := holdPids(t, []string{strconv.Itoa(loner)})
		mustCtl(t, "attach", g.ID, strconv.Itoa(loner))
		cg, err := os.ReadFile("/proc/" + strconv.Itoa(loner) + "/cgroup")
		if err != nil {
			t.Fatal(err)
		}
		// The cgroup2 line; a hybrid host's v1 hierarchies show up too.
		var got string
		for line := range strings.Lines(string(cg)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
				got = v
			}
		}
		if got != g.Cgroup {
			t.Errorf("after attach the process is in cgroup %q, want %s", got, g.Cgroup)
		}
		resp := mustCtl(t, "kill", g.ID)
		if resp.Killed == nil || *resp.Killed < spawnMembers+1 {
			t.Errorf("kill answered %v killed, want at least %d", resp.Killed, spawnMembers+1)
		}
		waitGone(t, held)
		g.waitAllGone(t)
	})
}

// startUnit runs argv as a service of its own (as user, root if ""), in
// callerSlice, and returns its main pid. The cleanup stops it.
func startUnit(t *testing.T, unit, user string, argv ...string) int {
	t.Helper()
	args := []string{"--unit=" + unit, "--slice=" + callerSlice}
	if user != "" {
		args = append(args, "--uid="+user)
	}
	run(t, "systemd-run", append(args, argv...)...)
	t.Cleanup(func() { _, _ = try("systemctl", "stop", unit) })
	var pid int
	waitUntil(t, "running: "+unit, func() bool {
		pid, _ = strconv.Atoi(systemctl("show", "-p", "MainPID", "--value", unit))
		return pid > 0
	})
	return pid
}

// unitProcs lists the processes of a service but its main one.
func unitProcs(t *testing.T, unit string, main int) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", callerSlice, unit, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, f := range strings.Fields(string(b)) {
		if f != strconv.Itoa(main) {
			pids = append(pids, f)
		}
	}
	return pids
}

func holdPids(t *testing.T, pids []string) []*proctree.Process {
	t.Helper()
	var held []*proctree.Process
	for _, s := range pids {
		pid, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		p, err := proctree.Open(pid)
		if errors.Is(err, os.ErrProcessDone) {
			t.Fatalf("process %d ended before the test killed anything", pid)
		}
		if err != nil {
			t.Fatalf("pidfd of %d: %v", pid, err)
		}
		t.Cleanup(func() { p.Close() })
		held = append(held, p)
	}
	return held
}

func waitGone(t *testing.T, held []*proctree.Process) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for _, p := range held {
		if err := p.Wait(ctx); err != nil {
			t.Fatalf("process %d still runs %v after the trigger: %v", p.Pid(), waitLimit, err)
		}
	}
}

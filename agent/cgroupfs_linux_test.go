package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// gatedShell starts `sh -c script` with a pipe on its stdin, so that the
// script can wait (`read x`) until the test lets it go on.
func gatedShell(t *testing.T, script string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	return startGated(t, exec.Command("sh", "-c", script))
}

// startGated starts cmd with a pipe on its stdin; the cleanup closes the
// pipe, kills cmd's process and waits for it.
func startGated(t *testing.T, cmd *exec.Cmd) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, in
}

// waitMembers polls show until the group has at least n members.
func waitMembers(t *testing.T, c *client, group string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := c.ok(ipc.Request{Op: ipc.OpShow, Group: group}).Members
		if len(m) >= n {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s has members %v, want %d", group, m, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func openAll(t *testing.T, pids []int) []*proctree.Process {
	t.Helper()
	var ps []*proctree.Process
	for _, pid := range pids {
		if p, err := proctree.Open(pid); err == nil {
			t.Cleanup(func() { p.Close() })
			ps = append(ps, p)
		}
	}
	return ps
}

// The promise: the spawner is SIGKILLed, and everything it started after
// registering — a plain child, and a double-forked setsid daemon that left
// the spawner's process tree — is killed, and the group's cgroup removed.
func TestCgroupfsSpawnerKilledTakesDaemonsWithIt(t *testing.T) {
	ta, root := startCgroupfsAgent(t, testConfig())
	events := subscribe(t, ta, "")
	c := dial(t, ta.sock)
	sh, gate := gatedShell(t, `read x; (setsid sleep 300 &); sleep 300 & wait`)
	g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: sh.Process.Pid}).Group
	if !strings.HasSuffix(g.Cgroup, "/"+g.ID) || g.Backend != "cgroupfs" {
		t.Fatalf("group %+v", g)
	}
	if _, err := io.WriteString(gate, "go\n"); err != nil {
		t.Fatal(err)
	}
	members := openAll(t, waitMembersRunning(t, c, g.ID, "sleep", 2)) // both sleeps: see the proc test
	daemonEscaped := false
	for _, p := range members {
		if st, err := proctree.ReadStat(p.Pid()); err == nil && st.PPid != sh.Process.Pid && p.Pid() != sh.Process.Pid {
			daemonEscaped = true // reparented: out of the spawner's tree, still in the group
		}
	}
	if !daemonEscaped {
		t.Log("note: the setsid daemon had not been reparented yet")
	}
	if err := sh.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev := events.waitEvent(ipc.EventKilled, g.ID)
	for _, p := range members {
		waitExit(t, p)
	}
	if *ev.Killed < 2 {
		t.Fatalf("killed %d, want the 2 survivors at least", *ev.Killed)
	}
	if left := subdirs(t, root); len(left) != 0 {
		t.Fatalf("cgroups left behind: %v", left)
	}
}

// Children forked while the registration moves a tree are caught: a shell
// forking 150 sleepers in a loop is registered mid-loop, and every sleeper
// ends up in the group.
func TestCgroupfsRegistrationCatchesForksInFlight(t *testing.T) {
	ta, _ := startCgroupfsAgent(t, testConfig())
	c := dial(t, ta.sock)
	sh, gate := gatedShell(t, `read x; i=0; while [ $i -lt 150 ]; do sleep 300 & i=$((i+1)); done; echo done; wait`)
	_ = gate
	if _, err := io.WriteString(gate, "go\n"); err != nil {
		t.Fatal(err)
	}
	waitChildren(t, sh.Process.Pid, 5)
	g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: sh.Process.Pid}).Group
	waitChildren(t, sh.Process.Pid, 150)
	members := waitMembers(t, c, g.ID, 151)
	for _, k := range children(sh.Process.Pid) {
		if !slices.Contains(members, k) {
			t.Errorf("child %d of the spawner escaped the group", k)
		}
	}
	procs := openAll(t, members)
	r := c.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID})
	if *r.Killed != 151 {
		t.Errorf("killed %d, want 151", *r.Killed)
	}
	for _, p := range procs {
		waitExit(t, p)
	}
}

// A process inside a group registers its own: the new group nests in the
// first (a subdirectory), and killing the outer one kills both.
func TestCgroupfsNesting(t *testing.T) {
	ta, root := startCgroupfsAgent(t, testConfig())
	events := subscribe(t, ta, "")
	c := dial(t, ta.sock)
	outer, gate := gatedShell(t, `read x; sleep 300 & wait`)
	go1 := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: outer.Process.Pid}).Group
	if _, err := io.WriteString(gate, "go\n"); err != nil {
		t.Fatal(err)
	}
	inner := waitChildren(t, outer.Process.Pid, 1)[0]
	pi := open(t, inner)
	gi := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: inner}).Group
	if gi.Parent != go1.ID || gi.Cgroup != go1.Cgroup+"/"+gi.ID {
		t.Fatalf("inner %+v, outer %+v", gi, go1)
	}
	if m := c.ok(ipc.Request{Op: ipc.OpShow, Group: go1.ID}).Members; len(m) != 2 {
		t.Fatalf("outer members (nested included) %v", m)
	}
	// attach of a process already inside is a no-op; of one in a foreign
	// group a refusal.
	c.ok(ipc.Request{Op: ipc.OpAttach, Group: go1.ID, Pid: inner})
	c.fails(ipc.Request{Op: ipc.OpAttach, Group: gi.ID, Pid: outer.Process.Pid}, ipc.CodeBadRequest)

	_ = outer.Process.Kill()
	events.waitEvent(ipc.EventKilled, gi.ID)
	events.waitEvent(ipc.EventKilled, go1.ID)
	waitExit(t, pi)
	if left := subdirs(t, root); len(left) != 0 {
		t.Fatalf("cgroups left behind: %v", left)
	}
}

// A watch target that died and whose pid now belongs to a newcomer: the
// newcomer is never signalled.
func TestWatchTargetPidReuse(t *testing.T) {
	ta, _ := startCgroupfsAgent(t, testConfig())
	c := dial(t, ta.sock)
	watched := spawn(t, "sleep", "300")
	target := spawn(t, "sleep", "300")
	pid := target.Process.Pid
	g := c.ok(ipc.Request{Op: ipc.OpWatch, Pid: watched.Process.Pid, Kill: []int{pid}}).Group
	_ = target.Process.Kill()
	_ = target.Wait() // reaped: the pid is free
	newcomer := reusePid(t, pid)
	pn := open(t, newcomer.Process.Pid)

	r := c.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID})
	if *r.Killed != 0 {
		t.Fatalf("killed %d, want 0 (the only target was gone)", *r.Killed)
	}
	time.Sleep(100 * time.Millisecond)
	if !alive(pn) {
		t.Fatal("the newcomer that reused the target's pid was killed")
	}
}

// reusePid starts `sleep 300` with the given pid, steering the kernel with
// /proc/sys/kernel/ns_last_pid (other processes may take it first: retry).
func reusePid(t *testing.T, pid int) *exec.Cmd {
	t.Helper()
	for range 200 {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			testutil.Skipf(t, "cannot steer pids through /proc/sys/kernel/ns_last_pid: %v", err)
		}
		cmd := spawn(t, "sleep", "300")
		if cmd.Process.Pid == pid {
			return cmd
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	t.Fatalf("could not get pid %d reused", pid)
	return nil
}

// Another uid can neither act on root's processes nor see or control
// root's groups; it can register its own processes.
func TestPolicyAnotherUID(t *testing.T) {
	setpriv := requireSetpriv(t)
	ta, _ := startCgroupfsAgent(t, testConfig())
	c := dial(t, ta.sock)
	rootProc := spawn(t, "sleep", "300")
	rootGroup := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: rootProc.Process.Pid}).Group
	nobodyProc := spawn(t, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "300")
	waitUID(t, nobodyProc.Process.Pid, 65534)

	reqs := []struct {
		line, code string
	}{
		{fmt.Sprintf(`{"op":"register","pid":%d}`, rootProc.Process.Pid), ipc.CodePermissionDenied},
		{fmt.Sprintf(`{"op":"watch","pid":%d,"kill":[%d]}`, nobodyProc.Process.Pid, rootProc.Process.Pid), ipc.CodePermissionDenied},
		{fmt.Sprintf(`{"op":"watch","pid":%d,"kill":[%d]}`, rootProc.Process.Pid, nobodyProc.Process.Pid), ipc.CodePermissionDenied},
		{fmt.Sprintf(`{"op":"kill","group":%q}`, rootGroup.ID), ipc.CodePermissionDenied},
		{fmt.Sprintf(`{"op":"show","group":%q}`, rootGroup.ID), ipc.CodePermissionDenied},
		{fmt.Sprintf(`{"op":"release","group":%q}`, rootGroup.ID), ipc.CodePermissionDenied},
		{fmt.Sprintf(`{"op":"attach","group":%q,"pid":%d}`, rootGroup.ID, nobodyProc.Process.Pid), ipc.CodePermissionDenied},
		{fmt.Sprintf(`{"op":"subscribe","group":%q}`, rootGroup.ID), ipc.CodePermissionDenied},
		{`{"op":"register","pid":1}`, ipc.CodePermissionDenied},
		{`{"op":"list"}`, ""},
		{fmt.Sprintf(`{"op":"register","pid":%d}`, nobodyProc.Process.Pid), ""},
		{`{"op":"list"}`, ""},
	}
	var lines []string
	for _, r := range reqs {
		lines = append(lines, r.line)
	}
	self := reachableCopyOfTestBinary(t, filepath.Dir(ta.sock))
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", self)
	cmd.Env = append(os.Environ(), helperEnv+"="+ta.sock, helperReqsEnv+"="+strings.Join(lines, "\n"))
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		_ = errors.As(err, &ee)
		t.Fatalf("client as uid 65534: %v\n%s\n%s", err, out, ee.Stderr)
	}
	resps := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(resps) != len(reqs) {
		t.Fatalf("got %d responses for %d requests:\n%s", len(resps), len(reqs), out)
	}
	for i, r := range reqs {
		var got ipc.Response
		if err := json.Unmarshal([]byte(resps[i]), &got); err != nil {
			t.Fatalf("%s: %v", resps[i], err)
		}
		switch {
		case r.code == "" && !got.OK:
			t.Errorf("%s: refused: %+v", r.line, got.Error)
		case r.code != "" && (got.OK || got.Error.Code != r.code):
			t.Errorf("%s: got %s, want %s", r.line, resps[i], r.code)
		case r.code != "" && got.Error.Message == "":
			t.Errorf("%s: a refusal must say why", r.line)
		}
		if i == 9 && len(got.Groups) != 0 {
			t.Errorf("uid 65534 sees root's groups: %+v", got.Groups)
		}
		if i == 11 && (len(got.Groups) != 1 || got.Groups[0].OwnerUID != 65534) {
			t.Errorf("uid 65534 should see exactly its own group: %+v", got.Groups)
		}
	}
	// Root sees both.
	if l := c.ok(ipc.Request{Op: ipc.OpList}).Groups; len(l) != 2 {
		t.Fatalf("root sees %d groups, want 2", len(l))
	}
}

func requireSetpriv(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	return testutil.RequireCommand(t, "setpriv")
}

// waitUID waits until pid runs as uid (setpriv switches before exec).
func waitUID(t *testing.T, pid int, uid uint32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st, err := proctree.ReadStatus(pid)
		if err == nil && st.Need(proctree.StatusUID) == nil && st.UID.Real == uid {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("pid %d never ran as uid %d", pid, uid)
}

// 500 clients register and kill concurrently; nothing is left behind.
func TestCgroupfsConcurrentRegisterAndKill(t *testing.T) {
	ta, root := startCgroupfsAgent(t, testConfig())
	const n = 500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			cmd := exec.Command("sleep", "300")
			if err := cmd.Start(); err != nil {
				errs <- err
				return
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			c := dial(t, ta.sock)
			r := c.do(ipc.Request{Op: ipc.OpRegister, Pid: cmd.Process.Pid, Name: "c" + strconv.Itoa(i)})
			if !r.OK {
				errs <- fmt.Errorf("register: %w", r.Error)
				return
			}
			k := c.do(ipc.Request{Op: ipc.OpKill, Group: r.Group.ID})
			if !k.OK || *k.Killed != 1 {
				errs <- fmt.Errorf("kill: %w (killed %v)", k.Error, k.Killed)
				return
			}
			if st, _ := cmd.Process.Wait(); st == nil || st.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				errs <- fmt.Errorf("pid %d: %v, want killed by SIGKILL", cmd.Process.Pid, st)
			}
			c.nc.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := dial(t, ta.sock).ok(ipc.Request{Op: ipc.OpStatus}).Status
	if st.Groups[ipc.StateDead] != n || st.Groups[ipc.StateActive] != 0 || st.Groups[ipc.StateKilling] != 0 {
		t.Errorf("status groups %v", st.Groups)
	}
	if left := subdirs(t, root); len(left) != 0 {
		t.Fatalf("%d cgroups left behind", len(left))
	}
}

// reachableCopyOfTestBinary copies the test binary into dir (which another
// uid can reach; the go build directory is private to root).
func reachableCopyOfTestBinary(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "agent.test")
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// A released group's cgroup stays while its processes live, and is removed
// once they are gone.
func TestReleasedCgroupRemovedWhenEmpty(t *testing.T) {
	ta, root := startCgroupfsAgent(t, testConfig())
	c := dial(t, ta.sock)
	p := spawn(t, "sleep", "300")
	g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: p.Process.Pid}).Group
	c.ok(ipc.Request{Op: ipc.OpRelease, Group: g.ID})
	dir := filepath.Join(root, g.ID)
	time.Sleep(100 * time.Millisecond)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("a released group's cgroup vanished while its process lives: %v", err)
	}
	_ = p.Process.Kill()
	_ = p.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the released group's empty cgroup was not removed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A spawner that already exited (a zombie, not yet reaped) cannot be
// registered: there is nothing left to watch.
func TestCgroupfsRegisterZombie(t *testing.T) {
	ta, root := startCgroupfsAgent(t, testConfig())
	c := dial(t, ta.sock)
	z := exec.Command("true")
	if err := z.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = z.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := proctree.ReadStat(z.Process.Pid)
		if err == nil && st.IsZombie() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child never became a zombie")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.fails(ipc.Request{Op: ipc.OpRegister, Pid: z.Process.Pid}, ipc.CodeNoSuchProcess)
	if left := subdirs(t, root); len(left) != 0 {
		t.Fatalf("cgroups left behind: %v", left)
	}
}

package security

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/ipc"
)

// waitState polls a group's state (as its owner) until it is want.
func (u *user) waitState(t *testing.T, id, want string) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		st := u.ok(ipc.Request{Op: ipc.OpShow, Group: id}).Group.State
		if st == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s is %s after %v, want %s", id, st, waitLong, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cgroupOf is pid's cgroup v2 path.
func cgroupOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p
		}
	}
	t.Fatalf("pid %d has no cgroup v2 line: %q", pid, b)
	return ""
}

// testPidReuseWatchTarget: a watch target that exits and whose pid goes to
// someone else — root, then the attacker itself — is never signalled
// when the watched process exits; naming the new owner of the pid is
// refused.
func testPidReuseWatchTarget(t *testing.T, a *agent, keep func(...*proc)) {
	u := a.as(t, attacker)
	for _, newOwner := range []int{0, attacker} {
		watched, target := sleeper(t, attacker), sleeper(t, attacker)
		g := u.ok(ipc.Request{Op: ipc.OpWatch, Pid: watched.Pid(), Kill: []int{target.Pid()}}).Group
		pid := target.Pid()
		target.kill()
		newcomer := startWithPid(t, newOwner, pid, "sleep", "1000")
		keep(newcomer)
		if newOwner == 0 {
			other := sleeper(t, attacker)
			u.refused("watch own, kill the target's pid now root's", ipc.Request{Op: ipc.OpWatch, Pid: other.Pid(), Kill: []int{pid}}, ipc.CodePermissionDenied)
			u.refused("attach the target's pid now root's", ipc.Request{Op: ipc.OpAttach, Group: g.ID, Pid: pid}, ipc.CodePermissionDenied)
		}
		watched.kill() // the trigger
		u.waitState(t, g.ID, ipc.StateDead)
		if r := u.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID}); r.Killed == nil || *r.Killed != 0 {
			t.Errorf("the watch group counted %v killed; its only target had exited", r.Killed)
		}
		stillAlive(t, "the process that took a dead target's pid (uid "+strconv.Itoa(newOwner)+")", newcomer)
	}
}

// testPidReuseSpawner: a spawner that dies triggers its group even if its
// pid is handed out again at once; the newcomer is not in the group and
// survives; a dead group takes no newcomer; and a pid the attacker's
// process left, now root's, cannot be registered.
func testPidReuseSpawner(t *testing.T, a *agent, keep func(...*proc)) {
	u := a.as(t, attacker)
	spawner := startAs(t, attacker, "sh", "-c", "sleep 1000 & wait")
	g := u.ok(ipc.Request{Op: ipc.OpRegister, Pid: spawner.Pid()}).Group
	pid := spawner.Pid()
	spawner.kill()
	newcomer := startWithPid(t, attacker, pid, "sleep", "1000")
	keep(newcomer)
	u.waitState(t, g.ID, ipc.StateDead)
	if cg := cgroupOf(t, pid); strings.HasPrefix(cg, a.root+"/") {
		t.Errorf("the newcomer with the spawner's pid is in the agent's cgroup %s", cg)
	}
	u.refused("attach the newcomer to the dead group", ipc.Request{Op: ipc.OpAttach, Group: g.ID, Pid: pid}, ipc.CodeBadRequest)
	u.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID}) // a dead group: answers with its count, touches nothing
	stillAlive(t, "the process that took a dead spawner's pid", newcomer)

	left := sleeper(t, attacker)
	pid = left.Pid()
	left.kill()
	rootNewcomer := startWithPid(t, 0, pid, "sleep", "1000")
	keep(rootNewcomer)
	u.refused("register a pid its process left, now root's", ipc.Request{Op: ipc.OpRegister, Pid: pid}, ipc.CodePermissionDenied)
	u.refused("watch a pid its process left, now root's", ipc.Request{Op: ipc.OpWatch, Pid: pid, Kill: []int{u.pid}}, ipc.CodePermissionDenied)
	stillAlive(t, "root's process with a pid the attacker's had", rootNewcomer)
}

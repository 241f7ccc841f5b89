package security

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// hostileConfig keeps the defaults but a connection total small enough to
// fill in a test (2100, of which root keeps 64).
const hostileConfig = `
[limits]
connections_total = 2100
connections_root_reserve = 64
`

// TestHostileLocalUser plays a local user attacking the agent, each attack
// in a subtest, against one agent; at the end the agent must still serve,
// and every process the attacker may not kill must be alive.
func TestHostileLocalUser(t *testing.T) {
	a := startAgent(t, hostileConfig)
	var victims []*proc
	keep := func(ps ...*proc) { victims = append(victims, ps...) }
	for _, sc := range []struct {
		name string
		fn   func(t *testing.T, a *agent, keep func(...*proc))
	}{
		{"ForeignProcesses", testForeignProcesses},
		{"ForeignGroups", testForeignGroups},
		{"ProtectedProcesses", testProtectedProcesses},
		{"PidReuseWatchTarget", testPidReuseWatchTarget},
		{"PidReuseSpawner", testPidReuseSpawner},
		{"CgroupEscape", testCgroupEscape},
		{"Frames", testFrames},
		{"ConnectionFlood", testConnectionFlood},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.fn(t, a, keep) })
	}

	// The agent still serves: status, and a legitimate register and kill by
	// another user.
	st := a.status(t)
	t.Logf("after the attacks: %d connections, groups %v", st.Connections, st.Groups)
	v := a.as(t, victim)
	p := startAs(t, victim, "sleep", "1000")
	g := v.ok(ipc.Request{Op: ipc.OpRegister, Pid: p.Pid()}).Group
	if r := v.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID}); r.Killed == nil || *r.Killed != 1 {
		t.Errorf("a legitimate kill after the attacks: %+v", r)
	}
	p.waitExit(t, "killed with its group")
	stillAlive(t, "after every attack", victims...)
}

// sleeper starts a sleep as uid that the test kills at its end.
func sleeper(t *testing.T, uid int) *proc { return startAs(t, uid, "sleep", "1000") }

// testForeignProcesses: the attacker may not register, watch, attach or
// kill processes of root or of another user, in any position of a request.
func testForeignProcesses(t *testing.T, a *agent, keep func(...*proc)) {
	rootProc, theirs, mine := sleeper(t, 0), sleeper(t, victim), sleeper(t, attacker)
	keep(rootProc, theirs)
	u := a.as(t, attacker)
	deny := ipc.CodePermissionDenied
	u.refused("register root's process", ipc.Request{Op: ipc.OpRegister, Pid: rootProc.Pid()}, deny)
	u.refused("register another user's process", ipc.Request{Op: ipc.OpRegister, Pid: theirs.Pid()}, deny)
	u.refused("watch root's process", ipc.Request{Op: ipc.OpWatch, Pid: rootProc.Pid(), Kill: []int{mine.Pid()}}, deny)
	u.refused("watch own, kill root's", ipc.Request{Op: ipc.OpWatch, Pid: mine.Pid(), Kill: []int{rootProc.Pid()}}, deny)
	u.refused("watch own, kill another user's", ipc.Request{Op: ipc.OpWatch, Pid: mine.Pid(), Kill: []int{theirs.Pid()}}, deny)
	u.refused("watch own, kill own and another user's", ipc.Request{Op: ipc.OpWatch, Pid: mine.Pid(), Kill: []int{mine.Pid(), theirs.Pid()}}, deny)
	own := u.ok(ipc.Request{Op: ipc.OpRegister, Pid: mine.Pid()}).Group
	u.refused("attach root's process to own group", ipc.Request{Op: ipc.OpAttach, Group: own.ID, Pid: rootProc.Pid()}, deny)
	u.refused("attach another user's process to own group", ipc.Request{Op: ipc.OpAttach, Group: own.ID, Pid: theirs.Pid()}, deny)
	watched := sleeper(t, attacker)
	wg := u.ok(ipc.Request{Op: ipc.OpWatch, Pid: watched.Pid(), Kill: []int{mine.Pid()}}).Group
	u.refused("attach root's process to own watch group", ipc.Request{Op: ipc.OpAttach, Group: wg.ID, Pid: rootProc.Pid()}, deny)
	u.refused("attach another user's process to own watch group", ipc.Request{Op: ipc.OpAttach, Group: wg.ID, Pid: theirs.Pid()}, deny)

	// Its own are its own: the kill takes exactly them.
	u.ok(ipc.Request{Op: ipc.OpKill, Group: own.ID})
	mine.waitExit(t, "its group was killed")
	u.ok(ipc.Request{Op: ipc.OpRelease, Group: wg.ID})
	stillAlive(t, "foreign processes", rootProc, theirs, watched)
}

// testForeignGroups: another user's groups cannot be seen, controlled,
// nested in or subscribed to.
func testForeignGroups(t *testing.T, a *agent, keep func(...*proc)) {
	theirs, rootsProc := sleeper(t, victim), sleeper(t, 0)
	keep(theirs, rootsProc)
	v := a.as(t, victim)
	tg := v.ok(ipc.Request{Op: ipc.OpRegister, Pid: theirs.Pid(), Name: "victim"}).Group
	rg := a.as(t, 0).ok(ipc.Request{Op: ipc.OpRegister, Pid: rootsProc.Pid(), Name: "root"}).Group
	mine := sleeper(t, attacker)
	u := a.as(t, attacker)
	sub := a.as(t, attacker)
	sub.ok(ipc.Request{Op: ipc.OpSubscribe})
	deny := ipc.CodePermissionDenied
	for _, g := range []*ipc.Group{tg, rg} {
		u.refused("kill "+g.Name+"'s group", ipc.Request{Op: ipc.OpKill, Group: g.ID}, deny)
		u.refused("release "+g.Name+"'s group", ipc.Request{Op: ipc.OpRelease, Group: g.ID}, deny)
		u.refused("show "+g.Name+"'s group", ipc.Request{Op: ipc.OpShow, Group: g.ID}, deny)
		u.refused("attach own process to "+g.Name+"'s group", ipc.Request{Op: ipc.OpAttach, Group: g.ID, Pid: mine.Pid()}, deny)
		u.refused("nest own group in "+g.Name+"'s", ipc.Request{Op: ipc.OpRegister, Pid: mine.Pid(), Parent: g.ID}, deny)
		u.refused("subscribe to "+g.Name+"'s group", ipc.Request{Op: ipc.OpSubscribe, Group: g.ID}, deny)
	}
	for _, g := range u.ok(ipc.Request{Op: ipc.OpList}).Groups {
		if g.OwnerUID != attacker {
			t.Errorf("the attacker lists another's group: %+v", g)
		}
	}
	if st := u.ok(ipc.Request{Op: ipc.OpStatus}).Status; st.Groups[ipc.StateActive] != 0 {
		t.Errorf("the attacker's status counts others' groups: %v", st.Groups)
	}
	// Events of others' groups never reach the attacker's subscription:
	// the first event it sees is of its own group, after the victim's.
	other := sleeper(t, victim)
	og := v.ok(ipc.Request{Op: ipc.OpRegister, Pid: other.Pid()}).Group
	v.ok(ipc.Request{Op: ipc.OpKill, Group: og.ID})
	own := u.ok(ipc.Request{Op: ipc.OpRegister, Pid: mine.Pid()}).Group
	if l, err := sub.line(); err != nil || !strings.Contains(string(l), own.ID) || strings.Contains(string(l), og.ID) {
		t.Errorf("the attacker's first event: %q, %v; want its own group %s", l, err, own.ID)
	}
	u.ok(ipc.Request{Op: ipc.OpKill, Group: own.ID})
	for _, g := range []*ipc.Group{tg, rg} {
		if st := a.as(t, 0).ok(ipc.Request{Op: ipc.OpShow, Group: g.ID}).Group.State; st != ipc.StateActive {
			t.Errorf("%s's group is %s after the attacks", g.Name, st)
		}
	}
	v.ok(ipc.Request{Op: ipc.OpRelease, Group: tg.ID})
	a.as(t, 0).ok(ipc.Request{Op: ipc.OpRelease, Group: rg.ID})
	stillAlive(t, "processes of others' groups", theirs, rootsProc)
}

// kernelThread finds a kernel thread other than kthreadd.
func kernelThread(t *testing.T) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 2 {
			continue
		}
		if st, err := proctree.ReadStat(pid); err == nil && st.IsKernelThread() {
			return pid
		}
	}
	t.Fatal("no kernel thread found in /proc")
	return 0
}

// testProtectedProcesses: PID 1, the agent, its parent (this test), its
// grandparent and kernel threads are refused to everyone, root included;
// pid numbers no process can have (and those that would alias a small one
// in the kernel's 32-bit pid) are bad requests.
func testProtectedProcesses(t *testing.T, a *agent, keep func(...*proc)) {
	protected := map[string]int{
		"pid 1": 1, "the agent": a.pid, "the agent's parent": os.Getpid(), "the agent's grandparent": os.Getppid(),
		"kthreadd": 2, "a kernel thread": kernelThread(t),
	}
	for _, uid := range []int{attacker, 0} {
		u := a.as(t, uid)
		mine := sleeper(t, uid)
		own := u.ok(ipc.Request{Op: ipc.OpRegister, Pid: mine.Pid()}).Group
		for what, pid := range protected {
			deny := ipc.CodePermissionDenied
			u.refused("register "+what, ipc.Request{Op: ipc.OpRegister, Pid: pid}, deny)
			u.refused("watch "+what, ipc.Request{Op: ipc.OpWatch, Pid: pid, Kill: []int{mine.Pid()}}, deny)
			u.refused("watch own, kill "+what, ipc.Request{Op: ipc.OpWatch, Pid: mine.Pid(), Kill: []int{pid}}, deny)
			u.refused("attach "+what, ipc.Request{Op: ipc.OpAttach, Group: own.ID, Pid: pid}, deny)
		}
		for _, pid := range []int{1<<32 + 1, 1<<32 + a.pid, -1, 1 << 40} {
			u.refused("register pid "+strconv.Itoa(pid), ipc.Request{Op: ipc.OpRegister, Pid: pid}, ipc.CodeBadRequest)
			u.refused("watch own, kill pid "+strconv.Itoa(pid), ipc.Request{Op: ipc.OpWatch, Pid: mine.Pid(), Kill: []int{pid}}, ipc.CodeBadRequest)
		}
		u.ok(ipc.Request{Op: ipc.OpKill, Group: own.ID})
	}
	for what, pid := range protected {
		p, err := proctree.Open(pid)
		if err != nil || p.Exited() {
			t.Errorf("%s (pid %d) is gone: %v", what, pid, err)
		}
		if p != nil {
			p.Close()
		}
	}
}

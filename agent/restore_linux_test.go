package agent

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/agent/state"
	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/proc"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// groupsByID lists the agent's groups.
func groupsByID(c *client) map[string]ipc.Group {
	out := map[string]ipc.Group{}
	for _, g := range c.ok(ipc.Request{Op: ipc.OpList}).Groups {
		if _, dup := out[g.ID]; dup {
			c.t.Fatalf("group %s listed twice", g.ID)
		}
		out[g.ID] = g
	}
	return out
}

// waitState polls until group id reaches state.
func waitState(t *testing.T, c *client, id, state string) ipc.Group {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		g, ok := groupsByID(c)[id]
		if ok && g.State == state {
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s is %+v, want state %s", id, g, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killReap SIGKILLs a process the test started and reaps it, freeing its pid.
func killReap(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// Across a restart: live spawners are watched again (nested groups too), a
// spawner that died while the agent was down has its group killed at once,
// a watch target that died is dropped, an on=disconnect group fires, ended
// groups stay visible; with the fd store, spawners come back as pidfds.
func TestRestartTakesOverGroups(t *testing.T) {
	r := newRestartable(t, true)
	ta := r.start()
	c := dial(t, ta.sock)

	surv := spawn(t, "sh", "-c", "sleep 300 & wait")
	gs := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: surv.Process.Pid, Name: "survivor"}).Group
	survMembers := waitMembers(t, c, gs.ID, 2)
	var survChild int
	for _, m := range survMembers {
		if m != surv.Process.Pid {
			survChild = m
		}
	}
	gn := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: survChild, Name: "nested"}).Group
	if gn.Parent != gs.ID {
		t.Fatalf("nested group's parent %q, want %s", gn.Parent, gs.ID)
	}
	survProcs := openAll(t, survMembers)

	orph := spawn(t, "sh", "-c", "sleep 300 & wait")
	gorph := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: orph.Process.Pid, Name: "orphaned"}).Group
	orphProcs := openAll(t, waitMembers(t, c, gorph.ID, 2))

	watched, t1, t2 := spawn(t, "sleep", "300"), spawn(t, "sleep", "300"), spawn(t, "sleep", "300")
	gw := c.ok(ipc.Request{Op: ipc.OpWatch, Pid: watched.Process.Pid, Kill: []int{t1.Process.Pid, t2.Process.Pid}}).Group
	p1 := open(t, t1.Process.Pid)

	dc := dial(t, ta.sock)
	dsp := spawn(t, "sleep", "300")
	gd := dc.ok(ipc.Request{Op: ipc.OpRegister, Pid: dsp.Process.Pid, On: ipc.OnDisconnect}).Group
	pd := open(t, dsp.Process.Pid)

	ge := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: spawn(t, "sleep", "300").Process.Pid}).Group
	c.ok(ipc.Request{Op: ipc.OpKill, Group: ge.ID})

	for _, want := range []string{spawnerFDName(gs.ID), spawnerFDName(gn.ID), spawnerFDName(gorph.ID), spawnerFDName(gw.ID), targetsFDName(gw.ID)} {
		if !slices.Contains(r.fds.names(), want) {
			t.Errorf("fd store lacks %s: %v", want, r.fds.names())
		}
	}

	ta = r.restart(func() {
		killReap(orph)
		killReap(t2)
	})
	c = dial(t, ta.sock)
	for _, p := range orphProcs {
		waitExit(t, p) // the orphan it left in its group too
	}
	if g := waitState(t, c, gorph.ID, ipc.StateDead); g.Killed < 1 {
		t.Errorf("orphaned group killed %d, want its orphan", g.Killed)
	}
	waitExit(t, pd)
	waitState(t, c, gd.ID, ipc.StateDead)
	all := groupsByID(c)
	for id, want := range map[string]string{gs.ID: ipc.StateActive, gn.ID: ipc.StateActive, gw.ID: ipc.StateActive, ge.ID: ipc.StateDead} {
		if all[id].State != want {
			t.Errorf("group %s (%s) is %q after the restart, want %s", id, all[id].Name, all[id].State, want)
		}
	}
	if tg := all[gw.ID].Targets; len(tg) != 1 || tg[0].Pid != t1.Process.Pid {
		t.Errorf("watch targets after the restart %v, want only pid %d (the other died)", tg, t1.Process.Pid)
	}
	for _, p := range survProcs {
		if !alive(p) {
			t.Fatalf("pid %d of a live spawner's group died at the restart", p.Pid())
		}
	}
	logged := r.log.String()
	for _, want := range []string{"spawners_from_fdstore=3", "killed_spawner_gone=1", "killed_disconnect=1", "targets_from_fdstore=1", "targets_exited=1"} {
		if !strings.Contains(logged, want) {
			t.Errorf("restore log lacks %s", want)
		}
	}

	// The triggers still work: the survivor's spawner and the watched
	// process die, and their groups with them.
	killReap(surv)
	for _, p := range survProcs {
		waitExit(t, p)
	}
	waitState(t, c, gs.ID, ipc.StateDead)
	waitState(t, c, gn.ID, ipc.StateDead)
	killReap(watched)
	waitExit(t, p1)
	waitState(t, c, gw.ID, ipc.StateDead)
	if left := r.fds.names(); len(left) != 0 {
		t.Errorf("fd store still holds %v once every group ended", left)
	}
	if left := subdirs(t, r.root); len(left) != 0 {
		t.Errorf("cgroups left: %v", left)
	}

	// And the next start finds them all ended.
	ta = r.restart(nil)
	for id, g := range groupsByID(dial(t, ta.sock)) {
		if g.State != ipc.StateDead {
			t.Errorf("group %s is %s after a second restart", id, g.State)
		}
	}
}

// Without the fd store, processes are found again by pid, start time and
// pidfs inode: a spawner's or a target's pid that names a newcomer after
// the downtime is never taken for the old process. The reuse is staged in
// the records (the recorded pid is made the newcomer's, as a reuse looks
// to the agent: the right pid, another start time and inode), so that the
// test does not depend on winning a race for a pid on a busy machine;
// e2e/restart makes the kernel reuse pids for real.
func TestRestartPidReused(t *testing.T) {
	r := newRestartable(t, false)
	ta := r.start()
	c := dial(t, ta.sock)
	sp := spawn(t, "sh", "-c", "sleep 300 & wait")
	g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: sp.Process.Pid}).Group
	members := openAll(t, waitMembers(t, c, g.ID, 2))
	watched, target := spawn(t, "sleep", "300"), spawn(t, "sleep", "300")
	gw := c.ok(ipc.Request{Op: ipc.OpWatch, Pid: watched.Process.Pid, Kill: []int{target.Process.Pid}}).Group

	var newSpawner, newTarget *proctree.Process
	ta = r.restart(func() {
		killReap(sp)
		killReap(target)
		newSpawner = open(t, spawn(t, "sleep", "300").Process.Pid)
		newTarget = open(t, spawn(t, "sleep", "300").Process.Pid)
		rewriteRecord(t, r.dir, g.ID, func(rec *Record) { rec.Spawner.Pid = newSpawner.Pid() })
		rewriteRecord(t, r.dir, gw.ID, func(rec *Record) { rec.Targets[0].Pid = newTarget.Pid() })
	})
	c = dial(t, ta.sock)
	for _, m := range members {
		waitExit(t, m)
	}
	waitState(t, c, g.ID, ipc.StateDead)
	if !strings.Contains(r.log.String(), "spawners_pid_reused=1") || !strings.Contains(r.log.String(), "targets_pid_reused=1") {
		t.Error("the restore log does not report both reused pids")
	}
	if got := groupsByID(c)[gw.ID]; got.State != ipc.StateActive || len(got.Targets) != 0 {
		t.Errorf("watch group after the restart: %+v, want active with no target", got)
	}
	killReap(watched)
	waitState(t, c, gw.ID, ipc.StateDead) // both kills are over
	if !alive(newSpawner) || !alive(newTarget) {
		t.Fatal("a newcomer on a recorded pid was killed")
	}
}

// rewriteRecord changes a group's record in a state directory no agent
// holds.
func rewriteRecord(t *testing.T, dir, id string, change func(*Record)) {
	t.Helper()
	st, err := state.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var rec Record
	recs, err := st.Records()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(recs[id], &rec); err != nil {
		t.Fatal(err)
	}
	change(&rec)
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit([]state.Change{{ID: id, Record: b}}); err != nil {
		t.Fatal(err)
	}
}

// writeRecords puts records in a state directory, as an agent killed at
// some moment would have left them.
func writeRecords(t *testing.T, dir string, recs ...Record) {
	t.Helper()
	st, err := state.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var changes []state.Change
	for _, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		changes = append(changes, state.Change{ID: r.ID, Record: b})
	}
	if err := st.Commit(changes); err != nil {
		t.Fatal(err)
	}
}

// moveInto makes a cgroup under root named id and moves pid into it.
func moveInto(t *testing.T, root, id string, pid int) {
	t.Helper()
	dir := filepath.Join(root, id)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		t.Fatal(err)
	}
}

// A registration cut short by a crash: completed when its cgroup exists
// (the processes were moved), forgotten when it does not.
func TestRestartCompletesInterruptedRegistration(t *testing.T) {
	r := newRestartable(t, false)
	moved, notMoved := spawn(t, "sleep", "300"), spawn(t, "sleep", "300")
	pm, pn := open(t, moved.Process.Pid), open(t, notMoved.Process.Pid)
	rel := strings.TrimPrefix(r.root, mountOf(t))
	moveInto(t, r.root, "aaaaaaaaaa01", moved.Process.Pid)
	rec := func(id string, p *proctree.Process) Record {
		return Record{
			ID: id, Kind: ipc.KindSubtree, On: ipc.OnExit, Spawner: p.Identity(), Signal: "SIGTERM",
			State: stateRegistering, Backend: "cgroupfs", Ref: cgroup.Ref{ID: id}, Created: time.Now(),
		}
	}
	writeRecords(t, r.dir, rec("aaaaaaaaaa01", pm), rec("aaaaaaaaaa02", pn))

	c := dial(t, r.start().sock)
	all := groupsByID(c)
	if g := all["aaaaaaaaaa01"]; g.State != ipc.StateActive || g.Cgroup != rel+"/aaaaaaaaaa01" {
		t.Fatalf("interrupted registration with a cgroup: %+v, want active in %s/aaaaaaaaaa01", g, rel)
	}
	if _, ok := all["aaaaaaaaaa02"]; ok {
		t.Fatal("an interrupted registration without a cgroup was taken over")
	}
	if !strings.Contains(r.log.String(), "registrations_completed=1") || !strings.Contains(r.log.String(), "registrations_abandoned=1") {
		t.Error("the restore log does not count the interrupted registrations")
	}
	killReap(moved)
	waitState(t, c, "aaaaaaaaaa01", ipc.StateDead)
	if !alive(pn) {
		t.Fatal("the process of the abandoned registration was killed")
	}
	if recs, err := r.durable.store.Records(); err != nil {
		t.Fatal(err)
	} else if _, ok := recs["aaaaaaaaaa02"]; ok {
		t.Error("the abandoned registration's record was kept")
	}
}

// A kill cut short by a crash within its grace is resumed by the next
// agent: the polite signal again, SIGKILL when the grace recorded ends.
func TestRestartResumesKill(t *testing.T) {
	r := newRestartable(t, false)
	sp := spawn(t, "sh", "-c", `trap "" TERM; sleep 300 & wait; sleep 300`)
	psh := open(t, sp.Process.Pid)
	kids := waitChildren(t, sp.Process.Pid, 1)
	pkid := open(t, kids[0])
	moveInto(t, r.root, "cccccccccc01", sp.Process.Pid)
	if err := os.WriteFile(filepath.Join(r.root, "cccccccccc01", "cgroup.procs"), []byte(strconv.Itoa(kids[0])), 0); err != nil {
		t.Fatal(err)
	}
	rel := strings.TrimPrefix(r.root, mountOf(t))
	grace := 3 * time.Second
	writeRecords(t, r.dir, Record{
		ID: "cccccccccc01", Kind: ipc.KindSubtree, On: ipc.OnExit, Spawner: psh.Identity(), Signal: "SIGTERM",
		State: ipc.StateKilling, KillReason: reasonRequest, KillBy: time.Now().Add(grace),
		Backend: "cgroupfs", Ref: cgroup.Ref{ID: "cccccccccc01", Path: rel + "/cccccccccc01"}, Created: time.Now(),
	})
	c := dial(t, r.start().sock)
	if !strings.Contains(r.log.String(), "kills_resumed=1") {
		t.Error("the restore log does not report the resumed kill")
	}
	waitExit(t, pkid) // the polite signal, sent again
	waitExit(t, psh)  // SIGKILL, once the recorded grace ended
	if g := waitState(t, c, "cccccccccc01", ipc.StateDead); g.Killed < 1 {
		t.Errorf("resumed kill counted %d", g.Killed)
	}
}

// Groups under the root with no record: an empty one is removed, a
// populated one left alone and reported until it empties.
func TestRestartUnrecordedGroups(t *testing.T) {
	r := newRestartable(t, false)
	stray := spawn(t, "sleep", "300")
	ps := open(t, stray.Process.Pid)
	if err := os.Mkdir(filepath.Join(r.root, "bbbbbbbbbb01"), 0o755); err != nil {
		t.Fatal(err)
	}
	moveInto(t, r.root, "bbbbbbbbbb02", stray.Process.Pid)
	rel := strings.TrimPrefix(r.root, mountOf(t))

	c := dial(t, r.start().sock)
	st := c.ok(ipc.Request{Op: ipc.OpStatus}).Status
	if !slices.Equal(st.Unrecorded, []string{rel + "/bbbbbbbbbb02"}) {
		t.Fatalf("unrecorded %v, want the populated group only", st.Unrecorded)
	}
	if _, err := os.Stat(filepath.Join(r.root, "bbbbbbbbbb01")); !os.IsNotExist(err) {
		t.Error("the empty unrecorded group was not removed")
	}
	if !alive(ps) {
		t.Fatal("a process in an unrecorded group was killed")
	}
	killReap(stray)
	deadline := time.Now().Add(30 * time.Second)
	for len(c.ok(ipc.Request{Op: ipc.OpStatus}).Status.Unrecorded) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the emptied unrecorded group is still reported")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(r.root, "bbbbbbbbbb02")); !os.IsNotExist(err) {
		t.Error("the emptied unrecorded group was not removed")
	}
}

// A released group stays released across a restart: its processes are
// not watched, and its cgroup is not taken for an unrecorded one.
func TestRestartKeepsReleasedGroup(t *testing.T) {
	r := newRestartable(t, false)
	ta := r.start()
	c := dial(t, ta.sock)
	sp := spawn(t, "sleep", "300")
	g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: sp.Process.Pid}).Group
	c.ok(ipc.Request{Op: ipc.OpRelease, Group: g.ID})
	c = dial(t, r.restart(nil).sock)
	if got := groupsByID(c)[g.ID]; got.State != ipc.StateReleased {
		t.Fatalf("released group after the restart: %+v", got)
	}
	if u := c.ok(ipc.Request{Op: ipc.OpStatus}).Status.Unrecorded; len(u) != 0 {
		t.Errorf("unrecorded %v", u)
	}
	p := open(t, sp.Process.Pid)
	killReap(sp)
	waitExit(t, p)
	waitNoCgroup(t, filepath.Join(r.root, g.ID))
}

func waitNoCgroup(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still exists", dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A registration whose record cannot be written is refused, and nothing
// is moved.
func TestRegisterRefusedWithoutDurableRecord(t *testing.T) {
	r := newRestartable(t, false)
	c := dial(t, r.start().sock)
	r.durable.store.Close() // every write now fails
	sp := spawn(t, "sleep", "300")
	e := c.fails(ipc.Request{Op: ipc.OpRegister, Pid: sp.Process.Pid}, ipc.CodeInternal)
	if !strings.Contains(e.Message, "nothing was changed") {
		t.Errorf("error %q", e.Message)
	}
	if left := subdirs(t, r.root); len(left) != 0 {
		t.Errorf("cgroups made for a refused registration: %v", left)
	}
	if err := syscall.Kill(sp.Process.Pid, 0); err != nil {
		t.Errorf("the spawner is gone: %v", err)
	}
}

func TestStoredFDNames(t *testing.T) {
	for name, ok := range map[string]bool{
		spawnerFDName("0123456789ab"): true, targetsFDName("0123456789ab"): true,
		"orphand.socket": false, "pidfd.": false, "pidfd.x": false, "pidfd.x.other": false, "pidfd..spawner": false,
	} {
		if IsStoredFDName(name) != ok {
			t.Errorf("IsStoredFDName(%q) = %v", name, !ok)
		}
	}
}

func mountOf(t *testing.T) string {
	m, err := cgroup.Discover()
	if err != nil {
		t.Fatal(err)
	}
	return m.Path
}

// With the proc backend nothing of a group outlives the agent: the next
// agent makes the group again around its live spawner (and its children,
// walked again); a group whose spawner died meanwhile cannot be found.
func TestRestartProcBackend(t *testing.T) {
	r := newRestartable(t, false)
	r.open = func() cgroup.Backend {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := proc.Open(ctx, proc.Config{Logger: testLogger(t)})
		if err != nil {
			t.Fatalf("proc: %v", err)
		}
		return b
	}
	c := dial(t, r.start().sock)
	live, _ := procShell(t, r.root, "sleep 1000 & wait")
	gone, _ := procShell(t, r.root, "sleep 1000 & wait")
	g1 := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: live.Process.Pid}).Group
	g2 := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: gone.Process.Pid}).Group
	kids := openAll(t, waitMembers(t, c, g1.ID, 2))
	c = dial(t, r.restart(func() { killReap(gone) }).sock)
	if !strings.Contains(r.log.String(), "recreated=1") {
		t.Error("the restore log does not report the re-created group")
	}
	if got := groupsByID(c); got[g1.ID].State != ipc.StateActive || got[g2.ID].State != ipc.StateDead {
		t.Fatalf("after the restart: %s is %s (want active), %s is %s (want dead)", g1.ID, got[g1.ID].State, g2.ID, got[g2.ID].State)
	}
	waitMembers(t, c, g1.ID, 2) // the spawner and its child, found again
	killReap(live)
	for _, p := range kids {
		waitExit(t, p)
	}
	waitState(t, c, g1.ID, ipc.StateDead)
}

// Records written before a reboot name processes of another boot: even a
// live process that matches one exactly (pid, start time and inode can
// all start over) is a stranger, never watched or killed.
func TestRestartAfterReboot(t *testing.T) {
	r := newRestartable(t, false)
	watched, target := spawn(t, "sleep", "300"), spawn(t, "sleep", "300")
	pw, pt := open(t, watched.Process.Pid), open(t, target.Process.Pid)
	writeRecords(t, r.dir, Record{
		ID: "dddddddddd01", Kind: ipc.KindWatch, On: ipc.OnExit, Spawner: pw.Identity(), Targets: []proctree.Identity{pt.Identity()},
		Signal: "SIGTERM", State: ipc.StateActive, Backend: "pidfd", Created: time.Now(), Boot: "another-boot",
	})
	c := dial(t, r.start().sock)
	if g := groupsByID(c)["dddddddddd01"]; g.State != ipc.StateDead || g.Killed != 0 {
		t.Fatalf("a group from before a reboot: %+v, want dead with nothing killed", g)
	}
	if !strings.Contains(r.log.String(), "before_reboot=1") {
		t.Error("the restore log does not count the group from before the reboot")
	}
	killReap(watched)
	if !alive(pt) {
		t.Fatal("a process matching a record from another boot was killed")
	}
}

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/orphand/orphand/ipc"
)

// spawnerScript starts a child, a grandchild and a double-forked setsid
// daemon, reports each (the lines may come in any order), and waits.
const spawnerScript = `
sleep 1000 &
sh -c 'sleep 1000 & echo "grandchild $!"; wait' &
( setsid sleep 1000 & echo "daemon $!" )
echo "ready $$ $ORPHAND_GROUP"
wait
`

// readReport reads the spawner script's three lines, in whatever order.
func readReport(t *testing.T, r *running) (pid, daemon, grandchild int, group string) {
	t.Helper()
	for range 3 {
		f := strings.Fields(r.line(t))
		switch {
		case len(f) == 3 && f[0] == "ready":
			pid, _ = strconv.Atoi(f[1])
			group = f[2]
		case len(f) == 2 && f[0] == "daemon":
			daemon, _ = strconv.Atoi(f[1])
		case len(f) == 2 && f[0] == "grandchild":
			grandchild, _ = strconv.Atoi(f[1])
		default:
			t.Fatalf("unexpected line %q from the spawner", strings.Join(f, " "))
		}
	}
	if pid == 0 || daemon == 0 || grandchild == 0 {
		t.Fatalf("spawner report incomplete: pid %d, daemon %d, grandchild %d", pid, daemon, grandchild)
	}
	return pid, daemon, grandchild, group
}

// testRunKill9: `orphanctl run` with the spawner killed by SIGKILL — its
// children, grandchildren and a setsid daemon all die with it.
func testRunKill9(t *testing.T, a *agent) {
	events := a.follow(t)
	r := a.start(t, a.bins.orphanctl, "run", "--name", "kill9", "--", "sh", "-c", spawnerScript)
	pid, daemon, grandchild, group := readReport(t, r)
	if pid != r.cmd.Process.Pid {
		t.Errorf("CMD runs as pid %d, want orphanctl's own pid %d (exec in place)", pid, r.cmd.Process.Pid)
	}
	g, members := a.show(t, group)
	if g.Spawner.Pid != pid || g.Name != "kill9" {
		t.Errorf("group %+v, want spawner %d named kill9", g, pid)
	}
	// sh, sleep, sh -c, its sleep, the daemon; the subshell has exited.
	if len(members) < 5 || !containsAll(members, pid, daemon, grandchild) {
		t.Fatalf("members %v: want the spawner %d, the daemon %d, the grandchild %d and two more", members, pid, daemon, grandchild)
	}
	held := hold(t, members...)

	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(t); code != 128+9 {
		t.Errorf("orphanctl run's status %d, want CMD's death by SIGKILL (137)", code)
	}
	ev := events.wait(t, group, ipc.EventKilled)
	waitGone(t, "member", held)
	if ev.Killed == nil || *ev.Killed < len(members)-1 {
		t.Errorf("killed event %+v, want at least %d killed", ev, len(members)-1)
	}
	if g, _ = a.show(t, group); g.State != ipc.StateDead {
		t.Errorf("group state %s, want dead", g.State)
	}
	if g.Cgroup != "" {
		waitNoDir(t, a.cgroupDir(g))
	}
}

func containsAll(s []int, v ...int) bool {
	for _, x := range v {
		found := false
		for _, y := range s {
			found = found || x == y
		}
		if !found {
			return false
		}
	}
	return true
}

var groupID = regexp.MustCompile(`^[0-9a-f]{12}$`)

// testRunExecInPlace: CMD keeps orphanctl's pid, stdio, environment and
// inherited descriptors, gets none of orphanctl's own, and its exit status
// is orphanctl's.
func testRunExecInPlace(t *testing.T, a *agent) {
	ctl := a.bins.orphanctl
	if r := a.run(t, nil, ctl, "run", "--", "sh", "-c", "exit 7"); r.code != 7 || r.stderr != "" {
		t.Errorf("run -- sh -c 'exit 7': %v", r)
	}
	if r := a.run(t, nil, ctl, "run", "--", "sh", "-c", "kill -TERM $$"); r.code != 128+15 {
		t.Errorf("run of a CMD killed by SIGTERM: %v, want 143", r)
	}
	if r := a.run(t, []byte("through stdin\n"), ctl, "run", "--", "cat"); r.code != 0 || r.stdout != "through stdin\n" {
		t.Errorf("run -- cat: %v", r)
	}
	t.Setenv("E2E_KEPT", "kept value")
	r := a.run(t, nil, ctl, "run", "--", "sh", "-c", `echo "$E2E_KEPT|$ORPHAND_GROUP|$$|$PPID"`)
	f := strings.Split(strings.TrimSpace(r.stdout), "|")
	if r.code != 0 || len(f) != 4 || f[0] != "kept value" || !groupID.MatchString(f[1]) || f[3] != strconv.Itoa(os.Getpid()) {
		t.Errorf("environment, group and parent of CMD: %v", r)
	}

	// SIGINT and SIGHUP ignored by the caller (nohup, background jobs) stay
	// ignored in CMD.
	ign := `trap '' INT HUP; exec "$@"`
	sigIgn := []string{"sh", "-c", `grep SigIgn /proc/self/status`}
	direct := a.run(t, nil, append([]string{"sh", "-c", ign, "sh"}, sigIgn...)...)
	viaRun := a.run(t, nil, append([]string{"sh", "-c", ign, "sh", ctl, "run", "--"}, sigIgn...)...)
	if direct.stdout != viaRun.stdout || direct.code != 0 || viaRun.code != 0 {
		t.Errorf("ignored signals: %q run directly, %q through orphanctl run", direct.stdout, viaRun.stdout)
	}

	// Descriptors: CMD sees exactly what it would have seen run directly,
	// an inherited extra descriptor included.
	fds := func(argv ...string) string {
		rd, wr, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		defer wr.Close()
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), ipc.SocketEnv+"="+a.socket)
		cmd.ExtraFiles = []*os.File{wr}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %v\n%s", argv, err, out.String())
		}
		return out.String()
	}
	// The shell lists its own descriptors (its glob's directory descriptor
	// shows up the same way in both runs).
	list := []string{"sh", "-c", `cd /proc/$$/fd && echo *`}
	directFds := fds(list...)
	viaRunFds := fds(append([]string{ctl, "run", "--"}, list...)...)
	if directFds != viaRunFds || !strings.Contains(" "+directFds, " 3 ") {
		t.Errorf("descriptors of CMD: %q run directly, %q through orphanctl run", directFds, viaRunFds)
	}
}

// testRunOnDisconnect: with --on disconnect, CMD holds the connection; the
// group dies when the last copy closes, here when CMD is killed (its child
// closed its copy first).
func testRunOnDisconnect(t *testing.T, a *agent) {
	events := a.follow(t)
	r := a.start(t, a.bins.orphanctl, "run", "--on", "disconnect", "--", "sh", "-c", `
( eval "exec ${ORPHAND_CONN_FD}>&-"; exec sleep 1000 ) &
echo "ready $$ $ORPHAND_GROUP $ORPHAND_CONN_FD $!"
read line
`)
	f := r.expect(t, "ready")
	if len(f) != 4 {
		t.Fatalf("ready line %v", f)
	}
	pid, _ := strconv.Atoi(f[0])
	group, fd := f[1], f[2]
	child, _ := strconv.Atoi(f[3])
	link, err := os.Readlink(filepath.Join("/proc", f[0], "fd", fd))
	if err != nil || !strings.HasPrefix(link, "socket:") {
		t.Errorf("ORPHAND_CONN_FD=%s in CMD is %q (%v), want the agent connection", fd, link, err)
	}
	g, _ := a.show(t, group)
	if g.On != ipc.OnDisconnect || g.State != ipc.StateActive {
		t.Errorf("group %+v, want an active on=disconnect group", g)
	}
	waitExec(t, child, "sleep") // its copy of the connection is closed by then
	held := hold(t, child)
	signalPid(t, pid, syscall.SIGKILL)
	ev := events.wait(t, group, ipc.EventKilling)
	if ev.Reason != "disconnect" {
		t.Errorf("killing event %+v, want reason disconnect", ev)
	}
	waitGone(t, "CMD's child", held)
}

// testRunNested: orphanctl run inside orphanctl run nests the second group
// in the first; killing the outer group kills the inner one.
func testRunNested(t *testing.T, a *agent) {
	r := a.start(t, a.bins.orphanctl, "run", "--name", "outer", "--", a.bins.orphanctl, "run", "--name", "inner", "--",
		"sh", "-c", `sleep 1000 & echo "ready $ORPHAND_GROUP"; wait`)
	inner := r.expect(t, "ready")[0]
	g, members := a.show(t, inner)
	if g.Parent == "" || g.Name != "inner" {
		t.Fatalf("inner group %+v, want one nested in the outer group", g)
	}
	held := hold(t, members...)
	// The outer group's only process moved into the inner one; the outer
	// group must still hold it (as a nested member) and stay active. On
	// the systemd backend it once ended instead, as soon as systemd saw
	// its scope empty, killing the inner group with it; a quick run could
	// finish before systemd noticed, so the check is on the group itself.
	outer, outerMembers := a.show(t, g.Parent)
	if outer.Name != "outer" {
		t.Errorf("parent group %+v, want the outer one", outer)
	}
	if outer.State != ipc.StateActive || !slices.Contains(outerMembers, members[0]) {
		t.Errorf("outer group %s with members %v, want active and holding the inner group's %v", outer.State, outerMembers, members)
	}
	res := a.ctl(t, "kill", outer.ID)
	if res.code != 0 {
		t.Fatalf("kill outer: %v", res)
	}
	waitGone(t, "inner member", held)
	if g, _ = a.show(t, inner); g.State != ipc.StateDead {
		t.Errorf("inner group %s after the outer one was killed, want dead", g.State)
	}
	if code := r.wait(t); code != 128+9 {
		t.Errorf("orphanctl run status %d, want 137", code)
	}
}

// TestRunUnreachable: without an agent, run refuses to start CMD unless
// told to run it unprotected.
func TestRunUnreachable(t *testing.T) {
	b := bins(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "nobody-listens.sock")
	mark := filepath.Join(dir, "ran")
	cmd := exec.Command(b.orphanctl, "--socket", sock, "run", "--", "touch", mark)
	out, _ := cmd.CombinedOutput()
	if code := exitCode(cmd.ProcessState); code != 125 || !strings.Contains(string(out), "is orphand running?") {
		t.Errorf("run without an agent: exit %d, %s; want 125 and a hint", code, out)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Fatal("run without an agent ran CMD")
	}
	cmd = exec.Command(b.orphanctl, "--socket", sock, "run", "--allow-unprotected", "--", "touch", mark)
	out, _ = cmd.CombinedOutput()
	if code := exitCode(cmd.ProcessState); code != 0 || !strings.Contains(string(out), "UNPROTECTED") {
		t.Errorf("run --allow-unprotected without an agent: exit %d, %s", code, out)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Errorf("run --allow-unprotected did not run CMD: %v", err)
	}
}

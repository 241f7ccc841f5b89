package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/ipc"
)

// testCLI drives the read and control commands of orphanctl as a user
// would: ls, show, tree, attach, events, kill --grace, release, status.
func testCLI(t *testing.T, a *agent) {
	dir := t.TempDir()
	termed := filepath.Join(dir, "got-TERM")
	r := a.start(t, a.bins.orphanctl, "run", "--name", "cli", "--grace", "20s", "--", "sh", "-c",
		`trap 'echo TERM > `+termed+`; exit 0' TERM
sleep 1000 &
echo "ready $ORPHAND_GROUP $!"
wait`)
	f := r.expect(t, "ready")
	id, child := f[0], f[1]
	if pid, err := strconv.Atoi(child); err == nil {
		waitExec(t, pid, "sleep") // $! is printed before the child has exec'd sleep
	}

	if res := a.ctl(t, "ls"); res.code != 0 || !strings.Contains(res.stdout, id) || !strings.Contains(res.stdout, "cli") {
		t.Errorf("ls: %v", res)
	}
	if res := a.ctl(t, "ls", "-q"); res.code != 0 || !slices.Contains(strings.Fields(res.stdout), id) {
		t.Errorf("ls -q: %v", res)
	}
	var list ipc.Response
	if res := a.ctl(t, "--json", "ls"); res.code != 0 || json.Unmarshal([]byte(res.stdout), &list) != nil || !listed(list.Groups, id) {
		t.Errorf("ls --json: %v", res)
	}
	if res := a.ctl(t, "show", id); res.code != 0 || !strings.Contains(res.stdout, "SIGTERM, then SIGKILL after 20s") {
		t.Errorf("show: %v", res)
	}
	res := a.ctl(t, "tree", id)
	spawner := strconv.Itoa(r.cmd.Process.Pid)
	if res.code != 0 || !strings.Contains(res.stdout, "─"+spawner+" sh -c") || !strings.Contains(res.stdout, "─"+child+" sleep 1000") {
		t.Errorf("tree: %v", res)
	}

	extra := sleeper(t)
	if res := a.ctl(t, "attach", id, strconv.Itoa(extra.Process.Pid)); res.code != 0 {
		t.Errorf("attach: %v", res)
	}
	var shown ipc.Response
	res = a.ctl(t, "show", id, "--json") // a global flag after the command
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &shown) != nil || !containsAll(shown.Members, extra.Process.Pid) {
		t.Errorf("show --json after attach: %v", res)
	}

	// events follows the kill; kill --grace lets the trap run first.
	ev := a.startEvents(t, id)
	held := hold(t, shown.Members...)
	res = a.ctl(t, "--json", "kill", id, "--grace", "20s")
	var killed ipc.Response
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &killed) != nil || killed.Killed == nil || *killed.Killed < 3 {
		t.Errorf("kill --json: %v", res)
	}
	waitGone(t, "group member", held)
	if b, err := os.ReadFile(termed); err != nil || strings.TrimSpace(string(b)) != "TERM" {
		t.Errorf("the spawner's TERM trap did not run before SIGKILL (grace ignored?): %q, %v", b, err)
	}
	for _, want := range []string{ipc.EventKilling, ipc.EventKilled} {
		var e ipc.Event
		if err := json.Unmarshal([]byte(ev.line(t)), &e); err != nil || e.Event != want || e.Group != id {
			t.Errorf("events --json: got %+v (%v), want %s", e, err, want)
		}
	}
	_ = ev.cmd.Process.Signal(syscall.SIGINT)
	if code := ev.wait(t); code != 0 {
		t.Errorf("events ended by SIGINT: status %d, want 0", code)
	}
	if code := r.wait(t); code != 0 {
		t.Errorf("the run's status %d, want 0 (CMD exited 0 from its TERM trap)", code)
	}

	// release: the agent lets go; the process carries on.
	free := sleeper(t)
	rel := strings.TrimSpace(a.ctl(t, "register", "--pid", strconv.Itoa(free.Process.Pid)).stdout)
	if res := a.ctl(t, "release", rel); res.code != 0 {
		t.Errorf("release: %v", res)
	}
	freeHeld := hold(t, free.Process.Pid)
	g, _ := a.show(t, rel)
	if g.State != ipc.StateReleased || !stillRuns(freeHeld[0]) {
		t.Errorf("released group %+v; its process runs: %v", g, stillRuns(freeHeld[0]))
	}
	killAndReap(t, free) // ours to end now; the agent then removes the empty cgroup
	if g.Cgroup != "" {
		waitNoDir(t, a.cgroupDir(g))
	}

	// register without --pid registers its caller: the script itself.
	self := a.start(t, "sh", "-c", `g=$(`+a.bins.orphanctl+` register --name self); echo "ready $g $$"; sleep 1000 & wait`)
	f = self.expect(t, "ready")
	if g, _ := a.show(t, f[0]); g.Name != "self" || strconv.Itoa(g.Spawner.Pid) != f[1] {
		t.Errorf("register from a script: group %+v, want the script (pid %s) as spawner", g, f[1])
	}
	if res := a.ctl(t, "kill", f[0]); res.code != 0 {
		t.Errorf("kill the script's group: %v", res)
	}
	if code := self.wait(t); code != 128+9 {
		t.Errorf("the registered script ended with %d, want 137 (killed with its group)", code)
	}

	if res := a.ctl(t, "show", "000000000000"); res.code != 1 || !strings.Contains(res.stderr, ipc.CodeNotFound) {
		t.Errorf("show of an unknown group: %v", res)
	}
	if res := a.ctl(t, "status"); res.code != 0 || !strings.Contains(res.stdout, a.backend) {
		t.Errorf("status: %v", res)
	}
}

func listed(groups []ipc.Group, id string) bool {
	for _, g := range groups {
		if g.ID == id && g.State == ipc.StateActive {
			return true
		}
	}
	return false
}

// startEvents starts `orphanctl events GROUP --json` and returns once the
// agent counts its subscription.
func (a *agent) startEvents(t *testing.T, id string) *running {
	t.Helper()
	c := a.client(t)
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r := a.start(t, a.bins.orphanctl, "events", id, "--json")
	deadline := time.Now().Add(goneTimeout)
	for {
		now, err := c.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if now.Subscribers > st.Subscribers {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphanctl events did not subscribe within %v\nstderr: %s", goneTimeout, r.stderr)
		}
		sleepBriefly()
	}
}

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

func testPerlExample(t *testing.T, a *agent) {
	testExample(t, a, testutil.RequireCommand(t, "perl"), a.bins.clientPL)
}

func testPythonExample(t *testing.T, a *agent) {
	testExample(t, a, testutil.RequireCommand(t, "python3"), a.bins.clientPY)
}

func testGoExample(t *testing.T, a *agent) {
	testExample(t, a, a.bins.goclient)
}

// exampleReport is the line every example prints once its processes run.
type exampleReport struct {
	Group    string `json:"group"`
	Spawner  int    `json:"spawner"`
	Children []int  `json:"children"`
	Daemon   int    `json:"daemon"`
}

// testExample runs an example client: it registers itself, starts children
// and a double-forked setsid daemon, and dies by SIGKILL. Every process it
// started must die with it, and its group's cgroup must go.
func testExample(t *testing.T, a *agent, argv ...string) {
	events := a.follow(t)
	name := filepath.Base(argv[len(argv)-1])
	argv = append(argv, "--socket", a.socket, "--children", "3", "--linger", "2")
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })

	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err != nil {
		t.Fatalf("%v printed no report: %v\nstderr: %s", argv, err, stderr.String())
	}
	var rep exampleReport
	if err := json.Unmarshal(line, &rep); err != nil {
		t.Fatalf("report %q: %v", line, err)
	}
	if rep.Spawner != cmd.Process.Pid || len(rep.Children) != 3 || rep.Daemon == 0 || rep.Group == "" {
		t.Fatalf("report %+v (example pid %d)", rep, cmd.Process.Pid)
	}
	held := hold(t, append(slices.Clone(rep.Children), rep.Daemon)...)
	if len(held) != 4 {
		t.Fatalf("only %d of the example's 4 processes were alive right after its report", len(held))
	}
	own, err1 := proctree.ReadStat(rep.Spawner)
	st, err2 := proctree.ReadStat(rep.Daemon)
	if err1 != nil || err2 != nil || st.Session == own.Session || st.PPid == rep.Spawner {
		t.Errorf("the daemon %d should have escaped the example's session %d and parenthood (a double-forked setsid daemon): %+v, %v %v",
			rep.Daemon, own.Session, st, err1, err2)
	}
	g, members := a.show(t, rep.Group)
	if g.Spawner.Pid != rep.Spawner || g.Kind != ipc.KindSubtree || g.State != ipc.StateActive {
		t.Errorf("group %+v, want the example's active subtree group", g)
	}
	for _, pid := range append(slices.Clone(rep.Children), rep.Daemon) {
		if !slices.Contains(members, pid) {
			t.Errorf("pid %d is not a member of the group: %v", pid, members)
		}
	}

	if err := <-exited; exitCode(cmd.ProcessState) != 128+9 {
		t.Errorf("the example ended with %v, want death by SIGKILL\nstderr: %s", err, stderr.String())
	}
	exited <- nil
	killed := events.wait(t, rep.Group, ipc.EventKilled)
	waitGone(t, "example's process", held)
	if killed.Killed == nil || *killed.Killed < 4 {
		t.Errorf("killed event %+v: want at least the 3 children and the daemon", killed)
	}
	g, _ = a.show(t, rep.Group)
	if g.State != ipc.StateDead {
		t.Errorf("group state %s after the kill, want dead", g.State)
	}
	if g.Cgroup != "" {
		waitNoDir(t, a.cgroupDir(g))
	}
	t.Logf("%s: %d processes killed, %.3f ms from the spawner's death to an empty group", name, *killed.Killed, deref(killed.Millis))
}

func deref(f *float64) float64 {
	if f == nil {
		return -1
	}
	return *f
}

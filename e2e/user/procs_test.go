package user

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/proctree"
)

// tagEnv carries a value unique to one spawner into its environment, and
// so into everything it starts: the test finds them all by it, escapees
// included, without asking the agent.
const tagEnv = "ORPHAND_USER_TAG"

// spawnScript starts a child, a grandchild, and a double-forked setsid
// daemon that reparents away from the spawner; the spawner then waits.
// Five processes in all: the spawner, a sleep, a shell and its sleep, and
// the daemon.
const (
	spawnScript  = `sleep 1000 & sh -c "sleep 1000 & wait" & ( setsid sleep 1000 & ) ; wait`
	spawnMembers = 5
)

// spawner is `orphanctl run --name NAME -- sh -c spawnScript`, run as a
// user: it registers itself with the user's agent, then becomes the shell.
type spawner struct {
	cmd  *exec.Cmd
	tag  string
	done chan struct{} // closed once the test has reaped it
}

// spawn starts a spawner as u, in the cgroup cgroupFD when it is not -1.
// The cleanup kills it and whatever it started that is left.
func (u *account) spawn(t *testing.T, b bins, name string, cgroupFD int) *spawner {
	t.Helper()
	s := &spawner{tag: testutil.RandHex(8), done: make(chan struct{})}
	s.cmd = u.command(cgroupFD, b.orphanctl, "run", "--name", name, "--", "sh", "-c", spawnScript)
	s.cmd.Env = append(s.cmd.Env, tagEnv+"="+s.tag)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
		for _, p := range tagged(s.tag) {
			_ = p.Signal(syscall.SIGKILL)
			p.Close()
		}
	})
	return s
}

// kill SIGKILLs the spawner and waits until the test has reaped it.
func (s *spawner) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// tagged holds, by pidfd, every live process (zombies aside) whose
// environment carries tag.
func tagged(tag string) []*proctree.Process {
	want := []byte(tagEnv + "=" + tag + "\x00")
	entries, _ := os.ReadDir("/proc")
	var held []*proctree.Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(env, want) {
			continue
		}
		p, err := proctree.Open(pid)
		if err != nil {
			continue
		}
		if st, err := proctree.ReadStat(pid); err != nil || st.IsZombie() {
			p.Close()
			continue
		}
		held = append(held, p)
	}
	return held
}

// hold opens a pidfd on each pid; those already gone are skipped.
func hold(t *testing.T, pids ...int) []*proctree.Process {
	t.Helper()
	var held []*proctree.Process
	for _, pid := range pids {
		if p, err := proctree.Open(pid); err == nil {
			held = append(held, p)
			t.Cleanup(func() { p.Close() })
		}
	}
	return held
}

// waitGone waits until every process has exited (zombies count as gone:
// their parents reap them), failing after waitLong.
func waitGone(t *testing.T, what string, ps []*proctree.Process) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	for _, p := range ps {
		if err := p.Wait(ctx); err != nil {
			st, _ := proctree.ReadStat(p.Pid())
			t.Fatalf("%s %d (%s) still runs after %v: %v", what, p.Pid(), st.Comm, waitLong, err)
		}
	}
}

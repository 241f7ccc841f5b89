package user

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/e2e/internal/harness"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
)

// TestCgroupfsDelegated: the administrator delegates a cgroup to a user as
// systemd would (chown of the directory and of cgroup.procs,
// cgroup.subtree_control and cgroup.threads, marked user.delegate) and
// starts the user's agent in it. The agent picks the cgroupfs backend
// there, and nothing escapes it.
func TestCgroupfsDelegated(t *testing.T) {
	u := newAccount(t, alice)
	b := binaries(t)
	deleg := delegate(t, u.uid)
	agentDir, clientsDir := openDir(t, deleg.dir), openDir(t, filepath.Join(deleg.dir, "clients"))
	d := u.startAgent(t, b, agentDir)

	st := u.mustCtl(t, b, "status").Status
	if st.Backend != "cgroupfs" || st.Mode != ipc.ModeUser || st.Cgroup["root"] != deleg.rel+"/groups" {
		t.Fatalf("status: backend %q mode %q root %v; want cgroupfs under %s/groups\n%s", st.Backend, st.Mode, st.Cgroup["root"], deleg.rel, d.Log)
	}
	verbose := u.command(-1, b.orphanctl, "-v", "status")
	var stderr bytes.Buffer
	verbose.Stderr = &stderr
	if err := verbose.Run(); err != nil || !strings.Contains(stderr.String(), "using "+u.socket()+" (your per-user agent's socket exists") {
		t.Errorf("orphanctl -v status as the user: %v; stderr %q, want the per-user socket and why", err, stderr.String())
	}

	t.Run("SpawnerKilled", func(t *testing.T) {
		s := u.spawn(t, b, "deleg", clientsDir)
		g, members := u.waitGroup(t, b, "deleg", spawnMembers)
		if !strings.HasPrefix(g.Cgroup, deleg.rel+"/groups/") {
			t.Errorf("group cgroup %s, want one under the delegated %s/groups", g.Cgroup, deleg.rel)
		}
		held := tagged(s.tag)
		if len(held) != spawnMembers || len(members) != spawnMembers {
			t.Fatalf("%d processes run, %d members; want %d of each", len(held), len(members), spawnMembers)
		}
		s.kill()
		waitGone(t, "a process of the spawner", held) // the setsid daemon too
		u.waitState(t, b, g.ID, ipc.StateDead)
	})
	for _, ex := range []struct{ name, interp, path string }{
		{"GoClient", "", b.goclient},
		{"PerlClient", "perl", b.clientPL},
		{"PythonClient", "python3", b.clientPY},
	} {
		t.Run(ex.name, func(t *testing.T) {
			argv := []string{ex.path}
			if ex.interp != "" {
				argv = []string{userCommand(t, ex.interp), ex.path}
			}
			runExample(t, u, b, clientsDir, argv)
		})
	}
	t.Run("OtherUsers", func(t *testing.T) { testOtherUsersRefused(t, u, b) })
	t.Run("AgentKilled", func(t *testing.T) { testAgentKilled(t, u, b, d, agentDir, clientsDir) })
}

// userCommand finds name on the user's $PATH (root's may hold
// interpreters of its own, out of other users' reach), or skips the test.
func userCommand(t *testing.T, name string) string {
	t.Helper()
	for _, dir := range []string{"/usr/local/bin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 != 0 {
			return p
		}
	}
	testutil.Skipf(t, "needs %s in /usr/local/bin, /usr/bin or /bin, where other users find it", name)
	return ""
}

// delegated is a cgroup given to a user.
type delegated struct {
	dir string // in the file system
	rel string // relative to the cgroup2 mount
}

// delegate makes a cgroup under the cgroup2 mount and gives it to uid the
// way systemd delegates one (Delegate=yes): the directory and the files
// that let its owner make and fill its own cgroups are chowned, and the
// user.delegate mark set. A cgroup "clients" in it, the user's too, is
// where the user's programs start. The cleanup kills and removes it all.
func delegate(t *testing.T, uid int) delegated {
	t.Helper()
	m, err := cgroup.Discover()
	if err != nil || m.Path == "" {
		testutil.Skipf(t, "no cgroup2 mount: %v", err)
	}
	name := run.CgroupPrefix + "deleg-" + testutil.RandHex(4)
	d := delegated{dir: filepath.Join(m.Path, name), rel: "/" + name}
	if err := os.Mkdir(d.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := testutil.RemoveCgroupTree(d.dir); err != nil {
			t.Error(err)
		}
	})
	for _, dir := range []string{d.dir, filepath.Join(d.dir, "clients")} {
		if dir != d.dir {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range []string{"", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"} {
			if err := os.Chown(filepath.Join(dir, f), uid, uid); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := unix.Setxattr(d.dir, "user.delegate", []byte("1"), 0); err != nil {
		testutil.Skipf(t, "cannot mark %s delegated (user.* extended attributes on cgroupfs need Linux 5.7): %v", d.dir, err)
	}
	return d
}

// openDir opens a cgroup directory to start processes in it
// (CLONE_INTO_CGROUP); the cleanup closes it.
func openDir(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// exampleReport is the line every example client prints once its
// processes run.
type exampleReport struct {
	Group    string `json:"group"`
	Spawner  int    `json:"spawner"`
	Children []int  `json:"children"`
	Daemon   int    `json:"daemon"`
}

// runExample runs an example client as the user, with no $ORPHAND_SOCKET:
// it must find the user's agent by itself, register, start children and a
// double-forked setsid daemon, and die by SIGKILL; every process it started
// must then die too.
func runExample(t *testing.T, u *account, b bins, cgroupFD int, argv []string) {
	t.Helper()
	cmd := u.command(cgroupFD, append(argv, "--children", "2", "--linger", "2")...)
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
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err != nil {
		t.Fatalf("%v printed no report: %v\nstderr: %s", argv, err, stderr.String())
	}
	var rep exampleReport
	if err := json.Unmarshal(line, &rep); err != nil || rep.Group == "" || rep.Daemon == 0 {
		t.Fatalf("report %q: %v", line, err)
	}
	held := hold(t, append(rep.Children, rep.Daemon)...)
	if len(held) != len(rep.Children)+1 {
		t.Fatalf("only %d of the example's %d processes ran right after its report", len(held), len(rep.Children)+1)
	}
	err = <-exited
	exited <- err // for the cleanup
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("the example ended with %v, want death by SIGKILL\nstderr: %s", err, stderr.String())
	}
	waitGone(t, "the example's process", held)
	g := u.waitState(t, b, rep.Group, ipc.StateDead)
	t.Logf("%s: group %s dead, %d processes killed", filepath.Base(argv[len(argv)-1]), g.ID, g.Killed)
}

// testOtherUsersRefused: another uid that can reach the socket despite
// its directory's mode (CAP_DAC_OVERRIDE) is refused by the agent, one
// without it is stopped by the mode already, and root is refused too.
func testOtherUsersRefused(t *testing.T, u *account, b bins) {
	other := newAccount(t, bob)
	withCap := other.command(-1, b.orphanctl, "--json", "--socket", u.socket(), "ls")
	withCap.SysProcAttr.AmbientCaps = []uintptr{unix.CAP_DAC_OVERRIDE}
	refusedAs(t, withCap, ipc.CodePermissionDenied, "per-user")

	without := other.command(-1, b.orphanctl, "--json", "--socket", u.socket(), "ls")
	refusedAs(t, without, "unreachable", "permission denied")

	root := other.command(-1, b.orphanctl, "--json", "--socket", u.socket(), "ls")
	root.SysProcAttr = nil // root
	refusedAs(t, root, ipc.CodePermissionDenied, "per-user")

	// The user's own client, meanwhile, is served.
	if _, err := u.ctl(t, b, "ls"); err != nil {
		t.Errorf("the user's own orphanctl after the refusals: %v", err)
	}
}

// refusedAs runs orphanctl --json and checks that its answer is an error
// with code whose message contains says.
func refusedAs(t *testing.T, cmd *exec.Cmd, code, says string) {
	t.Helper()
	out, _ := cmd.Output()
	var resp ipc.Response
	if err := json.Unmarshal(bytes.TrimSpace(out), &resp); err != nil || resp.OK || resp.Error == nil {
		t.Fatalf("%v: answer %q (%v), want a refusal", cmd.Args, out, err)
	}
	if resp.Error.Code != code || !strings.Contains(resp.Error.Message, says) {
		t.Errorf("%v (uid %v): %s: %s; want %s saying %q", cmd.Args, credUID(cmd), resp.Error.Code, resp.Error.Message, code, says)
	} else {
		t.Logf("uid %v refused: %s: %s", credUID(cmd), resp.Error.Code, resp.Error.Message)
	}
}

// credUID is the uid cmd runs as: root when it sets none.
func credUID(cmd *exec.Cmd) uint32 {
	if cmd.SysProcAttr == nil || cmd.SysProcAttr.Credential == nil {
		return 0
	}
	return cmd.SysProcAttr.Credential.Uid
}

// testAgentKilled: the agent SIGKILLed and started again takes its groups
// back, and a spawner's death after that still kills its whole group.
func testAgentKilled(t *testing.T, u *account, b bins, d *harness.Daemon, agentDir, clientsDir int) {
	s := u.spawn(t, b, "restart", clientsDir)
	g, _ := u.waitGroup(t, b, "restart", spawnMembers)
	held := tagged(s.tag)
	_ = d.Cmd.Process.Kill()
	<-d.Done()
	u.startAgent(t, b, agentDir)
	if got := u.mustCtl(t, b, "show", g.ID).Group; got.State != ipc.StateActive || got.Cgroup != g.Cgroup {
		t.Fatalf("after the agent's restart the group is %+v, want it active in %s", got, g.Cgroup)
	}
	s.kill()
	waitGone(t, "a process of the spawner", held)
	u.waitState(t, b, g.ID, ipc.StateDead)
}

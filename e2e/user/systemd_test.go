package user

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/e2e/internal/harness"
	"github.com/orphand/orphand/internal/nspawn"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// In the container: the users (with /etc/passwd entries, as a user manager
// needs) and where the share's programs are installed.
const (
	guestAlice  = 1000
	guestBob    = 1001
	guestLibDir = "/usr/local/lib/orphand-user-e2e" // the example clients
)

// TestUserManager runs the per-user agent as systemd runs it: the user
// units installed where the packages put them, one systemctl --user
// command, a user manager started with systemctl start user@UID.service.
func TestUserManager(t *testing.T) {
	if !nspawn.Inside() {
		nspawn.Require(t)
		share := t.TempDir()
		if err := buildInto(share, false); err != nil {
			t.Fatal(err)
		}
		for _, unit := range []string{"orphand.socket", "orphand.service"} {
			if err := harness.CopyFile(filepath.Join("..", "..", "contrib", "systemd", "user", unit), filepath.Join(share, unit), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		nspawn.RunSelf(t, nspawn.Options{Share: share, Timeout: 8 * time.Minute})
		return
	}
	b := installGuest(t)
	u := startUserManager(t, "alice", guestAlice)
	bobby := startUserManager(t, "bob", guestBob)

	st := enableAgent(t, u, b)
	t.Run("SpawnerInUserService", func(t *testing.T) { testSpawnerInUserService(t, u, b) })
	t.Run("SpawnerOutsideManager", func(t *testing.T) { testSpawnerOutsideManager(t, u, b) })
	t.Run("PerlClient", func(t *testing.T) { runExample(t, u, b, -1, []string{"/usr/bin/perl", b.clientPL}) })
	t.Run("PythonClient", func(t *testing.T) { runExample(t, u, b, -1, []string{"/usr/bin/python3", b.clientPY}) })
	t.Run("OtherUser", func(t *testing.T) { testOtherUserInSystemd(t, u, bobby, b) })
	t.Run("AgentKilled", func(t *testing.T) { testUserAgentKilled(t, u, b, st.Pid) })
	if t.Failed() {
		out, _ := exec.Command("journalctl", "_UID="+uidString(guestAlice), "--no-pager", "-n", "150").CombinedOutput()
		t.Logf("the user's journal (last 150 lines):\n%s", out)
	}
}

// installGuest installs the share's programs where the packages put them,
// and the user units where the packages put theirs.
func installGuest(t *testing.T) bins {
	t.Helper()
	for from, to := range map[string]string{
		"orphand": "/usr/sbin/orphand", "orphanctl": "/usr/bin/orphanctl",
		"client.pl": guestLibDir + "/client.pl", "client.py": guestLibDir + "/client.py", "goclient": guestLibDir + "/goclient",
		"orphand.socket": "/usr/lib/systemd/user/orphand.socket", "orphand.service": "/usr/lib/systemd/user/orphand.service",
	} {
		mode := os.FileMode(0o755)
		if strings.HasPrefix(to, "/usr/lib/systemd") {
			mode = 0o644
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := harness.CopyFile(filepath.Join(nspawn.GuestShare, from), to, mode); err != nil {
			t.Fatal(err)
		}
	}
	b := binsIn(guestLibDir)
	b.orphand, b.orphanctl = "/usr/sbin/orphand", "/usr/bin/orphanctl"
	return b
}

// startUserManager adds a user and starts its manager, as a login (or
// lingering) would; the cleanup stops it.
func startUserManager(t *testing.T, name string, uid int) *account {
	t.Helper()
	guestRun(t, "useradd", "--create-home", "--uid", uidString(uid), name)
	unit := "user@" + uidString(uid) + ".service"
	guestRun(t, "systemctl", "start", unit)
	t.Cleanup(func() { _ = exec.Command("systemctl", "stop", unit).Run() })
	return &account{uid: uid, home: "/home/" + name, runtime: "/run/user/" + uidString(uid)}
}

// enableAgent: one systemctl --user command; the socket listens, the
// first connection starts the agent under the user's manager, with the
// systemd backend of that manager and its fd store.
func enableAgent(t *testing.T, u *account, b bins) *ipc.Status {
	t.Helper()
	u.run(t, "systemctl", "--user", "enable", "--now", "orphand.socket")
	if got := u.systemctl("is-active", "orphand.service"); got != "inactive" {
		t.Fatalf("orphand.service is %s before any connection: socket activation untested", got)
	}
	checkPrivateSocket(t, u)
	st := u.mustCtl(t, b, "status").Status
	if st.Mode != ipc.ModeUser || st.UID == nil || *st.UID != uint32(u.uid) || st.Backend != "systemd" {
		t.Fatalf("status: mode %q uid %v backend %q; want uid %d's per-user agent with the systemd backend", st.Mode, st.UID, st.Backend, u.uid)
	}
	if main := u.systemctl("show", "-p", "MainPID", "--value", "orphand.service"); main != strconv.Itoa(st.Pid) {
		t.Errorf("the user's orphand.service has main pid %s, the agent answering is %d", main, st.Pid)
	}
	if !slices.Contains(st.Features, "fdstore") {
		t.Errorf("features %v: the fd store is not in use under the user's manager", st.Features)
	}
	return st
}

// testSpawnerInUserService: `orphanctl run` in a service of the user's
// manager (as a CI runner's job runs); SIGKILL of the spawner takes the
// child, the grandchild and the setsid daemon; the group was a scope of
// the user's manager in the service's slice, bound to the service, and
// the service's own shell (outside the group) lives on.
func testSpawnerInUserService(t *testing.T, u *account, b bins) {
	tag := testutil.RandHex(8)
	unit := "e2e-spawner-" + tag + ".service"
	shell := b.orphanctl + ` run --name svc -- sh -c "$SCRIPT"; exec sleep 1000`
	u.run(t, "systemd-run", "--user", "--unit="+unit, "--setenv=SCRIPT="+spawnScript,
		"--setenv="+tagEnv+"="+tag, "--setenv="+markEnv+"="+os.Getenv(markEnv), "sh", "-c", shell)
	t.Cleanup(func() { _ = u.command(-1, "systemctl", "--user", "stop", unit).Run() })

	g, _ := u.waitGroup(t, b, "svc", spawnMembers)
	shellPid := u.systemctl("show", "-p", "MainPID", "--value", unit)
	var held []*proctree.Process // the group's processes: all the tagged ones but the service's shell
	for _, p := range tagged(tag) {
		if strconv.Itoa(p.Pid()) == shellPid {
			p.Close()
			continue
		}
		held = append(held, p)
	}
	manager := "/user.slice/user-" + uidString(u.uid) + ".slice/user@" + uidString(u.uid) + ".service"
	if want := manager + "/app.slice/" + g.Unit; g.Cgroup != want || g.Unit != "orphand-"+g.ID+".scope" {
		t.Errorf("group in %s (unit %s), want a scope of the user's manager in the caller's slice: %s", g.Cgroup, g.Unit, want)
	}
	if got := u.systemctl("show", "-p", "BindsTo", "--value", g.Unit); !strings.Contains(got, unit) {
		t.Errorf("%s is bound to %q, want the caller's %s", g.Unit, got, unit)
	}
	killPid(t, g.Spawner.Pid)
	waitGone(t, "a process of the spawner", held)
	u.waitState(t, b, g.ID, ipc.StateDead)
	if got := u.systemctl("is-active", unit); got != "active" {
		t.Errorf("the caller's service is %s after its group died, want active (its shell is not in the group)", got)
	}
	if got := u.systemctl("is-active", g.Unit); got == "active" {
		t.Errorf("%s is still active after its group died", g.Unit)
	}
}

// testSpawnerOutsideManager: a spawner the user's manager does not run (a
// system service running as the user; an ssh session is the same case):
// the manager moves it with the system manager's help, into its default
// slice, bound to nothing.
func testSpawnerOutsideManager(t *testing.T, u *account, b bins) {
	s := u.spawn(t, b, "outside", -1)
	g, _ := u.waitGroup(t, b, "outside", spawnMembers)
	held := tagged(s.tag)
	if !strings.HasPrefix(g.Cgroup, "/user.slice/user-"+uidString(u.uid)+".slice/user@"+uidString(u.uid)+".service/app.slice/orphand-") {
		t.Errorf("group in %s, want a scope in the user's manager's app.slice", g.Cgroup)
	}
	s.kill()
	waitGone(t, "a process of the spawner", held)
	u.waitState(t, b, g.ID, ipc.StateDead)
}

// testOtherUserInSystemd: bob cannot use alice's agent: the directory's
// mode stops him, and with CAP_DAC_OVERRIDE the agent does; his own
// orphanctl never picks alice's socket.
func testOtherUserInSystemd(t *testing.T, alice, bob *account, b bins) {
	withCap := bob.command(-1, b.orphanctl, "--json", "--socket", alice.socket(), "ls")
	withCap.SysProcAttr.AmbientCaps = []uintptr{unix.CAP_DAC_OVERRIDE}
	refusedAs(t, withCap, ipc.CodePermissionDenied, "per-user")
	refusedAs(t, bob.command(-1, b.orphanctl, "--json", "--socket", alice.socket(), "ls"), "unreachable", "permission denied")
	out, _ := bob.command(-1, b.orphanctl, "-v", "status").CombinedOutput()
	if !strings.Contains(string(out), "using "+ipc.DefaultSocket) {
		t.Errorf("bob's orphanctl -v status, without an agent of his own:\n%s\nwant the system agent's socket", out)
	}
}

// testUserAgentKilled: the agent SIGKILLed; systemd starts it again
// (Restart=always), it takes its groups back with the pidfds its fd store
// kept, and the spawner's death then kills the group.
func testUserAgentKilled(t *testing.T, u *account, b bins, pid int) {
	s := u.spawn(t, b, "restart", -1)
	g, _ := u.waitGroup(t, b, "restart", spawnMembers)
	held := tagged(s.tag)
	u.run(t, "systemctl", "--user", "kill", "--signal=SIGKILL", "orphand.service")
	deadline := time.Now().Add(waitLong)
	for {
		if st, err := u.ctl(t, b, "status"); err == nil && st.Status.Pid != pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new agent within %v of the old one's SIGKILL", waitLong)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := u.mustCtl(t, b, "show", g.ID).Group; got.State != ipc.StateActive || got.Cgroup != g.Cgroup {
		t.Fatalf("after the restart the group is %+v, want it active in %s", got, g.Cgroup)
	}
	out, _ := exec.Command("journalctl", "_UID="+uidString(u.uid), "--no-pager", "-o", "cat", "-g", "fd store in use").CombinedOutput()
	if !strings.Contains(string(out), "handed_back=1") {
		t.Errorf("the restarted agent did not get its spawner's pidfd back from the fd store:\n%s", out)
	}
	s.kill()
	waitGone(t, "a process of the spawner", held)
	u.waitState(t, b, g.ID, ipc.StateDead)
}

// run runs argv as the user; failing, it ends the test.
func (u *account) run(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := u.command(-1, argv...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s as uid %d: %v\n%s", strings.Join(argv, " "), u.uid, err, out)
	}
	return string(out)
}

// systemctl runs systemctl --user as the user and returns its trimmed
// output, whatever its exit status (is-active answers through it).
func (u *account) systemctl(args ...string) string {
	out, _ := u.command(-1, append([]string{"systemctl", "--user"}, args...)...).Output()
	return strings.TrimSpace(string(out))
}

// guestRun runs a command as root in the container; failing, it ends the
// test.
func guestRun(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// killPid SIGKILLs a process the test did not start, by pidfd.
func killPid(t *testing.T, pid int) {
	t.Helper()
	held := hold(t, pid)
	if len(held) != 1 {
		t.Fatalf("pid %d is gone before its SIGKILL", pid)
	}
	if err := held[0].Signal(unix.SIGKILL); err != nil {
		t.Fatal(fmt.Errorf("kill pid %d: %w", pid, err))
	}
}

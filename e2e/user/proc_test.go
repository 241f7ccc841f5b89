package user

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// TestProcBackendWithoutRoot: a user with nothing delegated to it runs the
// agent. It picks the proc backend and says what that costs without root
// (no proc connector: a setsid daemon can escape), in its log and in its
// status; it listens where its clients look, privately, and keeps its
// state in the user's home. A spawner SIGKILLed takes its children and
// grandchildren with it; the setsid daemon is either caught or reported
// escaped, as stated.
func TestProcBackendWithoutRoot(t *testing.T) {
	u := newAccount(t, alice)
	b := binaries(t)
	d := u.startAgent(t, b, -1)

	checkPrivateSocket(t, u)
	st := u.mustCtl(t, b, "status").Status
	if st.Backend != "proc" || st.Mode != ipc.ModeUser || st.UID == nil || *st.UID != alice {
		t.Fatalf("status: backend %q, mode %q, uid %v; want a per-user agent of uid %d on the proc backend", st.Backend, st.Mode, st.UID, alice)
	}
	limits := fmt.Sprint(st.Cgroup["limitations"])
	for _, want := range []string{"setsid", "CAP_NET_ADMIN"} {
		if !strings.Contains(limits, want) {
			t.Errorf("status limitations do not mention %q:\n%s", want, limits)
		}
	}
	if st.Cgroup["tracking"] != "proc-rescan" {
		t.Errorf("tracking %v, want proc-rescan: an unprivileged agent has no proc connector", st.Cgroup["tracking"])
	}
	if !strings.Contains(d.Log.String(), "per-user agent on the proc backend: it can miss a process that double-forks") {
		t.Errorf("the start-up log does not warn about the setsid escape:\n%s", d.Log)
	}
	state := filepath.Join(u.home, ".local", "state", "orphand")
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o700 || fi.Sys().(*syscall.Stat_t).Uid != alice {
		t.Errorf("state directory %s: %v, %v; want the user's, mode 0700", state, fi, err)
	}

	s := u.spawn(t, b, "proc", -1)
	// The spawner, its sleep, the inner shell and its sleep: found by the
	// agent's walks while the spawner lives. The daemon may be among them.
	g, members := u.waitGroup(t, b, "proc", spawnMembers-1)
	held := hold(t, members...)
	s.kill()
	u.waitState(t, b, g.ID, ipc.StateDead)
	waitGone(t, "a member", held)

	for _, p := range tagged(s.tag) {
		st, _ := proctree.ReadStat(p.Pid())
		if slices.Contains(members, p.Pid()) || st.Comm != "sleep" {
			t.Errorf("pid %d (%s) outlived its spawner's group, and it is not the double-forked daemon", p.Pid(), st.Comm)
		} else {
			t.Logf("the setsid daemon %d escaped the proc backend, as its limitations say it can", p.Pid())
		}
		_ = p.Signal(syscall.SIGKILL)
		p.Close()
	}
}

// checkPrivateSocket: the agent listens at $XDG_RUNTIME_DIR/orphand/orphand.sock,
// in a directory of mode 0700, on a socket of mode 0600, both the user's.
func checkPrivateSocket(t *testing.T, u *account) {
	t.Helper()
	for path, mode := range map[string]os.FileMode{filepath.Dir(u.socket()): 0o700, u.socket(): 0o600} {
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if fi.Mode().Perm() != mode || fi.Sys().(*syscall.Stat_t).Uid != uint32(u.uid) {
			t.Errorf("%s is %v owned by uid %d, want mode %v owned by uid %d", path, fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid, mode, u.uid)
		}
	}
}

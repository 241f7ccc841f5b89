package user

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/e2e/internal/harness"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
)

// The uids the tests play: no /etc/passwd entry is needed.
const (
	alice = 65524 // the user whose agent it is
	bob   = 65525 // another user, who must be refused
)

// waitLong bounds every wait for something that happens on its own (an
// agent starting, processes dying): generous, so that only a broken
// system fails it.
const waitLong = 60 * time.Second

// account is an unprivileged user as a login would set it up: a home and
// a runtime directory of its own (mode 0700), and the environment that
// names them. No XDG_STATE_HOME or XDG_CONFIG_HOME: the defaults under
// HOME apply.
type account struct {
	uid     int
	home    string
	runtime string
}

// newAccount makes uid's directories under a temporary directory.
func newAccount(t *testing.T, uid int) *account {
	t.Helper()
	testutil.RequireRoot(t)
	base := testutil.ReachableTempDir(t)
	u := &account{uid: uid, home: filepath.Join(base, "home"), runtime: filepath.Join(base, "run")}
	for _, d := range []string{u.home, u.runtime} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

// env is the user's environment: no $ORPHAND_SOCKET, so every client finds
// the agent on its own.
func (u *account) env() []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + u.home, "XDG_RUNTIME_DIR=" + u.runtime,
		"LANG=C", markEnv + "=" + os.Getenv(markEnv),
	}
}

// socket is where the user's agent listens.
func (u *account) socket() string { return filepath.Join(u.runtime, ipc.UserSocketName) }

// attr runs a process as the user (uid and gid alike, no supplementary
// groups), in the cgroup cgroupFD when it is not -1.
func (u *account) attr(cgroupFD int) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.uid), Groups: []uint32{}}}
	if cgroupFD >= 0 {
		a.UseCgroupFD, a.CgroupFD = true, cgroupFD
	}
	return a
}

// command is argv run as the user, from /, in its environment.
func (u *account) command(cgroupFD int, argv ...string) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = u.env()
	cmd.SysProcAttr = u.attr(cgroupFD)
	return cmd
}

// startAgent starts `orphand serve` as the user with its own defaults (no
// --socket, --state-dir or --backend: a per-user agent finds them), in the
// cgroup cgroupFD when it is not -1, and waits until it serves. The
// cleanup stops it; stop it earlier with Stop or kill it.
func (u *account) startAgent(t *testing.T, b bins, cgroupFD int) *harness.Daemon {
	t.Helper()
	h := &harness.Host{Dir: testutil.ReachableTempDir(t)}
	d := h.Start(t, harness.Serve{Bin: b.orphand, Args: []string{"--log-level", "debug"}, Env: u.env(), SysProcAttr: u.attr(cgroupFD)})
	t.Cleanup(func() {
		if err := d.Stop(30 * time.Second); err != nil && !killedBy(d, syscall.SIGKILL) {
			t.Errorf("the per-user agent did not stop cleanly: %v\n%s", err, d.Log)
		}
	})
	if err := d.WaitReady(waitLong); err != nil {
		t.Fatalf("per-user agent as uid %d: %v\n%s", u.uid, err, d.Log)
	}
	return d
}

// killedBy reports whether the agent's process ended by sig (a test that
// SIGKILLs it on purpose).
func killedBy(d *harness.Daemon, sig syscall.Signal) bool {
	ps := d.Cmd.ProcessState
	if ps == nil {
		return false
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// ctl runs orphanctl --json as the user and decodes its answer; a refusal
// is returned as the response's error.
func (u *account) ctl(t *testing.T, b bins, args ...string) (*ipc.Response, error) {
	t.Helper()
	cmd := u.command(-1, append([]string{b.orphanctl, "--json"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var resp ipc.Response
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &resp); err != nil {
		return nil, fmt.Errorf("orphanctl %s as uid %d (exit: %s) printed no JSON answer: %w\n%s%s", strings.Join(args, " "), u.uid, exitText(runErr), err, stdout.String(), stderr.String())
	}
	if !resp.OK {
		return &resp, resp.Error
	}
	return &resp, nil
}

// exitText says how a command ended, for messages.
func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (u *account) mustCtl(t *testing.T, b bins, args ...string) *ipc.Response {
	t.Helper()
	resp, err := u.ctl(t, b, args...)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// waitGroup waits until the user's agent lists an active group named name
// with at least members members, and returns it with its member pids.
func (u *account) waitGroup(t *testing.T, b bins, name string, members int) (*ipc.Group, []int) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		for _, g := range u.mustCtl(t, b, "ls").Groups {
			if g.Name != name || g.State != ipc.StateActive {
				continue
			}
			if r := u.mustCtl(t, b, "show", g.ID); len(r.Members) >= members {
				return r.Group, r.Members
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no active group %q with %d members after %v", name, members, waitLong)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitState waits until the group is in state.
func (u *account) waitState(t *testing.T, b bins, id, state string) *ipc.Group {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		g := u.mustCtl(t, b, "show", id).Group
		if g.State == state {
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s is %s after %v, want %s", id, g.State, waitLong, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// uidString is uid as a decimal string.
func uidString(uid int) string { return strconv.Itoa(uid) }

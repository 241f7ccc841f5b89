package restart

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/internal/nspawn"
	"github.com/orphand/orphand/ipc"
)

// systemdCycles is the container run's default: as many as on the host.
// A cycle costs about the same there (systemctl restart is quick with a
// notify service), so nothing is saved by doing fewer.
const systemdCycles = 100

// guestCrashFile is the crash-point file of the container's agent.
const guestCrashFile = "/run/orphand-crashpoint"

// The test's units: the agent behind a socket, the systemd backend, the
// fd store, and Restart=always with a holdoff long enough that the test,
// not the timer, decides when a crashed agent comes back (with systemctl
// restart, which keeps the fd store, as any restart does).
var testUnits = map[string]string{
	"orphand.socket": `[Unit]
Description=orphand agent socket (restart test)

[Socket]
ListenStream=/run/orphand/orphand.sock
SocketMode=0666
DirectoryMode=0755

[Install]
WantedBy=sockets.target
`,
	"orphand.service": `[Unit]
Description=orphand agent (restart test)
Requires=orphand.socket
After=orphand.socket
StartLimitIntervalSec=0

[Service]
Type=notify
ExecStart=` + guestBin + ` serve --backend systemd --log-level debug
Environment=` + crashFileEnv + `=` + guestCrashFile + `
Restart=always
RestartSec=1h
FileDescriptorStoreMax=16384
`,
}

// TestChaosSystemd runs the cycles under a real systemd, in a container:
// systemd starts, kills and restarts the agent, which uses the systemd
// backend and keeps spawners' pidfds in the fd store.
func TestChaosSystemd(t *testing.T) {
	if !nspawn.Inside() {
		nspawn.Require(t)
		share := t.TempDir()
		if err := goBuild(filepath.Join(share, "orphand"), false); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{binEnv: nspawn.GuestShare}
		if v := os.Getenv(cyclesEnv); v != "" {
			env[cyclesEnv] = v
		}
		nspawn.RunSelf(t, nspawn.Options{Share: share, Units: testUnits, Env: env, Timeout: 10 * time.Minute})
		return
	}
	a := newSystemdAgent(t)
	newChaos(t, a, true).run(cycles(systemdCycles))
	if out := systemctl(t, "list-units", "--no-legend", "--plain", "orphand-*.scope"); strings.TrimSpace(out) != "" {
		t.Errorf("scopes left after every group ended:\n%s", out)
	}
}

// systemdAgent is orphand.service in the container.
type systemdAgent struct {
	mount  string
	cursor string // the journal's position when the current agent was started
}

func newSystemdAgent(t *testing.T) *systemdAgent {
	t.Helper()
	orphandBin(t) // installs the binary the unit starts
	m, err := cgroup.Discover()
	if err != nil {
		t.Fatal(err)
	}
	a := &systemdAgent{mount: m.Path}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("journalctl", "-u", "orphand.service", "--no-pager", "-n", "300").CombinedOutput()
			t.Logf("orphand's journal (last 300 lines):\n%s", out)
		}
	})
	return a
}

func (a *systemdAgent) Socket() string              { return ipc.DefaultSocket }
func (a *systemdAgent) Backend() string             { return "systemd" }
func (a *systemdAgent) GroupDir(path string) string { return filepath.Join(a.mount, path) }

func (a *systemdAgent) Arm(t *testing.T, name string) {
	t.Helper()
	if err := os.WriteFile(guestCrashFile, []byte(name), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (a *systemdAgent) prop(t *testing.T, name string) string {
	t.Helper()
	return strings.TrimSpace(systemctl(t, "show", "-p", name, "--value", "orphand.service"))
}

// Start starts the agent: at first through its socket's service, after a
// crash with systemctl restart (a plain start waits out the holdoff).
func (a *systemdAgent) Start(t *testing.T) {
	t.Helper()
	verb := "start"
	if a.prop(t, "SubState") == "auto-restart" {
		verb = "restart"
	}
	a.cursor = journalCursor(t)
	if out, err := exec.Command("systemctl", verb, "orphand.service").CombinedOutput(); err != nil {
		t.Fatalf("systemctl %s orphand.service: %v\n%s", verb, err, out)
	}
	a.checkFDStore(t)
}

// checkFDStore checks, once serving, that the agent uses the fd store.
func (a *systemdAgent) checkFDStore(t *testing.T) {
	t.Helper()
	cl := client(t, a)
	defer cl.Close()
	ctx, cancel := ctxTimeout()
	defer cancel()
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if !slices.Contains(st.Features, "fdstore") || st.Backend != "systemd" {
		t.Fatalf("the agent under systemd has backend %s and features %v; want systemd and fdstore", st.Backend, st.Features)
	}
}

func (a *systemdAgent) Crash(t *testing.T) {
	t.Helper()
	systemctl(t, "kill", "-s", "KILL", "orphand.service")
	a.WaitDown(t)
}

// WaitDown waits until systemd has seen the agent die and holds it for
// its (long) restart holdoff.
func (a *systemdAgent) WaitDown(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for a.prop(t, "SubState") != "auto-restart" {
		if time.Now().After(deadline) {
			t.Fatalf("orphand.service is %s/%s, not waiting to restart", a.prop(t, "ActiveState"), a.prop(t, "SubState"))
		}
		sleepBriefly()
	}
}

func (a *systemdAgent) Restart(t *testing.T) {
	t.Helper()
	a.cursor = journalCursor(t)
	if out, err := exec.Command("systemctl", "restart", "orphand.service").CombinedOutput(); err != nil {
		t.Fatalf("systemctl restart orphand.service: %v\n%s", err, out)
	}
	a.checkFDStore(t)
}

func (a *systemdAgent) Stop(t *testing.T) {
	t.Helper()
	systemctl(t, "stop", "orphand.service")
}

// Log is the service's journal since the current agent was started (not
// its invocation's: journald caches a client's metadata by pid, and the
// test's pid steering can give a new agent its predecessor's pid). journald
// takes the agent's stderr asynchronously: it waits, briefly, for the
// restore line.
func (a *systemdAgent) Log(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command("journalctl", "--no-pager", "-o", "cat", "-u", "orphand.service", "--after-cursor="+a.cursor).Output()
		if err != nil {
			t.Fatalf("journalctl: %v", err)
		}
		if strings.Contains(string(out), "took over the groups") || time.Now().After(deadline) {
			return string(out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// journalCursor is the journal's current position.
func journalCursor(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("journalctl", "-n", "0", "--show-cursor", "-q").Output()
	if err != nil {
		t.Fatalf("journalctl --show-cursor: %v", err)
	}
	_, cur, ok := strings.Cut(string(out), "-- cursor: ")
	if !ok {
		t.Fatalf("journalctl --show-cursor said %q", out)
	}
	return strings.TrimSpace(cur)
}

func systemctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("systemctl", args...).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("systemctl %v: %v", args, err)
	}
	return string(out)
}

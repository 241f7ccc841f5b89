package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/e2e/internal/harness"
	"github.com/orphand/orphand/internal/nspawn"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
)

// guestBinDir is where the container run installs the binaries it gets in
// the share (which may be mounted noexec): the units below start the agent
// from there.
const guestBinDir = "/usr/local/lib/orphand-e2e"

// keepEnv names a host directory to use as the container's share instead of
// a temporary one, so that journal.txt (the container's whole journal,
// written when TestSystemd fails) survives the run.
const keepEnv = "ORPHAND_E2E_KEEP"

// Units the container boots with: the agent behind a socket unit, with the
// systemd backend. (The packaging ships the real units; these are the
// test's own.)
var testUnits = map[string]string{
	"orphand.socket": `[Unit]
Description=orphand agent socket (e2e)

[Socket]
ListenStream=/run/orphand/orphand.sock
SocketMode=0666
DirectoryMode=0755

[Install]
WantedBy=sockets.target
`,
	"orphand.service": `[Unit]
Description=orphand agent (e2e)
Requires=orphand.socket
After=orphand.socket

[Service]
Type=notify
ExecStart=` + guestBinDir + `/orphand serve --backend systemd --log-level debug --metrics-address ` + metricsSocket + `
`,
}

// TestSystemd plays every scenario in a systemd-nspawn container, against
// the agent systemd starts on the first connection to orphand.socket, with
// the systemd backend; then the systemd-only ones: a group's scope in its
// caller's slice, and orphanctl run from a shell in a service.
func TestSystemd(t *testing.T) {
	if !nspawn.Inside() {
		nspawn.Require(t)
		share := os.Getenv(keepEnv) // to read the journal after a failure
		if share == "" {
			share = t.TempDir()
		}
		if err := containerBins(share); err != nil {
			t.Fatal(err)
		}
		nspawn.RunSelf(t, nspawn.Options{
			Share:   share,
			Units:   testUnits,
			Env:     map[string]string{binEnv: nspawn.GuestShare},
			Timeout: 10 * time.Minute,
		})
		return
	}
	a := systemdAgent(t)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sc.fn(t, a) })
	}
	t.Run("ScopeInCallersSlice", func(t *testing.T) { testScopeInSlice(t, a) })
	t.Run("StopCallerUnit", func(t *testing.T) { testStopCallerUnit(t, a) })
	t.Run("Metrics", func(t *testing.T) { testMetrics(t, a, metricsSocket) })
	t.Run("JournalFields", func(t *testing.T) { testJournalFields(t, a) })
	if out := systemctl(t, "list-units", "--no-legend", "--plain", "orphand-*.scope"); strings.TrimSpace(out) != "" {
		t.Errorf("scopes left after every group ended:\n%s", out)
	}
	if t.Failed() {
		out, _ := exec.Command("journalctl", "-u", "orphand.service", "--no-pager", "-n", "100").CombinedOutput()
		t.Logf("orphand's journal (the last 100 lines; all of it in $%s/journal.txt when set):\n%s", keepEnv, out)
		out, _ = exec.Command("journalctl", "-o", "short-precise", "--no-pager").CombinedOutput()
		_ = os.WriteFile(filepath.Join(nspawn.GuestShare, "journal.txt"), out, 0o644)
	}
}

// containerBins puts static binaries and the examples in dir: a static
// build (the host's may have -race, hence cgo), or copies of those in
// $ORPHAND_E2E_BIN, which must then be static.
func containerBins(dir string) error {
	if from := os.Getenv(binEnv); from != "" {
		return copyBins(from, dir)
	}
	return buildInto(dir, false)
}

// installGuestBins copies the binaries from the share to guestBinDir, where
// they may be executed whatever the share's mount options.
func installGuestBins(from string) (binaries, error) {
	if err := os.MkdirAll(guestBinDir, 0o755); err != nil {
		return binaries{}, err
	}
	if err := copyBins(from, guestBinDir); err != nil {
		return binaries{}, err
	}
	return binariesIn(guestBinDir), nil
}

// copyBins copies the binaries and examples from one directory to another.
func copyBins(from, to string) error {
	for _, f := range append([]string{"orphand", "orphanctl", "goclient"}, examples...) {
		if err := harness.CopyFile(filepath.Join(from, f), filepath.Join(to, f), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// systemdAgent is the container's socket-activated agent. It checks that
// systemd, not the test, started it, with the systemd backend.
func systemdAgent(t testing.TB) *agent {
	t.Helper()
	m, err := cgroup.Discover()
	if err != nil {
		t.Fatal(err)
	}
	a := &agent{bins: bins(t), socket: ipc.DefaultSocket, backend: "systemd", mount: m.Path}
	if active := strings.TrimSpace(systemctl(t, "is-active", "orphand.service")); active == "active" {
		t.Fatalf("orphand.service is already %s before any connection: socket activation untested", active)
	}
	st, err := a.client(t).Status(context.Background())
	if err != nil {
		t.Fatalf("first connection to the socket unit: %v", err)
	}
	if st.Backend != "systemd" {
		t.Errorf("the agent uses the %s backend, want systemd", st.Backend)
	}
	mainPid := strings.TrimSpace(systemctl(t, "show", "-p", "MainPID", "--value", "orphand.service"))
	if mainPid != strconv.Itoa(st.Pid) {
		t.Errorf("orphand.service's main pid is %s, the agent's is %d", mainPid, st.Pid)
	}
	a.pid = st.Pid
	return a
}

func systemctl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("systemctl", args...).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("systemctl %v: %v", args, err)
	}
	return string(out)
}

// callerUnit starts a shell in a service of its own (in slice) that runs
// script under `orphanctl run`, then sleeps: the shell itself is not in the
// group. It returns the unit's name; the cleanup stops it.
func callerUnit(t *testing.T, a *agent, slice, script string) string {
	t.Helper()
	unit := "e2e-caller-" + testutil.RandHex(4) + ".service"
	shell := fmt.Sprintf("%s run --name svc -- sh -c '%s'; exec sleep 1000", a.bins.orphanctl, script)
	out, err := exec.Command("systemd-run", "--unit="+unit, "--slice="+slice, "--no-block",
		"--setenv="+markEnv+"="+os.Getenv(markEnv), "sh", "-c", shell).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-run: %v\n%s", err, out)
	}
	t.Cleanup(func() { systemctl(t, "stop", unit) })
	return unit
}

// findGroup waits for the active group named name and returns it.
func findGroup(t *testing.T, a *agent, name string) (*ipc.Group, []int) {
	t.Helper()
	deadline := time.Now().Add(goneTimeout)
	for time.Now().Before(deadline) {
		groups, err := a.client(t).List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups {
			if g.Name == name && g.State == ipc.StateActive {
				// The script's processes run: the spawner, two sleeps, a
				// shell and the daemon.
				if _, members := a.show(t, g.ID); len(members) >= 5 {
					return a.show(t, g.ID)
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no active group %q with its processes within %v", name, goneTimeout)
	return nil, nil
}

const serviceScript = `sleep 1000 & sh -c "sleep 1000 & wait" & ( setsid sleep 1000 & ) ; wait`

// testScopeInSlice: orphanctl run from a shell in a service in e2e.slice —
// the group's scope lives in that slice, and a kill -9 of the spawner kills
// the group but not the shell that started it.
func testScopeInSlice(t *testing.T, a *agent) {
	unit := callerUnit(t, a, "e2e.slice", serviceScript)
	g, members := findGroup(t, a, "svc")
	if !strings.HasPrefix(g.Cgroup, "/e2e.slice/") || g.Unit == "" || !strings.HasSuffix(g.Cgroup, "/"+g.Unit) {
		t.Errorf("group %s: unit %q at %q, want a scope in /e2e.slice/", g.ID, g.Unit, g.Cgroup)
	}
	if slice := strings.TrimSpace(systemctl(t, "show", "-p", "Slice", "--value", g.Unit)); slice != "e2e.slice" {
		t.Errorf("scope %s is in slice %q, want e2e.slice", g.Unit, slice)
	}
	held := hold(t, members...)
	signalPid(t, g.Spawner.Pid, 9)
	waitGone(t, "member", held)
	waitNoDir(t, a.cgroupDir(g))
	if state := strings.TrimSpace(systemctl(t, "is-active", unit)); state != "active" {
		t.Errorf("the caller's service is %s after its group died, want active (its shell is not in the group)", state)
	}
}

// testStopCallerUnit: stopping the unit the spawner came from stops the
// group's scope too (it is bound to that unit).
func testStopCallerUnit(t *testing.T, a *agent) {
	unit := callerUnit(t, a, "e2e.slice", serviceScript)
	g, members := findGroup(t, a, "svc")
	held := hold(t, members...)
	systemctl(t, "stop", unit)
	waitGone(t, "member", held)
	waitNoDir(t, a.cgroupDir(g))
}

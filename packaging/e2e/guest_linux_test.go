package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/nspawn"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// What the host passes to the container run (in the share and in the
// environment).
const (
	envVersion = "ORPHAND_PKG_VERSION" // the checkout's package version
	envUpgrade = "ORPHAND_PKG_UPGRADE" // the upgrade's package version

	guestPkg     = nspawn.GuestShare + "/orphand"         // + .deb or .rpm
	guestUpgrade = nspawn.GuestShare + "/orphand-upgrade" // + .deb or .rpm
)

const (
	// waitLimit bounds every wait for something the system does on its own
	// (a unit starting, processes dying). It is generous: a slow machine
	// must not fail a test; a broken one fails it after this long.
	waitLimit = 60 * time.Second
	// callerSlice is where the test's spawners run: a group's scope must
	// land in it.
	callerSlice = "pkgtest.slice"
	// spawnScript starts children and grandchildren, and a double-forked
	// setsid daemon that reparents away from the spawner; the spawner
	// itself waits. Five processes in all: the spawner, a sleep, a shell
	// and its sleep, and the daemon.
	spawnScript  = `sleep 1000 & sh -c "sleep 1000 & wait" & ( setsid sleep 1000 & ) ; wait`
	spawnMembers = 5
)

// host starts a container run of the calling test with both packages of
// this checkout and of its upgrade in the share, and returns false: on the
// host the test has nothing more to do. Inside it returns true.
func host(t *testing.T) (inside bool) {
	t.Helper()
	if nspawn.Inside() {
		return true
	}
	nspawn.Require(t)
	b := packages(t)
	share := t.TempDir()
	for from, to := range map[string]string{
		b.deb: "orphand.deb", b.debUp: "orphand-upgrade.deb",
		b.rpm: "orphand.rpm", b.rpmUp: "orphand-upgrade.rpm",
		filepath.Join(repoRoot, compatClientSrc): "client.pl",
	} {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(share, to), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nspawn.RunSelf(t, nspawn.Options{
		Share:   share,
		Env:     map[string]string{envVersion: b.version, envUpgrade: b.upgrade},
		Timeout: 8 * time.Minute,
	})
	return false
}

// run runs a command inside and returns its combined output; failing, it
// ends the test.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := try(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// try runs a command and returns its combined output; the error carries it.
func try(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// systemctl returns systemctl's trimmed output whatever its exit status
// (is-active and is-enabled answer through it).
func systemctl(args ...string) string {
	out, _ := exec.Command("systemctl", args...).Output()
	return strings.TrimSpace(string(out))
}

// waitUntil polls cond until it holds, or fails the test after waitLimit.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after %v", what, waitLimit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ctl runs orphanctl --json with args and decodes its answer.
func ctl(args ...string) (*ipc.Response, error) {
	cmd := exec.Command("orphanctl", append([]string{"--json"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var resp ipc.Response
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &resp); err != nil {
		exit := "exit status 0"
		if runErr != nil {
			exit = runErr.Error()
		}
		return nil, fmt.Errorf("orphanctl %s (%s) printed no JSON answer: %w\n%s%s", strings.Join(args, " "), exit, err, stdout.String(), stderr.String())
	}
	if !resp.OK {
		return &resp, fmt.Errorf("orphanctl %s: %w", strings.Join(args, " "), resp.Error)
	}
	return &resp, runErr
}

func mustCtl(t testing.TB, args ...string) *ipc.Response {
	t.Helper()
	resp, err := ctl(args...)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// agentStatus asks the agent for its status (starting it, if only its
// socket listens).
func agentStatus(t testing.TB) *ipc.Status {
	t.Helper()
	resp := mustCtl(t, "status")
	if resp.Status == nil {
		t.Fatal("orphanctl status: no status in the answer")
	}
	return resp.Status
}

// mainPID is orphand.service's main process, 0 when it is not running.
func mainPID(t testing.TB) int {
	t.Helper()
	pid, err := strconv.Atoi(systemctl("show", "-p", "MainPID", "--value", "orphand.service"))
	if err != nil {
		t.Fatalf("MainPID of orphand.service: %v", err)
	}
	return pid
}

// group is a subtree group started by orphanctl run from a service.
type group struct {
	unit string // the caller's service
	ipc.Group
	members []*proctree.Process // held by pidfd from the start
}

// spawnScriptPath holds spawnScript inside the container, for every user.
const spawnScriptPath = "/usr/local/bin/pkgtest-spawn"

var spawnScriptOnce sync.Once

// spawnGroup starts a shell in a service of its own, in callerSlice and as
// user (root if ""), that runs spawnScript under `orphanctl run --name
// name [flags]` and then sleeps (the shell itself is not in the group). It
// waits for the group and its five processes, and holds them. The cleanup
// stops the service, which stops the scope too (it is bound to it):
// nothing outlives the test.
func spawnGroup(t *testing.T, name, user string, flags ...string) *group {
	t.Helper()
	spawnScriptOnce.Do(func() {
		if err := os.WriteFile(spawnScriptPath, []byte("#!/bin/sh\n"+spawnScript+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	})
	unit := "pkgtest-" + name + ".service"
	shell := "orphanctl run --name " + name + " " + strings.Join(flags, " ") + " -- " + spawnScriptPath + "; exec sleep 1000"
	args := []string{"--unit=" + unit, "--slice=" + callerSlice, "--no-block"}
	if user != "" {
		args = append(args, "--uid="+user)
	}
	run(t, "systemd-run", append(args, "sh", "-c", shell)...)
	t.Cleanup(func() { _, _ = try("systemctl", "stop", unit) })
	g := &group{unit: unit}
	var pids []int
	waitUntil(t, "registered with its "+strconv.Itoa(spawnMembers)+" processes: group "+name, func() bool {
		resp, err := ctl("ls")
		if err != nil {
			return false
		}
		for _, lg := range resp.Groups {
			if lg.Name != name || lg.State != ipc.StateActive {
				continue
			}
			show, err := ctl("show", lg.ID)
			if err == nil && show.Group != nil && len(show.Members) >= spawnMembers {
				g.Group, pids = *show.Group, show.Members
				return true
			}
		}
		return false
	})
	for _, pid := range pids {
		p, err := proctree.Open(pid)
		if errors.Is(err, os.ErrProcessDone) {
			t.Fatalf("member %d of group %s ended before the test killed anything", pid, name)
		}
		if err != nil {
			t.Fatalf("pidfd of member %d: %v", pid, err)
		}
		t.Cleanup(func() { p.Close() })
		g.members = append(g.members, p)
	}
	return g
}

// killSpawner SIGKILLs the group's spawner.
func (g *group) killSpawner(t *testing.T) {
	t.Helper()
	p, err := proctree.Open(g.Spawner.Pid)
	if err != nil {
		t.Fatalf("pidfd of spawner %d: %v", g.Spawner.Pid, err)
	}
	defer p.Close()
	if err := p.Signal(9); err != nil {
		t.Fatalf("kill -9 %d: %v", g.Spawner.Pid, err)
	}
}

// waitAllGone waits until every member held at the start has exited, and
// the group's scope and cgroup are gone.
func (g *group) waitAllGone(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for _, p := range g.members {
		if err := p.Wait(ctx); err != nil {
			st, _ := proctree.ReadStat(p.Pid())
			t.Fatalf("group %s: member %d (%s) still runs %v after its spawner died: %v", g.ID, p.Pid(), st.Comm, waitLimit, err)
		}
	}
	if g.Unit != "" { // a systemd scope (the cgroupfs backend has none)
		waitUntil(t, "gone: scope "+g.Unit, func() bool {
			state := systemctl("is-active", g.Unit)
			return state == "inactive" || state == "unknown" || state == "failed"
		})
	}
	waitUntil(t, "removed: cgroup "+g.Cgroup, func() bool {
		_, err := os.Stat(filepath.Join("/sys/fs/cgroup", g.Cgroup))
		return errors.Is(err, fs.ErrNotExist)
	})
}

// checkPlacement: the group is a scope in the caller's slice.
func (g *group) checkPlacement(t *testing.T) {
	t.Helper()
	if g.Backend != "systemd" || !strings.HasPrefix(g.Unit, "orphand-") || !strings.HasSuffix(g.Unit, ".scope") {
		t.Errorf("group %s: backend %q, unit %q; want a systemd scope orphand-*.scope", g.ID, g.Backend, g.Unit)
	}
	if !strings.HasPrefix(g.Cgroup, "/"+callerSlice+"/") || !strings.HasSuffix(g.Cgroup, "/"+g.Unit) {
		t.Errorf("group %s lives at %q, want /%s/%s", g.ID, g.Cgroup, callerSlice, g.Unit)
	}
	if slice := systemctl("show", "-p", "Slice", "--value", g.Unit); slice != callerSlice {
		t.Errorf("scope %s is in slice %q, want the caller's, %s", g.Unit, slice, callerSlice)
	}
}

// restartSurvival checks a group after the agent was replaced (restart or
// upgrade): the new agent knows it, and its spawner's death still kills
// everything it started.
func (g *group) checkSurvived(t *testing.T, how string) {
	t.Helper()
	resp, err := ctl("show", g.ID)
	switch {
	case err != nil:
		t.Errorf("after %s the agent does not know group %s any more: %v", how, g.ID, err)
	case resp.Group == nil || resp.Group.State != ipc.StateActive:
		t.Errorf("after %s group %s is %+v, want active", how, g.ID, resp.Group)
	}
	g.killSpawner(t)
	g.waitAllGone(t)
}

package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup/systemd"
	"github.com/orphand/orphand/internal/nspawn"
	"github.com/orphand/orphand/ipc"
)

// The agent under a real systemd (PID 1 in a container) with the systemd
// backend: a spawner started as a service in a slice of its own registers;
// its group is a scope in that slice; a process inside registers a nested
// group (a sibling scope: scopes do not nest, the agent kills it itself);
// the spawner is SIGKILLed and everything dies, scopes included.
func TestSystemdBackendAgent(t *testing.T) {
	if !nspawn.RunSelf(t, nspawn.Options{Timeout: 4 * time.Minute}) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := systemd.Open(ctx, systemd.Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("systemd backend: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	ta := startAgent(t, testConfig(), b)
	events := subscribe(t, ta, "")
	c := dial(t, ta.sock)

	var rb [4]byte
	_, _ = rand.Read(rb[:])
	unit := "orphandtest-spawner-" + hex.EncodeToString(rb[:]) + ".service"
	systemctl := func(args ...string) string { // is-active exits non-zero when inactive: only the output counts
		out, _ := exec.Command("systemctl", args...).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	out, err := exec.CommandContext(ctx, "systemd-run", "--unit="+unit, "--slice=orphandtest.slice", "--collect",
		"sh", "-c", "sleep 300 & sleep 300 & wait").CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-run: %v: %s", err, out)
	}
	t.Cleanup(func() { systemctl("stop", unit) })
	mainPid, err := strconv.Atoi(systemctl("show", "-P", "MainPID", unit))
	if err != nil || mainPid <= 0 {
		t.Fatalf("MainPID of %s: %v", unit, err)
	}
	kids := waitChildren(t, mainPid, 2)
	procs := openAll(t, append([]int{mainPid}, kids...))

	g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: mainPid, Name: "under systemd"}).Group
	if g.Backend != "systemd" || g.Unit != "orphand-"+g.ID+".scope" || !strings.HasPrefix(g.Cgroup, "/orphandtest.slice/") || g.Members != 3 {
		t.Fatalf("group %+v", g)
	}
	if state := systemctl("is-active", g.Unit); state != "active" {
		t.Fatalf("scope %s is %q", g.Unit, state)
	}
	inner := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: kids[0]}).Group
	if inner.Parent != g.ID || !strings.HasPrefix(inner.Cgroup, "/orphandtest.slice/") {
		t.Fatalf("nested group %+v (outer %s)", inner, g.ID)
	}

	if err := syscall.Kill(mainPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	events.waitEvent(ipc.EventKilled, inner.ID)
	events.waitEvent(ipc.EventKilled, g.ID)
	for _, p := range procs {
		waitExit(t, p)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, u := range []string{g.Unit, inner.Unit} {
		for systemctl("is-active", u) == "active" {
			if time.Now().After(deadline) {
				t.Fatalf("scope %s still active after the kill", u)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

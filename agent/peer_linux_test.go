package agent

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// registerSelf runs the test binary as a client that registers itself (no
// pid: the agent identifies the caller from the socket) and returns the
// helper's pid and the response line.
func registerSelf(t *testing.T, sock string) (int, ipc.Response) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), helperEnv+"="+sock, helperReqsEnv+"="+`{"op":"register","id":1}`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	var r ipc.Response
	if err := jsonUnmarshalLine(out, &r); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid, r
}

// The caller's identity comes from SO_PEERPIDFD, or with it forced off from
// SO_PEERCRED's pid checked against the start time: both name the helper.
func TestPeerIdentityBothWays(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) {
			forcePeerCredFallback = fallback
			t.Cleanup(func() { forcePeerCredFallback = false })
			ta := startAgent(t, testConfig(), newFakeBackend(t))
			events := subscribe(t, ta, "")
			pid, r := registerSelf(t, ta.sock)
			if !r.OK || r.Group.Spawner.Pid != pid {
				t.Fatalf("register self: %+v (helper pid %d)", r, pid)
			}
			events.waitEvent(ipc.EventKilled, r.Group.ID) // the helper exited: its group ends
		})
	}
}

// The fallback refuses a pid whose process started after the connection
// was accepted: a newcomer that reused the peer's pid.
func TestPeerFallbackRefusesNewcomer(t *testing.T) {
	forcePeerCredFallback = true
	t.Cleanup(func() { forcePeerCredFallback = false })
	h, err := probeHost(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := testutil.UnixConnPair(t)
	p, err := readPeer(srv, h, bootTicks())
	if err != nil || p.proc == nil || p.proc.Pid() != os.Getpid() || !p.sameNS || p.caller.UID != uint32(os.Getuid()) {
		t.Fatalf("peer: %+v %v", p, err)
	}
	p.proc.Close()
	// Pretend the connection was accepted before this process started.
	p, err = readPeer(srv, h, 0)
	if err != nil || p.proc != nil {
		t.Fatalf("a process younger than the connection was accepted: %+v %v", p, err)
	}
}

// TestSameNS tells a process in the agent's pid namespace from one in a
// nested namespace, by NSpid (the way the packaged agent, without
// CAP_SYS_PTRACE, must) and by the ns/pid link.
func TestSameNS(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "unshare")
	h, err := probeHost(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if h.nsLevels != 1 {
		t.Fatalf("the test's /proc is not its pid namespace's (NSpid levels %d)", h.nsLevels)
	}
	cmd := exec.Command("unshare", "--pid", "--fork", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var inner int
	for deadline := time.Now().Add(10 * time.Second); inner == 0 && time.Now().Before(deadline); {
		if kids, _ := proctree.Descendants(cmd.Process.Pid); len(kids) > 0 {
			inner = kids[0]
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if inner == 0 {
		t.Fatal("unshare's child never appeared")
	}
	t.Cleanup(func() { _ = syscall.Kill(inner, syscall.SIGKILL) })
	viaLink := h
	viaLink.nsLevels = 0 // forces the ns/pid comparison
	for name, host := range map[string]hostFacts{"NSpid": h, "ns/pid link": viaLink} {
		if !sameNS(os.Getpid(), host) || !sameNS(cmd.Process.Pid, host) {
			t.Errorf("%s: a process of the agent's namespace is not seen as such", name)
		}
		if sameNS(inner, host) {
			t.Errorf("%s: pid %d in a nested namespace is seen as the agent's", name, inner)
		}
	}
}

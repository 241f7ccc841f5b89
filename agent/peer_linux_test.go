package agent

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/orphand/orphand/ipc"
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

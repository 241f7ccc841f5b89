package agent

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
)

// A per-user agent serves the uid it runs as, only: here root (the test's
// uid) is its user, and uid 65534, which can reach the socket, is refused
// when it connects, before any request is served.
func TestUserAgentServesItsUserOnly(t *testing.T) {
	testutil.RequireRoot(t)
	setpriv := requireSetpriv(t)
	cfg := testConfig()
	cfg.User = true
	ta := startAgent(t, cfg, newFakeBackend(t))

	c := dial(t, ta.sock)
	hello := c.ok(ipc.Request{Op: ipc.OpHello, Version: ipc.Version})
	if hello.Mode != ipc.ModeUser {
		t.Errorf("hello mode %q, want %q", hello.Mode, ipc.ModeUser)
	}
	st := c.ok(ipc.Request{Op: ipc.OpStatus}).Status
	if st.Mode != ipc.ModeUser || st.UID == nil || *st.UID != uint32(os.Geteuid()) {
		t.Errorf("status mode %q uid %v, want %q and %d", st.Mode, st.UID, ipc.ModeUser, os.Geteuid())
	}

	self := reachableCopyOfTestBinary(t, filepath.Dir(ta.sock))
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", self)
	cmd.Env = append(os.Environ(), helperEnv+"="+ta.sock, helperReqsEnv+"="+`{"op":"list","id":1}`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client as uid 65534: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 {
		t.Fatalf("uid 65534 got %d answers, want the one refusal:\n%s", len(lines), out)
	}
	var r ipc.Response
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil {
		t.Fatal(err)
	}
	if r.OK || r.Error == nil || r.Error.Code != ipc.CodePermissionDenied || !strings.Contains(r.Error.Message, "per-user") {
		t.Fatalf("uid 65534 was answered %s, want permission_denied naming the per-user agent", lines[0])
	}
	if st := c.ok(ipc.Request{Op: ipc.OpStatus}).Status; st.Connections != 1 {
		t.Errorf("%d connections open after the refusal, want only the test's", st.Connections)
	}
}

func TestSystemAgentSaysSo(t *testing.T) {
	ta := startAgent(t, testConfig(), newFakeBackend(t))
	c := dial(t, ta.sock)
	if m := c.ok(ipc.Request{Op: ipc.OpHello, Version: ipc.Version}).Mode; m != ipc.ModeSystem {
		t.Errorf("hello mode %q, want %q", m, ipc.ModeSystem)
	}
	if st := c.ok(ipc.Request{Op: ipc.OpStatus}).Status; st.Mode != ipc.ModeSystem || st.UID != nil {
		t.Errorf("status mode %q uid %v, want %q and none", st.Mode, st.UID, ipc.ModeSystem)
	}
}

package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orphand/orphand/ipc"
)

// userRuntime points $XDG_RUNTIME_DIR at a new directory, with a listening
// per-user agent socket in it when listening, and returns that socket.
func userRuntime(t *testing.T, listening bool) string {
	t.Helper()
	t.Setenv(ipc.SocketEnv, "")
	dir := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", dir)
	p := filepath.Join(dir, ipc.UserSocketName)
	if !listening {
		return p
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { // hangs up on every client: enough to see where it went
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			nc.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return p
}

// -v says which socket and why; the flags pick as systemctl's do. No agent
// answers (the user socket hangs up, the others do not exist): what
// matters here is the line -v prints first.
func TestVerboseSaysWhichSocket(t *testing.T) {
	user := userRuntime(t, true)
	other := filepath.Join(t.TempDir(), "other.sock")
	tests := []struct {
		args       []string
		env        string
		path, why  string
		wantStatus int
	}{
		{[]string{"-v", "status"}, "", user, "your per-user agent's socket exists", exitUnreachable},
		{[]string{"-v", "--system", "status"}, "", ipc.DefaultSocket, "--system", -1}, // a system agent may run here
		{[]string{"status", "-v", "--user"}, other, user, "--user", exitUnreachable},
		{[]string{"-v", "status"}, other, other, "$" + ipc.SocketEnv, exitUnreachable},
		{[]string{"-v", "--socket", other, "status"}, "", other, "--socket", exitUnreachable},
	}
	for _, tt := range tests {
		t.Setenv(ipc.SocketEnv, tt.env)
		_, stderr, code := runCLI(t, tt.args...)
		first, _, _ := strings.Cut(stderr, "\n")
		if !strings.Contains(first, "orphanctl: using "+tt.path+" (") || !strings.Contains(first, tt.why) {
			t.Errorf("orphanctl %q with $%s=%q: first line %q, want %s and why (%s)", tt.args, ipc.SocketEnv, tt.env, first, tt.path, tt.why)
		}
		if tt.wantStatus >= 0 && code != tt.wantStatus {
			t.Errorf("orphanctl %q exited %d, want %d", tt.args, code, tt.wantStatus)
		}
	}
}

func TestScopeFlagsExcludeEachOther(t *testing.T) {
	userRuntime(t, false)
	for _, args := range [][]string{
		{"--user", "--system", "status"},
		{"--user", "--socket", "/tmp/x.sock", "ls"},
	} {
		_, stderr, code := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(stderr, "--user") {
			t.Errorf("orphanctl %q: exit %d, stderr %q; want a usage error", args, code, stderr)
		}
	}
}

// Asked for the per-user agent that does not run, orphanctl says how to
// start it.
func TestUserAgentNotRunning(t *testing.T) {
	user := userRuntime(t, false)
	_, stderr, code := runCLI(t, "--user", "status")
	if code != exitUnreachable || !strings.Contains(stderr, user) || !strings.Contains(stderr, "systemctl --user enable --now orphand.socket") {
		t.Errorf("--user status without a per-user agent: exit %d, stderr %s", code, stderr)
	}
}

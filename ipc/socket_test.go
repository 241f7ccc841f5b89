package ipc

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// userAgentSocket makes runtime/orphand/orphand.sock, listening, and
// points $XDG_RUNTIME_DIR at runtime.
func userAgentSocket(t *testing.T) string {
	t.Helper()
	runtime := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", runtime)
	p := filepath.Join(runtime, UserSocketName)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return p
}

func TestFindSocketOrder(t *testing.T) {
	t.Setenv(SocketEnv, "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	if s := FindSocket(ScopeAuto); s.Path != DefaultSocket || s.User || !strings.Contains(s.Why, "no per-user agent") {
		t.Errorf("no user socket: FindSocket = %+v, want the system agent's", s)
	}
	user := userAgentSocket(t)
	if s := FindSocket(ScopeAuto); s.Path != user || !s.User {
		t.Errorf("user socket exists: FindSocket = %+v, want %s", s, user)
	}
	if s := FindSocket(ScopeSystem); s.Path != DefaultSocket || s.User || !strings.Contains(s.Why, "--system") {
		t.Errorf("ScopeSystem: FindSocket = %+v", s)
	}
	t.Setenv(SocketEnv, "/tmp/x.sock")
	if s := FindSocket(ScopeAuto); s.Path != "/tmp/x.sock" || !strings.Contains(s.Why, SocketEnv) {
		t.Errorf("$%s set: FindSocket = %+v, want it", SocketEnv, s)
	}
	// An explicit scope beats the environment, as systemctl's flags do.
	if s := FindSocket(ScopeUser); s.Path != user || !s.User {
		t.Errorf("ScopeUser with $%s set: FindSocket = %+v, want %s", SocketEnv, s, user)
	}
	if s := FindSocket(ScopeSystem); s.Path != DefaultSocket {
		t.Errorf("ScopeSystem with $%s set: FindSocket = %+v", SocketEnv, s)
	}
}

func TestFindSocketSkipsAnotherUsersSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the socket to another uid")
	}
	t.Setenv(SocketEnv, "")
	user := userAgentSocket(t)
	if err := os.Lchown(user, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if s := FindSocket(ScopeAuto); s.Path != DefaultSocket {
		t.Errorf("a socket of uid 65534 under $XDG_RUNTIME_DIR: FindSocket = %+v, want the system agent's", s)
	}
}

func TestFindSocketNoRuntimeDir(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "")
	want := "/run/user/" + strconv.Itoa(os.Geteuid()) + "/" + UserSocketName
	if got := UserSocket(); got != want {
		t.Errorf("UserSocket() without $XDG_RUNTIME_DIR = %q, want %q", got, want)
	}
	t.Setenv("XDG_RUNTIME_DIR", "relative/dir")
	if got := UserSocket(); got != want {
		t.Errorf("UserSocket() with a relative $XDG_RUNTIME_DIR = %q, want %q", got, want)
	}
}

func TestDialUserSocketErrorsSayWhatToDo(t *testing.T) {
	t.Setenv(SocketEnv, "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	_, err := Dial(context.Background(), UserSocket())
	var de *DialError
	if !errors.As(err, &de) || !de.User || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Dial(the missing user socket) = %#v, want a *DialError for a user socket", err)
	}
	for _, want := range []string{"systemctl --user enable --now orphand.socket", "--system"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// A refusal sent at connect time reaches the caller even when the agent
// has closed the connection before the request is sent (EPIPE).
func TestRefusalBeforeTheRequestIsRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "refuse.sock")
	ln, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = nc.Write([]byte(`{"ok":false,"error":{"code":"permission_denied","message":"not yours"}}` + "\n"))
		nc.Close()
	}()
	c := dial(t, p)
	<-accepted // the agent has answered and closed before anything is sent
	_, err = c.Hello(context.Background())
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != CodePermissionDenied || ae.Message != "not yours" {
		t.Fatalf("Hello after a refusal = %v, want the agent's permission_denied", err)
	}
}

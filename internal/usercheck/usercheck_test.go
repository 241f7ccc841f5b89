package usercheck

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/nspawn"
	"github.com/orphand/orphand/ipc"
)

func item(t *testing.T, r *Report, name string) Item {
	t.Helper()
	for _, it := range r.Items {
		if it.Name == name {
			return it
		}
	}
	t.Fatalf("no %q in the report: %+v", name, r.Items)
	return Item{}
}

func TestPaths(t *testing.T) {
	rt := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", rt)
	t.Setenv("HOME", "/home/u")
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("XDG_CONFIG_HOME", "")
	r := Run(context.Background())
	if it := item(t, r, "runtime directory"); it.Status != StatusOK || it.Value != rt {
		t.Errorf("runtime directory: %+v", it)
	}
	if it := item(t, r, "socket"); it.Status != StatusInfo || !strings.Contains(it.Note, "systemctl --user enable --now orphand.socket") {
		t.Errorf("socket, before any agent: %+v", it)
	}
	if it := item(t, r, "state"); it.Value != "/home/u/.local/state/orphand" {
		t.Errorf("state: %+v", it)
	}
	if it := item(t, r, "configuration"); it.Value != "/home/u/.config/orphand/orphand.toml" || !strings.Contains(it.Note, "defaults") {
		t.Errorf("configuration: %+v", it)
	}
	if len(r.Problems) != 0 {
		t.Errorf("problems: %q", r.Problems)
	}

	p := filepath.Join(rt, ipc.UserSocketName)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if it := item(t, Run(context.Background()), "socket"); it.Status != StatusOK {
		t.Errorf("socket, with an agent's: %+v", it)
	}
}

func TestNoRuntimeDirectory(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(t.TempDir(), "gone"))
	r := Run(context.Background())
	if it := item(t, r, "runtime directory"); it.Status != StatusMissing {
		t.Errorf("runtime directory: %+v", it)
	}
	if len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "XDG_RUNTIME_DIR") {
		t.Errorf("problems %q, want one that says what to do", r.Problems)
	}
}

// In a real systemd, with root's own manager: it answers, and lingering
// is seen once enabled.
func TestUserManager(t *testing.T) {
	if !nspawn.RunSelf(t, nspawn.Options{Timeout: 3 * time.Minute}) {
		return
	}
	run := func(argv ...string) {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", argv, err, out)
		}
	}
	run("systemctl", "start", "user@0.service")
	t.Cleanup(func() { _ = exec.Command("systemctl", "stop", "user@0.service").Run() })
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/0")
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	r := Run(context.Background())
	if it := item(t, r, "user manager"); it.Status != StatusOK || !strings.Contains(it.Note, "/user.slice/user-0.slice/user@0.service") {
		t.Errorf("user manager: %+v", it)
	}
	if it := item(t, r, "lingering"); it.Value != "no" || !strings.Contains(it.Note, "loginctl enable-linger root") {
		t.Errorf("lingering, off: %+v", it)
	}
	run("loginctl", "enable-linger", "root")
	if it := item(t, Run(context.Background()), "lingering"); it.Value != "yes" {
		t.Errorf("lingering, on: %+v", it)
	}
}

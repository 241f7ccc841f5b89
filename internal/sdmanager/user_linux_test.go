package sdmanager

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/nspawn"
)

// In a real systemd, with root's own user manager (user@0.service): the
// user bus answers first; with no user bus (a host without
// dbus-user-session), the manager's private socket does.
func TestDialUserManager(t *testing.T) {
	if !nspawn.RunSelf(t, nspawn.Options{Timeout: 3 * time.Minute}) {
		return
	}
	if out, err := exec.Command("systemctl", "start", "user@0.service").CombinedOutput(); err != nil {
		t.Fatalf("systemctl start user@0.service: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("systemctl", "stop", "user@0.service").Run() })
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/0")
	for _, tt := range []struct {
		name, busAddress, via string
	}{
		{"user bus", "", "the user bus /run/user/0/bus"},
		{"private socket", "unix:path=/run/user/0/no-bus-here", "the user manager's private socket /run/user/0/systemd/private"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DBUS_SESSION_BUS_ADDRESS", tt.busAddress)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			conn, ep, err := DialUser(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if ep.What != tt.via {
				t.Errorf("reached the manager through %q, want %q", ep.What, tt.via)
			}
			cg, err := ManagerCgroup(conn)
			if err != nil || cg != "/user.slice/user-0.slice/user@0.service" {
				t.Errorf("ManagerCgroup = %q, %v; want root's user manager's subtree", cg, err)
			}
			// A job's result arrives on either kind of connection.
			done := make(chan string, 1)
			if _, err := conn.StartUnitContext(ctx, "default.target", "replace", done); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-done:
				if r != "done" {
					t.Errorf("job result %q", r)
				}
			case <-ctx.Done():
				t.Fatal("no job result: signals do not arrive on this connection")
			}
		})
	}
	// Without any: the error names both places.
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	_, _, err := DialUser(context.Background())
	if err == nil || !strings.Contains(err.Error(), "user bus") || !strings.Contains(err.Error(), "private socket") {
		t.Errorf("DialUser without a manager: %v, want an error naming both places", err)
	}
}

package config

import (
	"strings"
	"testing"

	"github.com/orphand/orphand/ipc"
)

func TestUserDefault(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1234")
	t.Setenv("XDG_STATE_HOME", "/home/u/state")
	t.Setenv("HOME", "/home/u")
	f, err := UserDefault()
	if err != nil {
		t.Fatal(err)
	}
	if f.Socket != "/run/user/1234/"+ipc.UserSocketName || f.StateDir != "/home/u/state/orphand" {
		t.Errorf("UserDefault() socket %q, state %q", f.Socket, f.StateDir)
	}
	if f.Limits.ConnectionsRootReserve != 0 {
		t.Errorf("UserDefault() keeps %d connections for root, whom a per-user agent never serves", f.Limits.ConnectionsRootReserve)
	}
	if err := f.Validate(); err != nil {
		t.Errorf("UserDefault() does not validate: %v", err)
	}

	// The XDG defaults: relative values are ignored, as the specification says.
	t.Setenv("XDG_STATE_HOME", "relative")
	t.Setenv("XDG_CONFIG_HOME", "")
	if f, err = UserDefault(); err != nil || f.StateDir != "/home/u/.local/state/orphand" {
		t.Errorf("UserDefault() without $XDG_STATE_HOME: state %q, %v", f.StateDir, err)
	}
	if p, err := UserPath(); err != nil || p != "/home/u/.config/orphand/orphand.toml" {
		t.Errorf("UserPath() = %q, %v", p, err)
	}
	t.Setenv("XDG_CONFIG_HOME", "/etc/xdg-u")
	if p, err := UserPath(); err != nil || p != "/etc/xdg-u/orphand/orphand.toml" {
		t.Errorf("UserPath() with $XDG_CONFIG_HOME = %q, %v", p, err)
	}
}

func TestUserDefaultWithoutHome(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "")
	// The user database still knows the home directory of the user running
	// the test; without it the error says what to set.
	f, err := UserDefault()
	if err != nil {
		if !strings.Contains(err.Error(), "XDG_STATE_HOME") {
			t.Errorf("error %q does not say what to set", err)
		}
		return
	}
	if !strings.HasSuffix(f.StateDir, "/.local/state/orphand") {
		t.Errorf("state %q", f.StateDir)
	}
}

package sdmanager

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestUserEndpoints(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1234")
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	eps := UserEndpoints()
	if len(eps) != 2 || eps[0].Address != "unix:path=/run/user/1234/bus" || !eps[0].Hello ||
		eps[1].Address != "unix:path=/run/user/1234/systemd/private" || eps[1].Hello {
		t.Errorf("UserEndpoints() = %+v, want the user bus, then the private socket without Hello", eps)
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/tmp/elsewhere")
	if eps := UserEndpoints(); eps[0].Address != "unix:path=/tmp/elsewhere" {
		t.Errorf("with $DBUS_SESSION_BUS_ADDRESS: %+v", eps[0])
	}
	// autolaunch: means "launch one": never done, the runtime directory's
	// bus is used instead.
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "autolaunch:")
	t.Setenv("XDG_RUNTIME_DIR", "")
	want := "/run/user/" + strconv.Itoa(os.Geteuid())
	if eps := UserEndpoints(); eps[0].Address != "unix:path="+want+"/bus" || !strings.Contains(eps[1].What, want+"/systemd/private") {
		t.Errorf("with autolaunch: and no $XDG_RUNTIME_DIR: %+v", eps)
	}
}

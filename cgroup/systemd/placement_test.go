package systemd

import (
	"strings"
	"testing"
)

func TestPlacement(t *testing.T) {
	for in, want := range map[string][2]string{
		"/":                                     {"-.slice", ""},
		"":                                      {"-.slice", ""},
		"/init.scope":                           {"-.slice", "init.scope"},
		"/system.slice/cron.service":            {"system.slice", "cron.service"},
		"/orphandtest.slice/spawner.service":    {"orphandtest.slice", "spawner.service"},
		"/system.slice/docker.service/sub/leaf": {"system.slice", "docker.service"},
		"/user.slice/user-1000.slice/user@1000.service/app.slice/x.service": {"user-1000.slice", "user@1000.service"},
		"/user.slice/user-1000.slice/session-2.scope":                       {"user-1000.slice", "session-2.scope"},
		"/a.slice/a-b.slice":                  {"a-b.slice", ""},
		"/system.slice/_cpu.foo.service":      {"system.slice", "cpu.foo.service"},
		"/t.slice/orphand-0123456789ab.scope": {"t.slice", "orphand-0123456789ab.scope"},
	} {
		slice, unit := placement(in)
		if slice != want[0] || unit != want[1] {
			t.Errorf("placement(%q) = %q, %q; want %q, %q", in, slice, unit, want[0], want[1])
		}
	}
}

func TestPlacementUnderUserManager(t *testing.T) {
	const mgr = "/user.slice/user-1000.slice/user@1000.service"
	for _, tt := range []struct {
		manager, in string
		slice, unit string
		inside      bool
	}{
		{"", "/system.slice/cron.service", "system.slice", "cron.service", true},
		{"/", "/system.slice/cron.service", "system.slice", "cron.service", true},
		{mgr, mgr + "/app.slice/runner.service", "app.slice", "runner.service", true},
		{mgr, mgr + "/app.slice/app-ci.slice/job.service/sub", "app-ci.slice", "job.service", true},
		{mgr, mgr + "/session.slice/dbus.service", "session.slice", "dbus.service", true},
		{mgr, mgr + "/init.scope", "-.slice", "init.scope", true},
		{mgr, mgr, "-.slice", "", true},
		{mgr, "/user.slice/user-1000.slice/session-3.scope", "", "", false},
		{mgr, "/system.slice/cron.service", "", "", false},
		{mgr, mgr + "x/app.slice/a.service", "", "", false}, // user@1000.servicex is another unit
	} {
		slice, unit, inside := placementUnder(tt.manager, tt.in)
		if slice != tt.slice || unit != tt.unit || inside != tt.inside {
			t.Errorf("placementUnder(%q, %q) = %q, %q, %v; want %q, %q, %v", tt.manager, tt.in, slice, unit, inside, tt.slice, tt.unit, tt.inside)
		}
	}
}

func TestUnitNames(t *testing.T) {
	if u := unitName("abc"); u != "orphand-abc.scope" || idOf(u) != "abc" {
		t.Errorf("unitName/idOf round trip: %q -> %q", u, idOf(u))
	}
	for _, bad := range []string{"abc.scope", "orphand-abc.service", "x"} {
		if id := idOf(bad); id != "" {
			t.Errorf("idOf(%q) = %q", bad, id)
		}
	}
}

func FuzzPlacement(f *testing.F) {
	f.Add("/system.slice/cron.service")
	f.Add("/a.slice/_b.slice/c.scope/d")
	f.Fuzz(func(t *testing.T, in string) {
		slice, unit := placement(in)
		if !strings.HasSuffix(slice, ".slice") || strings.Contains(slice, "/") || strings.Contains(unit, "/") {
			t.Fatalf("placement(%q) = %q, %q", in, slice, unit)
		}
	})
}

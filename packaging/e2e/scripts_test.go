package e2e

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orphand/orphand/internal/testutil"
)

// fakeTools puts systemctl and deb-systemd-invoke stand-ins first on a
// PATH: they log their arguments to the returned file and succeed. They let
// a test see which calls a maintainer script makes without a systemd.
func fakeTools(t *testing.T) (path, log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "calls")
	for _, name := range []string{"systemctl", "deb-systemd-invoke"} {
		script := "#!/bin/sh\necho \"" + name + " $*\" >> " + log + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir + ":" + os.Getenv("PATH"), log
}

func calls(t *testing.T, log string) string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// runScript runs a maintainer script with sh, as dpkg and rpm do.
func runScript(t *testing.T, env []string, script string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// TestDebScriptsOffline runs the Debian maintainer scripts the way dpkg
// --root does (DPKG_ROOT set, so as without a running systemd): every
// argument dpkg may pass succeeds, the socket is enabled on the first
// installation only, nothing tries to talk to systemd, and purge leaves
// nothing behind.
func TestDebScriptsOffline(t *testing.T) {
	testutil.RequireCommand(t, "deb-systemd-helper")
	root := t.TempDir()
	units := filepath.Join(root, "lib/systemd/system")
	if err := os.MkdirAll(units, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"orphand.socket", "orphand.service", "orphand-compat.socket"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "contrib/systemd", u))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(units, u), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path, log := fakeTools(t)
	// As dpkg sets them (deb-systemd-helper insists on the first).
	env := []string{"DPKG_MAINTSCRIPT_PACKAGE=orphand", "DPKG_ROOT=" + root, "PATH=" + path}
	script := func(name string) string { return filepath.Join("..", "deb", name) }
	enabled := filepath.Join(root, "etc/systemd/system/sockets.target.wants/orphand.socket")
	masked := filepath.Join(root, "etc/systemd/system/orphand.socket")
	compatEnabled := filepath.Join(root, "etc/systemd/system/sockets.target.wants/orphand-compat.socket")
	compatMasked := filepath.Join(root, "etc/systemd/system/orphand-compat.socket")

	steps := []struct {
		script string
		args   []string
		check  func(t *testing.T)
	}{
		{"postinst", []string{"configure", ""}, func(t *testing.T) {
			if !exists(enabled) {
				t.Errorf("the first installation did not enable orphand.socket (%s)", enabled)
			}
			if exists(compatEnabled) {
				t.Error("the installation enabled orphand-compat.socket; it is off until an administrator enables it")
			}
		}},
		// The administrator enables the compatibility socket, as docs/compat.md says.
		{"", nil, func(t *testing.T) {
			if err := os.MkdirAll(filepath.Dir(compatEnabled), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/lib/systemd/system/orphand-compat.socket", compatEnabled); err != nil {
				t.Fatal(err)
			}
		}},
		// The administrator disables the socket; an upgrade keeps that.
		{"", nil, func(t *testing.T) {
			if err := os.Remove(enabled); err != nil {
				t.Fatal(err)
			}
		}},
		{"prerm", []string{"upgrade", "2.0"}, nil},
		{"postrm", []string{"upgrade", "2.0"}, nil},
		{"postinst", []string{"configure", "1.0"}, func(t *testing.T) {
			if exists(enabled) {
				t.Error("an upgrade re-enabled the socket the administrator had disabled")
			}
			if !exists(compatEnabled) {
				t.Error("an upgrade disabled the compatibility socket the administrator had enabled")
			}
		}},
		{"prerm", []string{"failed-upgrade", "1.0"}, nil},
		{"postrm", []string{"failed-upgrade", "1.0"}, nil},
		{"postinst", []string{"abort-upgrade", "2.0"}, nil},
		{"prerm", []string{"deconfigure", "in-favour", "x", "1.0"}, nil},
		{"postinst", []string{"abort-deconfigure", "in-favour", "x", "1.0"}, nil},
		{"prerm", []string{"remove"}, nil},
		{"postinst", []string{"abort-remove"}, nil},
		{"prerm", []string{"remove"}, nil},
		// dpkg removes the package's files between prerm and postrm.
		{"", nil, func(t *testing.T) {
			if err := os.RemoveAll(units); err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{"var/lib/orphand", "run/orphand", "etc/orphand"} {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(root, "var/lib/orphand/record"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"postrm", []string{"remove"}, func(t *testing.T) {
			if !exists(masked) || !exists(compatMasked) {
				t.Error("remove did not mask orphand.socket and orphand-compat.socket (their enablement stays until purge)")
			}
			if !exists(filepath.Join(root, "var/lib/orphand/record")) {
				t.Error("remove deleted the agent's state; only purge may")
			}
		}},
		{"postrm", []string{"purge"}, func(t *testing.T) {
			for _, p := range []string{masked, enabled, compatMasked, compatEnabled, "var/lib/orphand", "run/orphand", "etc/orphand"} {
				if !filepath.IsAbs(p) {
					p = filepath.Join(root, p)
				}
				if exists(p) {
					t.Errorf("purge left %s", p)
				}
			}
			_ = filepath.WalkDir(filepath.Join(root, "var/lib/systemd"), func(p string, d fs.DirEntry, err error) error {
				if err == nil && strings.Contains(d.Name(), "orphand") {
					t.Errorf("purge left deb-systemd-helper state %s", p)
				}
				return nil
			})
		}},
		{"postrm", []string{"abort-install"}, nil},
		{"postrm", []string{"disappear", "other", "1.0"}, nil},
	}
	for _, s := range steps {
		if s.script != "" {
			out, err := runScript(t, env, script(s.script), s.args...)
			if err != nil {
				t.Fatalf("%s %q: %v\n%s", s.script, s.args, err, out)
			}
		}
		if s.check != nil {
			s.check(t)
		}
	}
	if c := calls(t, log); c != "" {
		t.Errorf("with DPKG_ROOT set the scripts must not talk to systemd, but called:\n%s", c)
	}
	for _, name := range []string{"postinst", "prerm", "postrm"} {
		if out, err := runScript(t, env, script(name), "no-such-action"); err == nil {
			t.Errorf("%s accepted an unknown argument:\n%s", name, out)
		}
	}
}

// TestRPMScriptsOffline runs the rpm scriptlets that only talk to systemctl
// (%post and %preun) with each count rpm passes, on this machine, whose PID
// 1 is not systemd (if it is, the expected calls change accordingly). %postun
// with 0 removes /var/lib/orphand and is run in the container only.
func TestRPMScriptsOffline(t *testing.T) {
	path, log := fakeTools(t)
	env := []string{"PATH=" + path}
	booted := exists("/run/systemd/system")
	for _, c := range []struct {
		script, arg          string
		offline, whileBooted string // expected calls
	}{
		{
			"post", "1", "systemctl --root=/ enable orphand.socket\n",
			"systemctl daemon-reload\nsystemctl enable --now orphand.socket\n",
		},
		{
			"post", "2", "",
			"systemctl daemon-reload\nsystemctl -q is-enabled orphand.socket\nsystemctl start orphand.socket\nsystemctl try-restart orphand.service\n",
		},
		{
			"preun", "0", "systemctl --root=/ disable orphand-compat.socket orphand.socket orphand.service\n",
			"systemctl disable --now orphand-compat.socket orphand.socket orphand.service\n",
		},
		{"preun", "1", "", ""},
		{"postun", "1", "", ""},
	} {
		if err := os.Remove(log); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		out, err := runScript(t, env, filepath.Join("..", "rpm", c.script), c.arg)
		if err != nil {
			t.Errorf("%%%s %s: %v\n%s", c.script, c.arg, err, out)
		}
		want := c.offline
		if booted {
			want = c.whileBooted
		}
		if got := calls(t, log); got != want {
			t.Errorf("%%%s %s called\n%s\nwant\n%s", c.script, c.arg, got, want)
		}
	}
}

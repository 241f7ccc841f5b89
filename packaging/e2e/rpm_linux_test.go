package e2e

import (
	"os"
	"strings"
	"testing"
)

// rpmInstall is how the .rpm goes into a Debian container: rpm keeps its
// own database there (Debian's rpm warns that alien is the usual way, and
// goes ahead), and --nodeps because that database lists none of the
// system's packages. The package's only needs are systemd and a shell.
var rpmInstall = []string{"-i", "--nodeps"}

// TestRPMInSystemd installs the .rpm in the same kind of fresh container as
// TestDebInSystemd and runs the same smoke test, then an upgrade with a
// group registered and an erase.
func TestRPMInSystemd(t *testing.T) {
	if !host(t) {
		return
	}
	version, upgrade := os.Getenv(envVersion), os.Getenv(envUpgrade)
	var files []string
	if !t.Run("Install", func(t *testing.T) {
		run(t, "rpm", append(rpmInstall, guestPkg+".rpm")...)
		if got := run(t, "rpm", "-q", "--qf", "%{VERSION}", "orphand"); got != version {
			t.Errorf("installed version %q, want %q", got, version)
		}
		files = strings.Fields(run(t, "rpm", "-ql", "orphand"))
		checkInstalled(t, version)
		checkStarted(t, agentStatus(t), version)
	}) {
		t.FailNow()
	}
	t.Run("UserAgent", testUserAgent)
	t.Run("SpawnerKilled", testSpawnerKilled)
	t.Run("Upgrade", func(t *testing.T) {
		g := spawnGroup(t, "upgrade", "")
		before := agentStatus(t).Pid
		run(t, "rpm", "-U", "--nodeps", guestUpgrade+".rpm")
		if got := run(t, "rpm", "-q", "--qf", "%{VERSION}", "orphand"); got != upgrade {
			t.Fatalf("installed version %q after the upgrade, want %q", got, upgrade)
		}
		checkUpgraded(t, before, upgrade)
		g.checkSurvived(t, "the upgrade")
	})
	t.Run("Erase", func(t *testing.T) {
		run(t, "rpm", "-e", "--nodeps", "orphand")
		if out, err := try("rpm", "-q", "orphand"); err == nil {
			t.Errorf("rpm still knows orphand after the erase: %s", out)
		}
		checkFilesGone(t, "rpm -ql", files)
		checkNothingLeft(t)
	})
}

// TestInstallWithoutSystemd installs and removes both packages where
// systemd does not run the root being installed to, as in a chroot or an
// image build: in a mount namespace whose /run/systemd is an empty tmpfs,
// so that systemctl and the scripts see no running systemd. Nothing fails,
// nothing starts, the socket is enabled for the next boot, and the purge or
// erase takes the enablement back.
func TestInstallWithoutSystemd(t *testing.T) {
	if !host(t) {
		return
	}
	const link = "/etc/systemd/system/sockets.target.wants/orphand.socket"
	offline := func(t *testing.T, args ...string) {
		t.Helper()
		script := `mount -t tmpfs -o mode=0755 offline /run/systemd && test ! -e /run/systemd/system && exec "$@"`
		run(t, "unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "offline"}, args...)...)
	}
	installed := func(t *testing.T, what string) {
		t.Helper()
		if _, err := os.Lstat(link); err != nil {
			t.Errorf("%s did not enable orphand.socket for the next boot: %v", what, err)
		}
		for _, u := range []string{"orphand.socket", "orphand.service"} {
			if got := systemctl("is-active", u); got != "inactive" {
				t.Errorf("%s is %s: without a running systemd nothing may be started", u, got)
			}
		}
	}
	t.Run("Deb", func(t *testing.T) {
		offline(t, "dpkg", "-i", guestPkg+".deb")
		installed(t, "dpkg -i")
		offline(t, "dpkg", "-i", guestUpgrade+".deb")
		installed(t, "the upgrade")
		offline(t, "dpkg", "--purge", "orphand")
		checkNothingLeft(t)
	})
	t.Run("RPM", func(t *testing.T) {
		offline(t, append(append([]string{"rpm"}, rpmInstall...), guestPkg+".rpm")...)
		installed(t, "rpm -i")
		offline(t, "rpm", "-e", "--nodeps", "orphand")
		checkNothingLeft(t)
	})
}

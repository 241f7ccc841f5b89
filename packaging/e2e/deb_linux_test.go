package e2e

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/orphand/orphand/ipc"
)

// TestDebInSystemd installs the .deb in a fresh Debian with systemd as PID
// 1 and follows it through its life: install, use, restart, upgrade,
// remove, purge. The steps depend on each other and run in order.
func TestDebInSystemd(t *testing.T) {
	if !host(t) {
		return
	}
	version, upgrade := os.Getenv(envVersion), os.Getenv(envUpgrade)
	var files []string // what dpkg -L listed after the installation
	if !t.Run("Install", func(t *testing.T) { files = testDebInstall(t, version) }) {
		t.FailNow()
	}
	t.Run("Units", testUnits)
	t.Run("UserAgent", testUserAgent)
	t.Run("SpawnerKilled", testSpawnerKilled)
	t.Run("Hardened", testHardenedOps)
	t.Run("Observability", testObservability)
	t.Run("Restart", testRestart)
	t.Run("Compat", testCompat)
	t.Run("Upgrade", func(t *testing.T) { testDebUpgrade(t, upgrade) })
	t.Run("CgroupfsRestart", testCgroupfsRestart)
	t.Run("Remove", testDebRemove)
	t.Run("Purge", func(t *testing.T) { testDebPurge(t, files) })
}

// testDebInstall: dpkg -i enables and starts the socket, not the service;
// the first orphanctl status starts the service, which runs the package's
// binary with the systemd backend.
func testDebInstall(t *testing.T, version string) []string {
	run(t, "dpkg", "-i", guestPkg+".deb")
	if got := run(t, "dpkg-query", "-W", "-f", "${Version}", "orphand"); got != version {
		t.Errorf("installed version %q, want %q", got, version)
	}
	files := strings.Fields(run(t, "dpkg", "-L", "orphand"))
	checkInstalled(t, version)
	status := agentStatus(t) // the first connection
	checkStarted(t, status, version)
	return files
}

// checkInstalled: after the installation, before any client connected.
func checkInstalled(t *testing.T, version string) {
	t.Helper()
	if got := systemctl("is-enabled", "orphand.socket"); got != "enabled" {
		t.Errorf("orphand.socket is %s after the installation, want enabled", got)
	}
	if got := systemctl("is-active", "orphand.socket"); got != "active" {
		t.Errorf("orphand.socket is %s after the installation, want active (listening)", got)
	}
	if got := systemctl("is-active", "orphand.service"); got != "inactive" {
		t.Errorf("orphand.service is %s before any connection, want inactive: the socket starts it", got)
	}
	fi, err := os.Stat("/run/orphand/orphand.sock")
	if err != nil {
		t.Fatalf("the socket is not there: %v", err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o666 {
		t.Errorf("/run/orphand/orphand.sock is %v, want a socket with mode 0666", fi.Mode())
	}
	if got := strings.TrimSpace(run(t, "orphand", "version")); got != version {
		t.Errorf("orphand version = %q, want %q", got, version)
	}
	if got := strings.TrimSpace(run(t, "orphanctl", "--version")); got != "orphanctl "+version {
		t.Errorf("orphanctl --version = %q, want \"orphanctl %s\"", got, version)
	}
	for _, f := range []string{
		"/etc/orphand/orphand.toml", "/usr/share/man/man8/orphand.8.gz",
		"/usr/share/man/man1/orphanctl.1.gz", "/usr/share/bash-completion/completions/orphanctl",
		"/usr/lib/systemd/system/orphand-compat.socket", "/usr/share/doc/orphand/compat.md",
	} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%v", err)
		}
	}
	// The completion works in a shell: it completes orphanctl's commands.
	out := run(t, "bash", "-c", `source /usr/share/bash-completion/completions/orphanctl
COMP_WORDS=(orphanctl sta); COMP_CWORD=1; COMP_LINE="orphanctl sta"; COMP_POINT=${#COMP_LINE}
_orphanctl orphanctl sta orphanctl; printf '%s\n' "${COMPREPLY[@]}"`)
	if strings.TrimSpace(out) != "status" {
		t.Errorf("completing \"orphanctl sta\" gave %q, want status", out)
	}
}

// checkStarted: the agent systemd started is the packaged one.
func checkStarted(t *testing.T, s *ipc.Status, version string) {
	t.Helper()
	if got := systemctl("is-active", "orphand.service"); got != "active" {
		t.Fatalf("orphand.service is %s after the first connection, want active", got)
	}
	if s.Version != version || s.Backend != "systemd" {
		t.Errorf("the agent is version %q with the %s backend, want %q with systemd", s.Version, s.Backend, version)
	}
	if pid := mainPID(t); pid != s.Pid {
		t.Errorf("orphand.service's main pid is %d, the agent's %d", pid, s.Pid)
	}
	if exe, err := os.Readlink("/proc/" + strconv.Itoa(s.Pid) + "/exe"); err != nil || exe != "/usr/sbin/orphand" {
		t.Errorf("the agent runs %q (%v), want /usr/sbin/orphand", exe, err)
	}
}

// testUnits: the units as installed are valid, and the service's sandbox
// rates "OK" or better in systemd-analyze security.
func testUnits(t *testing.T) {
	run(t, "systemd-analyze", "verify", "--man=no", "orphand.socket", "orphand.service")
	out := run(t, "systemd-analyze", "security", "--no-pager", "orphand.service")
	t.Logf("systemd-analyze security orphand.service:\n%s", out)
	m := regexp.MustCompile(`Overall exposure level for orphand\.service: ([0-9.]+) (\w+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no overall exposure level in systemd-analyze security's output")
	}
	if !slices.Contains([]string{"OK", "SAFE", "PERFECT"}, m[2]) {
		t.Errorf("orphand.service's exposure is %s %s, want OK or better", m[1], m[2])
	}
}

// testSpawnerKilled: orphanctl run from a shell in a service; kill -9 of
// the spawner kills its children, grandchildren and the double-forked
// daemon; the scope lived in the caller's slice; the caller's own shell
// lives on.
func testSpawnerKilled(t *testing.T) {
	g := spawnGroup(t, "killed", "")
	g.checkPlacement(t)
	g.killSpawner(t)
	g.waitAllGone(t)
	if got := systemctl("is-active", g.unit); got != "active" {
		t.Errorf("the caller's service is %s after its group died, want active (its shell is not in the group)", got)
	}
	var last *ipc.Group
	waitUntil(t, "dead: group "+g.ID, func() bool {
		resp, err := ctl("show", g.ID)
		if err == nil {
			last = resp.Group
		}
		return last != nil && last.State == ipc.StateDead
	})
	if last.Killed < spawnMembers-1 {
		t.Errorf("the group's kill counted %d processes, want at least %d", last.Killed, spawnMembers-1)
	}
}

// testRestart: systemctl restart orphand with a group registered; the
// restarted agent still kills the group when its spawner dies.
func testRestart(t *testing.T) {
	g := spawnGroup(t, "restart", "")
	// The spawner's pidfd went to systemd's fd store (FileDescriptorStoreMax).
	if n := systemctl("show", "-p", "NFileDescriptorStore", "--value", "orphand.service"); n == "" || n == "0" {
		t.Errorf("orphand.service holds %q descriptors in its fd store with a group registered, want at least 1", n)
	}
	before := mainPID(t)
	run(t, "systemctl", "restart", "orphand.service")
	st := agentStatus(t)
	if st.Pid == before {
		t.Fatalf("the agent's pid is still %d after systemctl restart", st.Pid)
	}
	for _, f := range []string{"restart", "fdstore"} {
		if !slices.Contains(st.Features, f) {
			t.Errorf("the restarted agent lacks the %q feature: %v", f, st.Features)
		}
	}
	g.checkSurvived(t, "systemctl restart orphand")
}

// testCgroupfsRestart: with the cgroupfs backend the groups live in the
// agent's delegated subtree; a restart must not kill them (KillMode=process)
// and the new agent takes them over.
func testCgroupfsRestart(t *testing.T) {
	const dropin = "/etc/systemd/system/orphand.service.d/pkgtest-cgroupfs.conf"
	if err := os.MkdirAll(filepath.Dir(dropin), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := "[Service]\nExecStart=\nExecStart=/usr/sbin/orphand serve --backend cgroupfs\n"
	if err := os.WriteFile(dropin, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.RemoveAll(filepath.Dir(dropin))
		_, _ = try("systemctl", "daemon-reload")
		_, _ = try("systemctl", "restart", "orphand.service")
	})
	run(t, "systemctl", "daemon-reload")
	run(t, "systemctl", "restart", "orphand.service")
	g := spawnGroup(t, "cgroupfs", "")
	if g.Backend != "cgroupfs" || !strings.HasPrefix(g.Cgroup, "/system.slice/orphand.service/") {
		t.Fatalf("group %s: backend %s at %s, want cgroupfs under /system.slice/orphand.service/ (Delegate=yes)", g.ID, g.Backend, g.Cgroup)
	}
	run(t, "systemctl", "restart", "orphand.service")
	for _, p := range g.members {
		if p.Exited() {
			t.Fatalf("member %d of group %s died when the agent restarted: the restart must leave groups alone", p.Pid(), g.ID)
		}
	}
	g.checkSurvived(t, "systemctl restart orphand (cgroupfs backend)")
}

// testDebUpgrade: dpkg -i of a newer build with a group registered. The
// agent restarts on the new binary, the local change to the conffile stays,
// and the group survives.
func testDebUpgrade(t *testing.T, upgrade string) {
	const conf, local = "/etc/orphand/orphand.toml", "\n# a local change, kept across upgrades\n"
	orig, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, append(orig, local...), 0o644); err != nil {
		t.Fatal(err)
	}
	g := spawnGroup(t, "upgrade", "")
	before := agentStatus(t).Pid
	run(t, "dpkg", "-i", guestUpgrade+".deb")
	if got := run(t, "dpkg-query", "-W", "-f", "${Version}", "orphand"); got != upgrade {
		t.Fatalf("installed version %q after the upgrade, want %q", got, upgrade)
	}
	if got, _ := os.ReadFile(conf); string(got) != string(orig)+local {
		t.Errorf("the upgrade replaced the changed conffile %s", conf)
	}
	checkUpgraded(t, before, upgrade)
	g.checkSurvived(t, "the upgrade")
	if got := systemctl("is-active", "orphand-compat.socket"); got != "active" {
		t.Errorf("orphand-compat.socket, enabled before, is %s after the upgrade", got)
	}
}

// checkUpgraded: the agent runs the new binary, restarted by the package's
// scripts, and the socket still listens.
func checkUpgraded(t *testing.T, before int, upgrade string) {
	t.Helper()
	if got := systemctl("is-active", "orphand.socket"); got != "active" {
		t.Errorf("orphand.socket is %s after the upgrade", got)
	}
	if got := systemctl("is-active", "orphand.service"); got != "active" {
		t.Errorf("orphand.service is %s after the upgrade: a running agent must be restarted, not stopped", got)
	}
	st := agentStatus(t)
	if st.Pid == before || st.Version != upgrade {
		t.Errorf("after the upgrade the agent is pid %d version %q; want a new process (was %d) running %q", st.Pid, st.Version, before, upgrade)
	}
}

// testDebRemove: dpkg -r stops the socket and the agent; the configuration
// and state stay until purge.
func testDebRemove(t *testing.T) {
	run(t, "dpkg", "-r", "orphand")
	for _, u := range []string{"orphand.socket", "orphand.service", "orphand-compat.socket"} {
		if got := systemctl("is-active", u); got != "inactive" {
			t.Errorf("%s is %s after dpkg -r, want inactive", u, got)
		}
	}
	for path, want := range map[string]bool{
		"/run/orphand/orphand.sock": false, "/run/orphand/compat.sock": false, "/usr/sbin/orphand": false, "/usr/bin/orphanctl": false,
		"/etc/orphand/orphand.toml": true, "/var/lib/orphand": true,
	} {
		if _, err := os.Stat(path); (err == nil) != want {
			t.Errorf("%s: exists=%v after dpkg -r, want %v", path, err == nil, want)
		}
	}
}

// testDebPurge: dpkg --purge leaves nothing: no file of the package, no
// configuration, state or runtime directory, no unit, enablement link,
// socket, scope, cgroup or process.
func testDebPurge(t *testing.T, files []string) {
	run(t, "dpkg", "--purge", "orphand")
	if out, err := try("dpkg-query", "-W", "orphand"); err == nil {
		t.Errorf("dpkg still knows orphand after the purge: %s", out)
	}
	checkFilesGone(t, "dpkg -L", files)
	checkNothingLeft(t)
}

// checkFilesGone: the files a package listed are gone, and so are its own
// directories; shared ones (/usr/bin, /lib and its usrmerge link) stay.
func checkFilesGone(t *testing.T, lister string, files []string) {
	t.Helper()
	for _, f := range files {
		fi, err := os.Stat(f)
		if err == nil && (!fi.IsDir() || strings.Contains(f, "orphand")) {
			t.Errorf("%s (listed by %s) is still there", f, lister)
		}
	}
}

// checkNothingLeft: no trace of orphand in the file system, systemd, the
// cgroup tree or the process table.
func checkNothingLeft(t *testing.T) {
	t.Helper()
	for _, p := range []string{
		"/etc/orphand", "/var/lib/orphand", "/run/orphand", "/usr/share/doc/orphand",
		"/usr/sbin/orphand", "/usr/bin/orphanctl",
	} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
	for _, dir := range []string{"/etc/systemd/system", "/var/lib/systemd"} {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.HasPrefix(d.Name(), "orphand") {
				t.Errorf("%s is still there", p)
			}
			return nil
		})
	}
	// Not 'orphand*': the test harness's own unit is orphand-run.service.
	units := []string{"orphand.service", "orphand.socket", "orphand-compat.socket", "orphand-*.scope"}
	if out := systemctl(append([]string{"list-units", "--all", "--plain", "--no-legend"}, units...)...); out != "" {
		t.Errorf("units left:\n%s", out)
	}
	if out := systemctl(append([]string{"list-unit-files", "--plain", "--no-legend"}, units...)...); out != "" {
		t.Errorf("unit files left:\n%s", out)
	}
	err := filepath.WalkDir("/sys/fs/cgroup", func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a cgroup removed while walking
		}
		if err != nil {
			return err
		}
		if n := d.Name(); d.IsDir() && (n == "orphand.service" || (strings.HasPrefix(n, "orphand-") && strings.HasSuffix(n, ".scope"))) {
			t.Errorf("cgroup %s is still there", p)
		}
		return nil
	})
	if err != nil {
		t.Errorf("walking the cgroup tree: %v", err)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, p := range procs {
		if exe, err := os.Readlink(p); err == nil && strings.HasPrefix(exe, "/usr/sbin/orphand") {
			t.Errorf("process %s still runs %s", filepath.Dir(p), exe)
		}
	}
}

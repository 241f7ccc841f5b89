package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/orphand/orphand/ipc"
)

// pkgUser is the unprivileged user whose per-user agent the package tests
// start (the container is thrown away after the run).
const (
	pkgUser    = "pkguser"
	pkgUserUID = 1500
)

// testUserAgent: the installed user units verify, and one systemctl --user
// command as an ordinary user gives that user an agent of its own, which
// the first orphanctl starts, with the systemd backend of the user's
// manager. The user's manager is stopped at the end, so that the removal
// and purge find nothing of it.
func testUserAgent(t *testing.T) {
	run(t, "useradd", "--create-home", "--uid", strconv.Itoa(pkgUserUID), pkgUser)
	unit := "user@" + strconv.Itoa(pkgUserUID) + ".service"
	run(t, "systemctl", "start", unit)
	t.Cleanup(func() { _, _ = try("systemctl", "stop", unit) })

	out := asPkgUser(t, "systemd-analyze", "--user", "verify", "--man=no", "orphand.socket", "orphand.service")
	if strings.TrimSpace(out) != "" {
		// verify exits 0 on unknown directives: anything it says is a finding.
		t.Errorf("systemd-analyze --user verify of the installed user units:\n%s", out)
	}
	asPkgUser(t, "systemctl", "--user", "enable", "--now", "orphand.socket")
	if got, _ := pkgUserCmd("systemctl", "--user", "is-active", "orphand.service").Output(); strings.TrimSpace(string(got)) != "inactive" {
		t.Errorf("the user's orphand.service is %s before any connection, want inactive", got)
	}
	var st ipc.Response
	if err := json.Unmarshal([]byte(asPkgUser(t, "orphanctl", "--json", "status")), &st); err != nil || st.Status == nil {
		t.Fatalf("orphanctl --json status as %s: %v", pkgUser, err)
	}
	s := st.Status
	if s.Mode != ipc.ModeUser || s.UID == nil || *s.UID != pkgUserUID || s.Backend != "systemd" {
		t.Errorf("the agent %s reached is mode %q uid %v backend %q, want its own per-user agent with the systemd backend", pkgUser, s.Mode, s.UID, s.Backend)
	}
	if exe, err := os.Readlink("/proc/" + strconv.Itoa(s.Pid) + "/exe"); err != nil || exe != "/usr/sbin/orphand" {
		t.Errorf("the per-user agent runs %q (%v), want /usr/sbin/orphand", exe, err)
	}
	if got := strings.TrimSpace(asPkgUser(t, "systemctl", "--user", "show", "-p", "FragmentPath", "--value", "orphand.service")); got != "/usr/lib/systemd/user/orphand.service" {
		t.Errorf("the user's orphand.service comes from %q, want the package's /usr/lib/systemd/user/orphand.service", got)
	}
	asPkgUser(t, "systemctl", "--user", "disable", "--now", "orphand.socket", "orphand.service")
}

// asPkgUser runs a command as pkgUser and returns its combined output;
// failing, it ends the test.
func asPkgUser(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := pkgUserCmd(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s as %s: %v\n%s", name, strings.Join(args, " "), pkgUser, err, out)
	}
	return string(out)
}

// pkgUserCmd is the command run as pkgUser, in its session's environment.
func pkgUserCmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = "/"
	cmd.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/" + pkgUser, "USER=" + pkgUser,
		"XDG_RUNTIME_DIR=/run/user/" + strconv.Itoa(pkgUserUID), "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0",
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: pkgUserUID, Gid: pkgUserUID, Groups: []uint32{}}}
	return cmd
}

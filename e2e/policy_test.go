package e2e

import (
	"strconv"
	"strings"
	"testing"
)

const (
	nobody  = 65534
	someone = 65533 // another unprivileged user
)

// testOtherUID: a caller of another uid may not register, watch, attach or
// kill root's processes, nor touch another user's groups; it may manage its
// own.
func testOtherUID(t *testing.T, a *agent) {
	rootProc := sleeper(t)
	mine := startChild(t, append(asUID(t, nobody), "sleep", "1000")...)
	theirs := startChild(t, append(asUID(t, someone), "sleep", "1000")...)
	rootPid, minePid, theirPid := itoa(rootProc.Process.Pid), itoa(mine.Process.Pid), itoa(theirs.Process.Pid)

	rootGroup := strings.TrimSpace(a.ctl(t, "register", "--pid", rootPid).stdout)
	theirGroup := strings.TrimSpace(a.ctlAs(t, someone, "register", "--pid", theirPid).stdout)
	if !groupID.MatchString(rootGroup) || !groupID.MatchString(theirGroup) {
		t.Fatalf("setup: root's group %q, uid %d's group %q", rootGroup, someone, theirGroup)
	}

	refused := [][]string{
		{"register", "--pid", rootPid},
		{"register", "--pid", theirPid},
		{"register", "--pid", "1"},
		{"watch", "--pid", minePid, "--kill", rootPid},
		{"watch", "--pid", rootPid, "--kill", minePid},
		{"watch", "--pid", minePid, "--kill", theirPid},
		{"kill", rootGroup},
		{"kill", theirGroup},
		{"release", rootGroup},
		{"show", theirGroup},
		{"attach", theirGroup, minePid},
	}
	for _, args := range refused {
		r := a.ctlAs(t, nobody, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "permission_denied") {
			t.Errorf("uid %d: orphanctl %s: %v\nwant exit 1 with permission_denied", nobody, strings.Join(args, " "), r)
		}
	}
	if r := a.ctlAs(t, nobody, "ls", "-q"); r.code != 0 || r.stdout != "" {
		t.Errorf("uid %d sees groups of others: %v", nobody, r)
	}

	// Its own process and group are its own to manage — but root's process
	// may not be put in them.
	own := strings.TrimSpace(a.ctlAs(t, nobody, "register", "--pid", minePid).stdout)
	if !groupID.MatchString(own) {
		t.Fatalf("uid %d could not register its own process", nobody)
	}
	if r := a.ctlAs(t, nobody, "attach", own, rootPid); r.code != 1 || !strings.Contains(r.stderr, "permission_denied") {
		t.Errorf("uid %d attached root's process to its group: %v", nobody, r)
	}
	held := hold(t, mine.Process.Pid)
	if r := a.ctlAs(t, nobody, "kill", own); r.code != 0 {
		t.Errorf("uid %d could not kill its own group: %v", nobody, r)
	}
	waitGone(t, "own group's member", held)

	// Nothing refused had an effect: root's and the other user's processes
	// still run, in their groups; root ends them.
	for _, g := range []string{rootGroup, theirGroup} {
		if got, _ := a.show(t, g); got.State != "active" {
			t.Errorf("group %s is %s after refused requests, want active", g, got.State)
		}
		if r := a.ctl(t, "kill", g); r.code != 0 {
			t.Errorf("root: kill %s: %v", g, r)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

package security

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/orphand/orphand/ipc"
)

// groupDir is what the agent may name a cgroup: a group id.
var groupDir = regexp.MustCompile(`^[0-9a-f]{12}$`)

// testCgroupEscape: names, ids, parents and other fields built to leave
// the cgroup tree (../, /, NUL, 4 KiB) either are only labels or are
// refused; on disk nothing appears outside the agent's cgroup root, and
// inside it only directories named by group ids.
func testCgroupEscape(t *testing.T, a *agent, keep func(...*proc)) {
	mark := "orphand-escape-" + randHex(4)
	u := a.as(t, attacker)
	p := sleeper(t, attacker)
	var made []string
	for _, name := range []string{"../../../" + mark, "/" + mark + "/x", mark + "/../../..", "..", "/", "../../../../../sys/fs/cgroup/" + mark} {
		g := u.ok(ipc.Request{Op: ipc.OpRegister, Pid: p.Pid(), Name: name, Parent: lastOf(made)}).Group
		if !strings.HasPrefix(g.Cgroup, a.root+"/") || strings.Contains(g.Cgroup, mark) || strings.Contains(g.Cgroup, "..") {
			t.Errorf("name %q gave cgroup %q, outside %s or from the name", name, g.Cgroup, a.root)
		}
		made = append(made, g.ID)
	}
	bad := ipc.CodeBadRequest
	u.refused("a name with NUL", ipc.Request{Op: ipc.OpRegister, Pid: p.Pid(), Name: mark + "\x00x"}, bad)
	u.refused("a name of 4 KiB", ipc.Request{Op: ipc.OpRegister, Pid: p.Pid(), Name: strings.Repeat("../", 1366)}, bad)
	u.refused("a name with a newline", ipc.Request{Op: ipc.OpRegister, Pid: p.Pid(), Name: "a\nb"}, bad)
	u.refused("a signal that is a path", ipc.Request{Op: ipc.OpRegister, Pid: p.Pid(), Signal: "../../" + mark}, bad)
	u.refused("a trigger that is a path", ipc.Request{Op: ipc.OpRegister, Pid: p.Pid(), On: "../" + mark}, bad)
	ids := []string{
		"..", "../..", "/", ".", "./" + made[0], made[0] + "/..", made[0] + "/" + made[1], "../" + a.root,
		"/sys/fs/cgroup", "x\x00y", made[0] + "\x00", strings.Repeat("a", 4096), strings.Repeat("../", 1366), mark,
	}
	for _, id := range ids {
		for _, op := range []string{ipc.OpShow, ipc.OpKill, ipc.OpRelease, ipc.OpAttach, ipc.OpSubscribe} {
			r := u.do(ipc.Request{Op: op, Group: id, Pid: p.Pid()})
			if r.OK || r.Error == nil || r.Error.Code != ipc.CodeNotFound {
				t.Errorf("%s group %.40q: ok=%v error=%+v, want not_found", op, id, r.OK, r.Error)
			}
		}
		u.refused("nest in a path-like parent", ipc.Request{Op: ipc.OpRegister, Pid: p.Pid(), Parent: id}, ipc.CodeNotFound)
	}
	u.refused("an empty group id", ipc.Request{Op: ipc.OpKill, Group: ""}, bad)

	// On disk: under the agent's root, only group ids; anywhere in the
	// cgroup file systems and the state directory, nothing with the mark.
	rootDir := filepath.Join(a.mount, a.root)
	_ = filepath.WalkDir(rootDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && path != rootDir && !groupDir.MatchString(d.Name()) {
			t.Errorf("the agent made cgroup %s, not named by a group id", path)
		}
		return nil
	})
	top, _ := os.ReadDir(os.TempDir()) // its top level only: it is big and busy
	for _, e := range top {
		if strings.Contains(e.Name(), "orphand-escape-") {
			t.Errorf("a request's name reached the disk: %s", filepath.Join(os.TempDir(), e.Name()))
		}
	}
	for _, dir := range []string{"/sys/fs/cgroup", a.stateDir, filepath.Dir(a.socket)} {
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			// An error is a cgroup vanishing under the walk (others' tests):
			// d may still name it.
			if d != nil && strings.Contains(d.Name(), "orphand-escape-") {
				t.Errorf("a request's name reached the disk: %s", path)
			}
			return nil
		})
	}
	u.ok(ipc.Request{Op: ipc.OpKill, Group: made[0]}) // and everything nested in it
	p.waitExit(t, "its groups were killed")
}

func lastOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

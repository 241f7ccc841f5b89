package security

import (
	"bufio"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
)

// groupDir is what the agent may name a cgroup: a group id.
var groupDir = regexp.MustCompile(`^[0-9a-f]{12}$`)

// testCgroupEscape: names, ids, parents and other fields built to leave
// the cgroup tree (../, /, NUL, 4 KiB) either are only labels or are
// refused; on disk nothing appears outside the agent's cgroup root, and
// inside it only directories named by group ids.
func testCgroupEscape(t *testing.T, a *agent, keep func(...*proc)) {
	mark := "orphand-escape-" + testutil.RandHex(4)
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
	testMemberStaysIn(t, a, u)
}

// testMemberStaysIn: a member of the attacker's group cannot move itself
// out of the agent's cgroup tree, to the top or to a cgroup of its own.
func testMemberStaysIn(t *testing.T, a *agent, u *user) {
	in, out := pipe(t), pipe(t)
	script := `read x; for d in "$@"; do if echo $$ > "$d/cgroup.procs"; then echo "moved to $d"; fi; done; echo done; read x`
	cmd := exec.Command("sh", "-c", script, "sh", a.mount, filepath.Join(a.mount, a.root))
	cmd.Dir, cmd.SysProcAttr = "/", credential(attacker)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in.r, out.w, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	in.r.Close()
	out.w.Close()
	g := u.ok(ipc.Request{Op: ipc.OpRegister, Pid: cmd.Process.Pid}).Group
	if _, err := in.w.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	_ = out.r.SetReadDeadline(time.Now().Add(waitLong))
	said, _ := bufio.NewReader(out.r).ReadString('\n')
	if said != "done\n" {
		t.Errorf("a member of a group as uid %d: %q", attacker, said)
	}
	if cg := cgroupOf(t, cmd.Process.Pid); cg != g.Cgroup {
		t.Errorf("the member is in %s, not in its group's cgroup %s", cg, g.Cgroup)
	}
	u.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID})
}

// pipeEnds is an os.Pipe.
type pipeEnds struct{ r, w *os.File }

func pipe(t *testing.T) pipeEnds {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return pipeEnds{r, w}
}

func lastOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

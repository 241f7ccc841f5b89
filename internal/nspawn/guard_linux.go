package nspawn

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// guardScript is a small process outside the group that ends the group if
// its owner (this program) dies first. It reads one line from a pipe whose
// only writer is the owner: "done" means the owner cleaned up itself; EOF
// means the owner is gone (SIGKILL, or a panic such as go test -timeout's,
// which skips every deferred cleanup), and then it does the cleanup: kill,
// wait until empty (bounded), remove the groups and the control directory.
// Pdeathsig alone is not enough: it ends nspawn, but the container's
// systemd, reparented, would live on.
const guardScript = `read -r line
[ "$line" = done ] && exit 0
echo 1 > "$V2/cgroup.kill" 2>/dev/null || for p in $(cat $(find "$V2" -name cgroup.procs)); do kill -9 "$p"; done
i=0
while grep -qs 'populated 1' "$V2/cgroup.events" && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
find "$V2" -depth -type d -exec rmdir {} \; 2>/dev/null
[ -z "$V1" ] || find "$V1" -depth -type d -exec rmdir {} \; 2>/dev/null
[ -z "$RM" ] || rm -rf "$RM"
`

// guard is a running guardScript and the write end of its pipe.
type guard struct {
	cmd *exec.Cmd
	w   *os.File
}

// startGuard starts the guard of g; remove is a directory it also deletes
// if it has to act ("" for none).
func startGuard(g *procGroup, remove string) (*guard, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", guardScript)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "V2=" + g.v2, "V1=" + g.v1, "RM=" + remove}
	cmd.Stdin = r
	// Its own session: a Ctrl-C meant for the test must not end the guard
	// before it has done its job.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("start the cgroup guard: %w", err)
	}
	return &guard{cmd: cmd, w: w}, nil
}

// release tells the guard the owner has cleaned up and waits for it to exit.
func (gd *guard) release() error {
	_, werr := gd.w.WriteString("done\n")
	gd.w.Close()
	return errors.Join(werr, gd.cmd.Wait())
}

package security

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/e2e/internal/harness"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// The uids the attacks run as: no /etc/passwd entry is needed.
const (
	attacker = 65534
	victim   = 65533 // another unprivileged user, whose things must survive
	third    = 65532 // one more, to fill the connection total
)

// credential makes a child run as uid (and gid uid, no supplementary
// groups), from its first instruction.
func credential(uid int) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}}
}

// user is one connection to the agent made by a helper process running as
// uid: the agent sees that uid and that process as its peer.
type user struct {
	t      *testing.T
	uid    int
	pid    int // the helper: the process "pid": 0 means to the agent
	stdin  *os.File
	out    *os.File
	r      *bufio.Reader
	stderr *testutil.SyncBuffer
	done   chan struct{} // closed once the helper is reaped
}

// as connects to a as uid.
func (a *agent) as(t *testing.T, uid int) *user {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	u := &user{t: t, uid: uid, stdin: inW, out: outR, r: bufio.NewReaderSize(outR, 1<<20), stderr: &testutil.SyncBuffer{}, done: make(chan struct{})}
	cmd := exec.Command(a.bins.helper)
	cmd.Env = append(os.Environ(), helperEnv+"="+modeProxy, socketEnv+"="+a.socket)
	cmd.Dir = "/"
	cmd.SysProcAttr = credential(uid)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, u.stderr
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	u.pid = cmd.Process.Pid
	go func() { _ = cmd.Wait(); close(u.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-u.done
		inW.Close()
		outR.Close()
	})
	return u
}

// send writes raw bytes to the agent.
func (u *user) send(b []byte) {
	u.t.Helper()
	if _, err := u.stdin.Write(b); err != nil {
		u.t.Fatalf("uid %d: send: %v", u.uid, err)
	}
}

// line reads the agent's next line; io.EOF once it hung up.
func (u *user) line() ([]byte, error) {
	_ = u.out.SetReadDeadline(time.Now().Add(waitLong))
	return u.r.ReadBytes('\n')
}

func (u *user) response() ipc.Response {
	u.t.Helper()
	l, err := u.line()
	if err != nil {
		u.t.Fatalf("uid %d: read an answer: %v (got %q; helper: %s)", u.uid, err, l, u.stderr)
	}
	return decode(u.t, l)
}

func (u *user) do(req ipc.Request) ipc.Response {
	u.t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		u.t.Fatal(err)
	}
	u.send(append(b, '\n'))
	return u.response()
}

// ok fails the test unless req succeeds.
func (u *user) ok(req ipc.Request) ipc.Response {
	u.t.Helper()
	r := u.do(req)
	if !r.OK {
		u.t.Fatalf("uid %d: %s %+v: %+v", u.uid, req.Op, req, r.Error)
	}
	return r
}

// refused fails the test unless req is answered with code; it records the
// attempt for the report.
func (u *user) refused(what string, req ipc.Request, code string) *ipc.Error {
	u.t.Helper()
	r := u.do(req)
	if r.OK || r.Error == nil || r.Error.Code != code {
		u.t.Errorf("uid %d: %s: got ok=%v error=%+v, want %s", u.uid, what, r.OK, r.Error, code)
		return r.Error
	}
	u.t.Logf("uid %d: %s: %s (%s)", u.uid, what, r.Error.Code, r.Error.Message)
	return r.Error
}

// hungUp fails the test unless the agent closed the connection.
func (u *user) hungUp() {
	u.t.Helper()
	if l, err := u.line(); err == nil {
		u.t.Fatalf("uid %d: the agent should have hung up, sent %q", u.uid, l)
	}
}

// proc is a process the test started and holds by pidfd.
type proc struct {
	*proctree.Process
	cmd  *exec.Cmd
	done chan struct{} // closed once reaped (its pid may then be reused)
}

// startAs starts argv as uid; the cleanup kills and reaps it.
func startAs(t *testing.T, uid int, argv ...string) *proc {
	t.Helper()
	p, err := tryStart(uid, argv...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.kill)
	return p
}

func tryStart(uid int, argv ...string) (*proc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/"
	if uid != 0 {
		cmd.SysProcAttr = credential(uid)
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	h, err := proctree.Open(cmd.Process.Pid)
	if err != nil {
		_ = cmd.Process.Kill()
		<-p.done
		return nil, err
	}
	p.Process = h
	return p, nil
}

// kill SIGKILLs p and waits until it is reaped.
func (p *proc) kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
	p.Close()
}

// waitComm waits until p runs the program comm: a shell that ends with
// `exec comm` has then run every line before it (a trap, say).
func (p *proc) waitComm(t *testing.T, comm string) {
	t.Helper()
	deadline := newDeadline()
	for {
		if st, err := proctree.ReadStat(p.Pid()); err == nil && st.Comm == comm {
			return
		}
		deadline.check(t, fmt.Sprintf("pid %d to exec %s", p.Pid(), comm))
	}
}

// waitExit waits for p to exit (killed by the agent, say).
func (p *proc) waitExit(t *testing.T, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("pid %d did not exit (%s): %v", p.Pid(), why, err)
	}
}

// startWithPid starts argv as uid with exactly pid, which must be free:
// it sets /proc/sys/kernel/ns_last_pid to pid-1 and forks, again while
// other processes on this busy machine take the pid first.
func startWithPid(t *testing.T, uid, pid int, argv ...string) *proc {
	t.Helper()
	defer harness.LockPids()()
	const tries = 2000
	for range tries {
		if err := harness.SetLastPid(pid - 1); err != nil {
			t.Fatalf("steer the next pid (needs root in the initial pid namespace): %v", err)
		}
		p, err := tryStart(uid, argv...)
		if errors.Is(err, syscall.ESRCH) || errors.Is(err, os.ErrProcessDone) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.Pid() == pid {
			t.Cleanup(p.kill)
			return p
		}
		p.kill()
	}
	t.Fatalf("pid %d was never handed out again in %d tries", pid, tries)
	return nil
}

// stillAlive fails the test for every process that has exited.
func stillAlive(t *testing.T, what string, ps ...*proc) {
	t.Helper()
	for _, p := range ps {
		if p.Exited() {
			t.Errorf("%s: pid %d (%v) was killed", what, p.Pid(), p.cmd.Args)
		}
	}
}

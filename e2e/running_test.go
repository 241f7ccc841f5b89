package e2e

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
)

// running is a command the test started and talks to through its stdio.
type running struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // stdout, line by line; closed at EOF
	stderr *testutil.SyncBuffer
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

// start runs argv with ORPHAND_SOCKET pointing at the agent. The cleanup
// kills it (if still running) and waits for it.
func (a *agent) start(t testing.TB, argv ...string) *running {
	t.Helper()
	r := &running{cmd: exec.Command(argv[0], argv[1:]...), lines: make(chan string, 100), stderr: &testutil.SyncBuffer{}, exited: make(chan struct{})}
	r.cmd.Env = append(os.Environ(), ipc.SocketEnv+"="+a.socket)
	r.cmd.Stderr = r.stderr
	var err error
	if r.stdin, err = r.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(r.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
	}()
	go func() {
		<-readDone // Wait closes the pipe: read everything first
		r.err = r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		_ = r.stdin.Close()
		go func() {
			for range r.lines { // drain, so that the reader can end
			}
		}()
		<-r.exited
	})
	return r
}

// line returns the next line of stdout.
func (r *running) line(t testing.TB) string {
	t.Helper()
	select {
	case l, ok := <-r.lines:
		if !ok {
			<-r.exited
			t.Fatalf("%v ended (%v) before printing the expected line\nstderr: %s", r.cmd.Args, r.err, r.stderr)
		}
		return l
	case <-time.After(goneTimeout):
		t.Fatalf("%v printed nothing for %v\nstderr: %s", r.cmd.Args, goneTimeout, r.stderr)
	}
	return ""
}

// expect returns the fields of the next line, which must start with word.
func (r *running) expect(t testing.TB, word string) []string {
	t.Helper()
	l := r.line(t)
	f := strings.Fields(l)
	if len(f) == 0 || f[0] != word {
		t.Fatalf("%v printed %q, want a line starting with %q\nstderr: %s", r.cmd.Args, l, word, r.stderr)
	}
	return f[1:]
}

// wait waits for the command to end and returns its shell-style status.
func (r *running) wait(t testing.TB) int {
	t.Helper()
	select {
	case <-r.exited:
	case <-time.After(goneTimeout):
		t.Fatalf("%v still runs after %v", r.cmd.Args, goneTimeout)
	}
	return exitCode(r.cmd.ProcessState)
}

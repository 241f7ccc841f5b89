package family

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// roleEnv makes the test binary act as one of the roles below instead of
// running tests: that is how tests get real child processes.
const roleEnv = "FAMILY_TEST_ROLE"

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role))
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if plain.dir != "" {
			_ = os.RemoveAll(plain.dir)
		}
	}))
}

// roles maps a role name to what a re-executed test binary does.
var roles = map[string]func() error{}

func runRole(role string) int {
	f := roles[role]
	if f == nil {
		fmt.Fprintf(os.Stderr, "unknown %s %q\n", roleEnv, role)
		return 2
	}
	if err := f(); err != nil {
		fmt.Fprintf(os.Stderr, "role %s: %v\n", role, err)
		return 1
	}
	return 0
}

// proc is a child process started by a test; Cleanup kills and reaps it.
type proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	exited chan struct{} // closed once cmd.Wait returned
	err    error         // cmd.Wait's result
}

// spawn re-executes the test binary in role, with m's connection info (if
// m is not nil) and env in its environment.
func spawn(t testing.TB, m *Master, role string, env ...string) *proc {
	t.Helper()
	return spawnBin(t, os.Args[0], m, role, env...)
}

// spawnBin is spawn with another build of the test binary.
func spawnBin(t testing.TB, bin string, m *Master, role string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "-test.run=^$")
	// The race detector sleeps a second at exit unless told not to.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), roleEnv+"="+role, "GORACE="+gorace)
	if m != nil {
		cmd.Env = append(cmd.Env, m.Env())
	}
	cmd.Env = append(cmd.Env, env...)
	return start(t, cmd)
}

// start runs cmd with pipes for stdin and stdout; stderr goes to the test log.
func start(t testing.TB, cmd *exec.Cmd) *proc {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	// An *os.File, so that exec starts no copying goroutine and the test
	// can read lines while the process runs.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = pw
	cmd.Stderr = testWriter{t}
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		t.Fatalf("starting %v: %v", cmd.Args, err)
	}
	p := &proc{cmd: cmd, stdin: stdin, stdout: bufio.NewReader(pr), exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		pr.Close()
	})
	return p
}

// Pid is the process's pid.
func (p *proc) Pid() int { return p.cmd.Process.Pid }

// Name is the process's default child name: its pid.
func (p *proc) Name() string { return strconv.Itoa(p.Pid()) }

// wait waits for the process to exit and fails the test unless it
// succeeded.
func (p *proc) wait(t testing.TB) {
	t.Helper()
	select {
	case <-p.exited:
		if p.err != nil {
			t.Fatalf("child %d: %v", p.Pid(), p.err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("child %d did not exit", p.Pid())
	}
}

// line reads one line the process wrote to stdout.
func (p *proc) line(t testing.TB) string {
	t.Helper()
	l, err := p.stdout.ReadString('\n')
	if err != nil {
		t.Fatalf("reading child %d's stdout: %v (got %q)", p.Pid(), err, l)
	}
	return strings.TrimSuffix(l, "\n")
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Logf("child stderr: %s", strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// testCtx is a context for one blocking call: long enough for a slow,
// shared machine, short enough that a hang fails rather than stalls CI.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newMaster makes a master whose socket lives in the test's temp dir.
func newMaster(t testing.TB, o Options) *Master {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

// must fails the test (or the role) on err.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

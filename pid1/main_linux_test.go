package pid1_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/proctree"
)

// bin holds the binaries under test: built once per test binary, by the
// first test that needs them (so that unit tests and fuzzing workers do not
// pay for it), in a directory TestMain removes.
var bin struct {
	once    sync.Once
	dir     string
	orphand string // `orphand`, for `orphand init`
	init    string // `orphand-init`
	helper  string // pid1/internal/testhelper
	err     error
}

func TestMain(m *testing.M) {
	// Children inherit ignored signals, and init passes an inherited
	// SIG_IGN on to CMD instead of catching the signal (as tini does): run
	// under nohup, every test that sends init SIGHUP would fail. The Go
	// runtime keeps only SIGHUP and SIGINT ignored from the start; caught
	// instead (and dropped, as before), they reach children as SIG_DFL. A
	// test that wants them ignored says so itself (inherit_linux_test.go).
	for _, sig := range []os.Signal{syscall.SIGHUP, syscall.SIGINT} {
		if signal.Ignored(sig) {
			signal.Notify(make(chan os.Signal, 1), sig)
		}
	}
	code := m.Run()
	if bin.dir != "" {
		os.RemoveAll(bin.dir)
	}
	os.Exit(code)
}

func buildBinaries() {
	bin.dir, bin.err = os.MkdirTemp("", "orphand-pid1-test-")
	if bin.err != nil {
		return
	}
	bin.orphand = filepath.Join(bin.dir, "orphand")
	bin.init = filepath.Join(bin.dir, "orphand-init")
	bin.helper = filepath.Join(bin.dir, "testhelper")
	for _, b := range []struct{ out, pkg string }{
		{bin.orphand, "cmd/orphand"},
		{bin.init, "cmd/orphand-init"},
		{bin.helper, "pid1/internal/testhelper"},
	} {
		if bin.err = goBuild(b.out, "github.com/orphand/orphand/"+b.pkg); bin.err != nil {
			return
		}
	}
}

// initBinary is one way to run the init: `orphand init` (the agent's
// binary) or `orphand-init` (its own).
type initBinary struct {
	name string
	path string
	pre  []string // the arguments before init's own
}

// initBinaries returns both; tests of the command line run each.
func initBinaries(t *testing.T) []initBinary {
	t.Helper()
	needBinaries(t)
	return []initBinary{{"orphand init", bin.orphand, []string{"init"}}, {"orphand-init", bin.init, nil}}
}

// spec is a spec that runs this binary with args.
func (b initBinary) spec(args ...string) spec {
	return spec{binary: b.path, args: append(append([]string{}, b.pre...), args...)}
}

// goBuild builds a static binary with the flags of the release build (no
// -race: the binary under test is the product).
func goBuild(out, pkg string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the tests build orphand and need go on $PATH: %w", err)
	}
	cmd := exec.Command(gobin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// needBinaries skips unless root (everything here needs it) and returns
// after checking that the build worked.
func needBinaries(t testing.TB) {
	t.Helper()
	testutil.RequireRoot(t)
	bin.once.Do(buildBinaries)
	if bin.err != nil {
		t.Fatal(bin.err)
	}
}

// testCgroup is a cgroup made for one test, so that everything the test
// starts can be found and killed at its end, pass or fail.
type testCgroup struct {
	fs  *cgroup.FS
	rel string
}

func newTestCgroup(t testing.TB) *testCgroup {
	t.Helper()
	m, err := cgroup.Discover()
	if err != nil {
		testutil.Skipf(t, "no cgroup2 mounted: %v", err)
	}
	fs, err := cgroup.OpenFS(m, cgroup.Options{})
	if err != nil {
		t.Fatalf("open cgroup2: %v", err)
	}
	cg := &testCgroup{fs: fs, rel: "/orphand-test-pid1-" + testutil.RandHex(4)}
	if err := fs.Mkdir(cg.rel); err != nil {
		fs.Close()
		t.Fatalf("create test cgroup: %v", err)
	}
	fs.SetFeatures(fs.HasFile(cg.rel, "cgroup.kill"), fs.HasFile(cg.rel, "cgroup.freeze"))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := fs.Kill(ctx, cg.rel, cgroup.KillOptions{}); err != nil {
			t.Errorf("cleanup: kill test cgroup: %v", err)
		}
		if err := fs.Remove(ctx, cg.rel); err != nil {
			t.Errorf("cleanup: remove test cgroup: %v", err)
		}
		fs.Close()
	})
	return cg
}

// procs lists the live processes in the test cgroup and below.
func (cg *testCgroup) procs(t *testing.T) []int {
	t.Helper()
	pids, err := cg.fs.Procs(cg.rel, true)
	if err != nil {
		t.Fatalf("list test cgroup: %v", err)
	}
	return pids
}

// output is a child's stdout or stderr, written straight to a file (a pipe
// would keep exec.Cmd.Wait waiting for every process that inherited it).
type output struct{ path string }

func newOutput(t *testing.T, name string) (*output, *os.File) {
	t.Helper()
	o := &output{path: filepath.Join(t.TempDir(), name)}
	f, err := os.Create(o.path)
	if err != nil {
		t.Fatal(err)
	}
	return o, f
}

func (o *output) String() string {
	b, _ := os.ReadFile(o.path)
	return string(b)
}

// run is one `orphand init` (or a wrapper around it) started by a test.
type run struct {
	t       *testing.T
	cg      *testCgroup
	cmd     *exec.Cmd
	stdout  *output
	stderr  *output
	stdin   io.WriteCloser
	pidns   bool
	done    chan struct{}
	waitErr error
}

// spec says how to start a run.
type spec struct {
	binary string     // the program under test; bin.orphand if ""
	args   []string   // after the binary: "init", flags, "--", CMD…
	pidns  bool       // as PID 1 of a new pid namespace (unshare --pid --fork --mount-proc)
	wrap   []string   // programs to run the whole command line under
	shell  string     // a sh script run right before orphand, which it exec's as "$0" "$@"
	extra  []*os.File // files passed as fd 3, 4, …
	env    []string   // added to the environment
	dir    string     // the working directory
	cg     *testCgroup
}

// start starts `orphand` as sp says, inside a fresh test cgroup.
func start(t *testing.T, sp spec) *run {
	t.Helper()
	needBinaries(t)
	if sp.cg == nil {
		sp.cg = newTestCgroup(t)
	}
	if sp.binary == "" {
		sp.binary = bin.orphand
	}
	argv := append([]string{sp.binary}, sp.args...)
	if sp.shell != "" {
		argv = append([]string{"sh", "-c", sp.shell}, argv...)
	}
	if sp.pidns {
		unshare := testutil.RequireCommand(t, "unshare")
		argv = append([]string{unshare, "--pid", "--fork", "--mount-proc", "--kill-child"}, argv...)
	}
	argv = append(append([]string{}, sp.wrap...), argv...)
	dir, err := sp.cg.fs.OpenDir(sp.cg.rel)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	r := &run{t: t, cg: sp.cg, pidns: sp.pidns, done: make(chan struct{})}
	r.cmd = exec.Command(argv[0], argv[1:]...)
	r.cmd.Env = append(os.Environ(), sp.env...)
	r.cmd.Dir = sp.dir
	var outf, errf *os.File
	r.stdout, outf = newOutput(t, "stdout")
	r.stderr, errf = newOutput(t, "stderr")
	defer outf.Close()
	defer errf.Close()
	r.cmd.Stdout, r.cmd.Stderr = outf, errf
	r.cmd.ExtraFiles = sp.extra
	r.cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	if r.stdin, err = r.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start %q: %v", argv, err)
	}
	go func() {
		r.waitErr = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		r.stdin.Close()
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Kill()
			<-r.done
		}
		if t.Failed() {
			t.Logf("stdout of %q:\n%s", argv, r.stdout.String())
			t.Logf("stderr of %q:\n%s", argv, r.stderr.String())
		}
	})
	return r
}

// initPid is the host pid of `orphand init`: the child of unshare in a pid
// namespace, else the started process itself (or what a wrapper exec'ed).
func (r *run) initPid() int {
	r.t.Helper()
	if !r.pidns {
		return r.cmd.Process.Pid
	}
	var kids []int
	waitFor(r.t, "unshare's child", func() bool {
		kids, _ = proctree.Descendants(r.cmd.Process.Pid)
		return len(kids) > 0
	})
	return kids[0]
}

// exitCode waits for the run to end and returns its exit code (128+N for
// death by signal N, as a shell shows it).
func (r *run) exitCode() int {
	r.t.Helper()
	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
		r.t.Fatalf("orphand init did not exit within 60 s\nstdout: %s\nstderr: %s", r.stdout.String(), r.stderr.String())
	}
	var ee *exec.ExitError
	switch {
	case r.waitErr == nil:
		return 0
	case errors.As(r.waitErr, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	r.t.Fatalf("wait: %v", r.waitErr)
	return -1
}

// expectExit checks the exit code.
func (r *run) expectExit(want int) {
	r.t.Helper()
	if got := r.exitCode(); got != want {
		r.t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", got, want, r.stdout.String(), r.stderr.String())
	}
}

// waitOutput waits until stdout has a line starting with prefix and returns
// the rest of that line.
func (r *run) waitOutput(prefix string) string {
	r.t.Helper()
	var rest string
	find := func() bool {
		for line := range strings.Lines(r.stdout.String()) {
			if after, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), prefix); ok && strings.HasSuffix(line, "\n") {
				rest = after
				return true
			}
		}
		return false
	}
	waitFor(r.t, fmt.Sprintf("output %q", prefix), func() bool {
		if find() {
			return true
		}
		select {
		case <-r.done:
			// The line may have been written between the look above and
			// the exit: look once more before failing.
			if find() {
				return true
			}
			r.t.Fatalf("exited before printing %q\nstdout: %s\nstderr: %s", prefix, r.stdout.String(), r.stderr.String())
		default:
		}
		return false
	})
	return rest
}

// waitPid is waitOutput for a line "prefix<pid>".
func (r *run) waitPid(prefix string) int {
	r.t.Helper()
	s := r.waitOutput(prefix)
	pid, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		r.t.Fatalf("line %q%s: not a pid", prefix, s)
	}
	return pid
}

// release lets a CMD that waits on its stdin go on.
func (r *run) release() {
	r.t.Helper()
	if _, err := io.WriteString(r.stdin, "go\n"); err != nil {
		r.t.Fatalf("release CMD: %v", err)
	}
}

func (r *run) signal(sig syscall.Signal) {
	r.t.Helper()
	if err := syscall.Kill(r.initPid(), sig); err != nil {
		r.t.Fatalf("signal init: %v", err)
	}
}

// waitFor polls cond until it holds, or fails the test after 30 s. It is a
// deadline for a test that would otherwise hang, not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hostPid translates a pid as seen inside init's pid namespace to the host
// pid, by NSpid in /proc/<pid>/status of the processes in the test cgroup.
func (r *run) hostPid(nsPid int) int {
	r.t.Helper()
	if !r.pidns {
		return nsPid
	}
	for _, pid := range r.cg.procs(r.t) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			if f, ok := strings.CutPrefix(line, "NSpid:"); ok {
				ids := strings.Fields(f)
				if len(ids) > 1 && ids[len(ids)-1] == strconv.Itoa(nsPid) {
					return pid
				}
			}
		}
	}
	r.t.Fatalf("no process with pid %d in init's namespace", nsPid)
	return 0
}

// openPid holds a process by pidfd for the rest of the test.
func openPid(t *testing.T, pid int) *proctree.Process {
	t.Helper()
	p, err := proctree.Open(pid)
	if err != nil {
		t.Fatalf("open pid %d: %v", pid, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

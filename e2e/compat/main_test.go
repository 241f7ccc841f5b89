package compat

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/orphand/orphand/e2e/internal/harness"
	"github.com/orphand/orphand/internal/testutil"
)

// markEnv carries a value unique to this run into every process the tests
// start; a leftover is found by it after the suite.
const markEnv = "ORPHAND_COMPAT_MARK"

// run is this run of the suite: its mark, the prefix of its cgroup roots,
// and the sweep for leftovers after the tests.
var run *harness.Run

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	run = harness.NewRun("compat", markEnv, "orphand-compat-")
	os.Exit(run.Main(m))
}

// programs are what the tests run, in a directory every uid may read.
type programs struct {
	orphand   string // the agent
	forkwait  string // orphand-forkwait.so, from testdata/forkwait.c
	spawner   string // a parent that forks (testdata/spawner.c)
	oldpoll   string // the original daemon's mechanism (testdata/oldpoll.c)
	forkbench string // fork() and waitpid() timed (testdata/forkbench.c)
	client    string // the Perl client (testdata/client.pl)
	helper    string // this test binary, for other uids (flood)
}

var buildOnce = sync.OnceValues(build)

// progs builds the programs on first use, once per run. It skips (or, in
// strict mode, fails) without root, cc or perl.
func progs(t testing.TB) programs {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "cc")
	testutil.RequireCommand(t, "perl")
	p, err := buildOnce()
	if err != nil {
		t.Fatalf("compat: %v", err)
	}
	return p
}

func build() (programs, error) {
	dir, err := run.TempDir("orphand-compat-bin-")
	if err != nil {
		return programs{}, err
	}
	p := programs{
		orphand:  filepath.Join(dir, "orphand"),
		forkwait: filepath.Join(dir, "orphand-forkwait.so"), spawner: filepath.Join(dir, "spawner"),
		oldpoll: filepath.Join(dir, "oldpoll"), forkbench: filepath.Join(dir, "forkbench"),
		client: filepath.Join(dir, "client.pl"), helper: filepath.Join(dir, "helper"),
	}
	if err := harness.GoBuild(harness.Build{Out: p.orphand, Race: raceEnabled, Pkgs: []string{harness.Orphand}}); err != nil {
		return programs{}, err
	}
	for _, c := range []struct {
		out, src string
		flags    []string
	}{
		{p.forkwait, "forkwait.c", []string{"-shared", "-fPIC"}},
		{p.spawner, "spawner.c", nil},
		{p.oldpoll, "oldpoll.c", nil},
		{p.forkbench, "forkbench.c", nil},
	} {
		args := append([]string{"-Wall", "-Wextra", "-Werror", "-O2"}, c.flags...)
		args = append(args, "-o", c.out, filepath.Join("testdata", c.src), "-ldl")
		if out, err := exec.Command("cc", args...).CombinedOutput(); err != nil {
			return programs{}, fmt.Errorf("cc %s: %w\n%s", c.src, err, out)
		}
	}
	if err := harness.CopyFile(filepath.Join("testdata", "client.pl"), p.client, 0o755); err != nil {
		return programs{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return programs{}, err
	}
	if err := harness.CopyFile(self, p.helper, 0o755); err != nil {
		return programs{}, fmt.Errorf("copy the helper: %w", err)
	}
	return p, nil
}

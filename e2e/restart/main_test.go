package restart

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/orphand/orphand/e2e/internal/harness"
	"github.com/orphand/orphand/internal/nspawn"
)

const (
	// binEnv names a directory holding an orphand already built with
	// crash points: the container run gets it from the host.
	binEnv = "ORPHAND_RESTART_BIN"
	// markEnv is set, to a value unique to this run, in the environment of
	// every process the test starts; a leftover is found by it.
	markEnv = "ORPHAND_RESTART_MARK"
	// crashTag builds the agent with its crash points.
	crashTag = "orphand_crashpoints"
)

// run is this run of the test: its mark, the prefix of its cgroup roots,
// and the sweep for leftovers after the tests.
var run *harness.Run

func TestMain(m *testing.M) {
	run = harness.NewRun("restart", markEnv, "orphand-restart-")
	os.Exit(run.Main(m))
}

// orphandBin returns the orphand under test, built once per run with its
// crash points (and with -race when this test binary has it, on the host).
func orphandBin(t testing.TB) string {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatalf("build orphand: %v", err)
	}
	return bin
}

var buildOnce = sync.OnceValues(func() (string, error) {
	if dir := os.Getenv(binEnv); dir != "" {
		return installGuest(dir)
	}
	dir, err := run.TempDir("orphand-restart-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "orphand")
	return bin, goBuild(bin, raceEnabled)
})

// goBuild builds cmd/orphand with crash points into out.
func goBuild(out string, race bool) error {
	return harness.GoBuild(harness.Build{Out: out, Race: race, Tags: []string{crashTag}, Pkgs: []string{harness.Orphand}})
}

// guestBin is where the container run installs the agent (the share may
// be mounted noexec); the test's units start it from there.
const guestBin = "/usr/local/lib/orphand-restart/orphand"

func installGuest(dir string) (string, error) {
	if !nspawn.Inside() {
		return filepath.Join(dir, "orphand"), nil
	}
	if err := os.MkdirAll(filepath.Dir(guestBin), 0o755); err != nil {
		return "", err
	}
	return guestBin, harness.CopyFile(filepath.Join(dir, "orphand"), guestBin, 0o755)
}

package e2e

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/orphand/orphand/e2e/internal/harness"
	"github.com/orphand/orphand/internal/nspawn"
)

const (
	// binEnv names a directory with the binaries and examples already in
	// place (orphand, orphanctl, goclient, client.pl, client.py): the
	// container run gets them from the host, having no Go toolchain.
	binEnv = "ORPHAND_E2E_BIN"
	// markEnv is set, with a value unique to this run, in the environment of
	// every process the suite starts; their descendants inherit it, so a
	// leftover is found by its environment after the suite.
	markEnv = "ORPHAND_E2E_MARK"
)

// run is this run of the suite: its mark, the prefix of its cgroups, and
// the sweep for leftovers after the tests.
var run *harness.Run

func TestMain(m *testing.M) {
	run = harness.NewRun("e2e", markEnv, "orphand-e2e-")
	run.AtExit(stopBenchReaper)
	os.Exit(run.Main(m))
}

// binaries are the programs under test, built once per run.
type binaries struct {
	dir       string
	orphand   string
	orphanctl string
	goclient  string
	clientPL  string
	clientPY  string
}

// buildOnce builds the binaries on first use, once per run.
var buildOnce = sync.OnceValues(build)

// bins returns the binaries under test, building them on first use: static
// (CGO_ENABLED=0) so that they also run in the container, or with -race
// when this test binary has it (the agent's races are found end to end).
func bins(t testing.TB) binaries {
	t.Helper()
	b, err := buildOnce()
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	return b
}

func build() (binaries, error) {
	if dir := os.Getenv(binEnv); dir != "" {
		if nspawn.Inside() {
			return installGuestBins(dir)
		}
		return binariesIn(dir), nil
	}
	dir, err := run.TempDir("orphand-e2e-bin-") // other uids run orphanctl too
	if err != nil {
		return binaries{}, err
	}
	if err := buildInto(dir, raceEnabled); err != nil {
		return binaries{}, err
	}
	return binariesIn(dir), nil
}

// examples are the example clients in other languages the suite runs,
// copied next to the binaries.
var examples = []string{"client.pl", "client.py"}

// buildInto builds the three Go programs into dir and copies the examples
// there.
func buildInto(dir string, race bool) error {
	pkgs := []string{harness.Orphand, harness.Orphanctl, harness.GoClient}
	if err := harness.GoBuild(harness.Build{Out: dir + "/", Race: race, Pkgs: pkgs}); err != nil {
		return err
	}
	for _, ex := range examples {
		if err := harness.CopyFile(filepath.Join("..", "examples", ex), filepath.Join(dir, ex), 0o755); err != nil {
			return err
		}
	}
	return nil
}

func binariesIn(dir string) binaries {
	return binaries{
		dir:       dir,
		orphand:   filepath.Join(dir, "orphand"),
		orphanctl: filepath.Join(dir, "orphanctl"),
		goclient:  filepath.Join(dir, "goclient"),
		clientPL:  filepath.Join(dir, "client.pl"),
		clientPY:  filepath.Join(dir, "client.py"),
	}
}

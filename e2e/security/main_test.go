package security

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/orphand/orphand/e2e/internal/harness"
)

// markEnv carries a value unique to this run into every process the tests
// start; a leftover is found by it after the suite.
const markEnv = "ORPHAND_SECURITY_MARK"

// run is this run of the suite: its mark, the prefix of its cgroup roots
// (a run cleans up only its own, never those of a run beside it), and the
// sweep for leftovers after the tests.
var run *harness.Run

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	run = harness.NewRun("security", markEnv, "orphand-security-")
	os.Exit(run.Main(m))
}

// bins are the programs the suite runs: orphand, and a copy of this test
// binary that other uids can execute (the helper client). orphand has the
// race detector when this binary has it; plainOrphand never has it (the
// race detector's shadow memory would blur resource figures).
type bins struct {
	orphand, plainOrphand, helper string
}

// buildOnce builds the programs on first use, once per run.
var buildOnce = sync.OnceValues(build)

func binaries(t testing.TB) bins {
	t.Helper()
	b, err := buildOnce()
	if err != nil {
		t.Fatalf("security: %v", err)
	}
	return b
}

// build puts orphand (with -race when this binary has it) and the helper
// into a directory every uid may read.
func build() (bins, error) {
	dir, err := run.TempDir("orphand-security-bin-")
	if err != nil {
		return bins{}, err
	}
	b := bins{orphand: filepath.Join(dir, "orphand"), plainOrphand: filepath.Join(dir, "orphand"), helper: filepath.Join(dir, "helper")}
	if raceEnabled {
		b.plainOrphand = filepath.Join(dir, "orphand-norace")
		if err := goBuild(b.orphand, true); err != nil {
			return bins{}, err
		}
	}
	if err := goBuild(b.plainOrphand, false); err != nil {
		return bins{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return bins{}, err
	}
	if err := harness.CopyFile(self, b.helper, 0o755); err != nil {
		return bins{}, fmt.Errorf("copy the helper: %w", err)
	}
	return b, nil
}

func goBuild(out string, race bool) error {
	return harness.GoBuild(harness.Build{Out: out, Race: race, Pkgs: []string{harness.Orphand}})
}

package user

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/orphand/orphand/e2e/internal/harness"
	"github.com/orphand/orphand/internal/nspawn"
)

// markEnv carries a value unique to this run into every process the tests
// start; a leftover is found by it after the suite.
const markEnv = "ORPHAND_USER_MARK"

// run is this run of the suite: its mark, the prefix of its cgroups, and
// the sweep for leftovers after the tests.
var run *harness.Run

func TestMain(m *testing.M) {
	run = harness.NewRun("user", markEnv, "orphand-user-")
	os.Exit(run.Main(m))
}

// bins are the programs under test, in a directory every uid may read.
type bins struct {
	dir, orphand, orphanctl, goclient, clientPL, clientPY string
}

var buildOnce = sync.OnceValues(build)

func binaries(t testing.TB) bins {
	t.Helper()
	b, err := buildOnce()
	if err != nil {
		t.Fatalf("user: %v", err)
	}
	return b
}

// build builds the Go programs (with -race when this binary has it; static
// inside the container, which has no Go) and copies the example clients.
func build() (bins, error) {
	if nspawn.Inside() {
		return bins{}, errors.New("inside the container the share's programs are installed instead (installGuest)")
	}
	dir, err := run.TempDir("orphand-user-bin-")
	if err != nil {
		return bins{}, err
	}
	if err := buildInto(dir, raceEnabled); err != nil {
		return bins{}, err
	}
	return binsIn(dir), nil
}

func buildInto(dir string, race bool) error {
	pkgs := []string{harness.Orphand, harness.Orphanctl, harness.GoClient}
	if err := harness.GoBuild(harness.Build{Out: dir + "/", Race: race, Pkgs: pkgs}); err != nil {
		return err
	}
	for _, ex := range []string{"client.pl", "client.py"} {
		if err := harness.CopyFile(filepath.Join("..", "..", "examples", ex), filepath.Join(dir, ex), 0o755); err != nil {
			return err
		}
	}
	return nil
}

func binsIn(dir string) bins {
	return bins{
		dir:       dir,
		orphand:   filepath.Join(dir, "orphand"),
		orphanctl: filepath.Join(dir, "orphanctl"),
		goclient:  filepath.Join(dir, "goclient"),
		clientPL:  filepath.Join(dir, "client.pl"),
		clientPY:  filepath.Join(dir, "client.py"),
	}
}

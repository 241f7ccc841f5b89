package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/internal/nspawn"
	"github.com/orphand/orphand/proctree"
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
	// cgroupPrefix starts the name of every cgroup the suite makes; the
	// run's mark follows it (see runCgroupPrefix).
	cgroupPrefix = "orphand-e2e-"
)

// binaries are the programs under test, built once per run.
type binaries struct {
	dir       string
	orphand   string
	orphanctl string
	goclient  string
	clientPL  string
	clientPY  string
}

var (
	buildOnce sync.Once
	built     binaries
	buildErr  error
	// ownBinDir is removed after the suite when this run built it.
	ownBinDir string
)

// runCgroupPrefix starts the name of every cgroup this run makes: with the
// run's mark in it, the check for leftovers never touches the cgroups of
// another run of the suite on the same machine.
var runCgroupPrefix string

func TestMain(m *testing.M) {
	mark := randHex(8)
	os.Setenv(markEnv, mark)
	runCgroupPrefix = cgroupPrefix + mark + "-"
	code := m.Run()
	stopBenchReaper()
	if ownBinDir != "" {
		os.RemoveAll(ownBinDir)
	}
	if os.Geteuid() == 0 {
		if msg := leftovers(mark); msg != "" {
			fmt.Fprintf(os.Stderr, "e2e: the suite left things behind (now cleaned up):\n%s", msg)
			code = 1
		}
	}
	os.Exit(code)
}

// bins returns the binaries under test, building them on first use: static
// (CGO_ENABLED=0) so that they also run in the container, or with -race
// when this test binary has it (the agent's races are found end to end).
func bins(t testing.TB) binaries {
	t.Helper()
	buildOnce.Do(func() { built, buildErr = build() })
	if buildErr != nil {
		t.Fatalf("e2e: %v", buildErr)
	}
	return built
}

func build() (binaries, error) {
	if dir := os.Getenv(binEnv); dir != "" {
		if nspawn.Inside() {
			return installGuestBins(dir)
		}
		return binariesIn(dir), nil
	}
	dir, err := os.MkdirTemp("", "orphand-e2e-bin-")
	if err != nil {
		return binaries{}, err
	}
	ownBinDir = dir
	if err := os.Chmod(dir, 0o755); err != nil { // other uids run orphanctl too
		return binaries{}, err
	}
	if err := goBuild(dir, raceEnabled); err != nil {
		return binaries{}, err
	}
	for _, ex := range []string{"client.pl", "client.py"} {
		if err := copyFile(filepath.Join("..", "examples", ex), filepath.Join(dir, ex), 0o755); err != nil {
			return binaries{}, err
		}
	}
	return binariesIn(dir), nil
}

// goBuild builds the three Go programs into dir.
func goBuild(dir string, race bool) error {
	args := []string{"build", "-trimpath", "-o", dir + "/"}
	env := append(os.Environ(), "CGO_ENABLED=0")
	if race {
		args = append(args, "-race")
		env = append(os.Environ(), "CGO_ENABLED=1")
	}
	args = append(args, "../cmd/orphand", "../cmd/orphanctl", "../examples/goclient")
	cmd := exec.Command("go", args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
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

func copyFile(from, to string, mode os.FileMode) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, mode)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// leftovers finds, reports and removes what the suite left behind: live
// processes carrying this run's mark, and cgroups named with its prefix.
// (A run killed before this check leaves its cgroups behind, named after
// its mark; they are empty or hold that run's processes.)
func leftovers(mark string) string {
	var report strings.Builder
	want := []byte(markEnv + "=" + mark)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(env, want) {
			continue
		}
		p, err := proctree.Open(pid)
		if err != nil {
			continue // gone meanwhile
		}
		st, err := proctree.ReadStat(pid)
		if err == nil && !st.IsZombie() {
			fmt.Fprintf(&report, "  process %d (%s)\n", pid, st.Comm)
			_ = p.Signal(syscall.SIGKILL)
		}
		p.Close()
	}
	if m, err := cgroup.Discover(); err == nil {
		dirs, _ := filepath.Glob(filepath.Join(m.Path, runCgroupPrefix+"*"))
		for _, d := range dirs {
			fmt.Fprintf(&report, "  cgroup %s\n", d)
			removeCgroupTree(d)
		}
	}
	return report.String()
}

// removeCgroupTree kills everything in the cgroup at dir and removes it and
// its descendants, deepest first.
func removeCgroupTree(dir string) {
	_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		for range 100 { // EBUSY until the killed processes have left
			if err := syscall.Rmdir(dirs[i]); err == nil || os.IsNotExist(err) {
				break
			}
			sleepBriefly()
		}
	}
}

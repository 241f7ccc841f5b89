package restart

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
	// binEnv names a directory holding an orphand already built with
	// crash points: the container run gets it from the host.
	binEnv = "ORPHAND_RESTART_BIN"
	// markEnv is set, to a value unique to this run, in the environment of
	// every process the test starts; a leftover is found by it.
	markEnv = "ORPHAND_RESTART_MARK"
	// cgroupPrefix starts the name of every cgroup root the test makes,
	// followed by the run's mark.
	cgroupPrefix = "orphand-restart-"
	// crashTag builds the agent with its crash points.
	crashTag = "orphand_crashpoints"
)

func TestMain(m *testing.M) {
	if os.Getenv(markEnv) == "" {
		_ = os.Setenv(markEnv, randHex(8))
	}
	code := m.Run()
	if ownBinDir != "" {
		_ = os.RemoveAll(ownBinDir)
	}
	if os.Geteuid() == 0 {
		if msg := leftovers(os.Getenv(markEnv)); msg != "" {
			fmt.Fprintf(os.Stderr, "restart: the test left things behind (now cleaned up):\n%s", msg)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	ownBinDir string
)

// orphandBin returns the orphand under test, built once per run with its
// crash points (and with -race when this test binary has it, on the host).
func orphandBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if dir := os.Getenv(binEnv); dir != "" {
			builtBin, buildErr = installGuest(dir)
			return
		}
		ownBinDir, buildErr = os.MkdirTemp("", "orphand-restart-bin-")
		if buildErr == nil {
			builtBin = filepath.Join(ownBinDir, "orphand")
			buildErr = goBuild(builtBin, raceEnabled)
		}
	})
	if buildErr != nil {
		t.Fatalf("build orphand: %v", buildErr)
	}
	return builtBin
}

// goBuild builds cmd/orphand with crash points into out.
func goBuild(out string, race bool) error {
	args := []string{"build", "-trimpath", "-tags", crashTag, "-o", out}
	env := append(os.Environ(), "CGO_ENABLED=0")
	if race {
		args = append(args, "-race")
		env = append(os.Environ(), "CGO_ENABLED=1")
	}
	cmd := exec.Command("go", append(args, "../../cmd/orphand")...)
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// guestBin is where the container run installs the agent (the share may
// be mounted noexec); the test's units start it from there.
const guestBin = "/usr/local/lib/orphand-restart/orphand"

func installGuest(dir string) (string, error) {
	if !nspawn.Inside() {
		return filepath.Join(dir, "orphand"), nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "orphand"))
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(guestBin), 0o755); err != nil {
		return "", err
	}
	return guestBin, os.WriteFile(guestBin, b, 0o755)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// leftovers finds, reports and ends what the test left behind: live
// processes carrying this run's mark, and cgroups named with it (other
// runs, in parallel, have their own).
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
			continue
		}
		if st, err := proctree.ReadStat(pid); err == nil && !st.IsZombie() {
			cg, _ := os.ReadFile("/proc/" + e.Name() + "/cgroup")
			fmt.Fprintf(&report, "  process %d (%s), parent %d, session %d, cgroup %s\n", pid, st.Comm, st.PPid, st.Session, bytes.TrimSpace(bytes.ReplaceAll(cg, []byte("\n"), []byte(" "))))
			_ = p.Signal(syscall.SIGKILL)
		}
		p.Close()
	}
	if m, err := cgroup.Discover(); err == nil {
		dirs, _ := filepath.Glob(filepath.Join(m.Path, cgroupPrefix+mark+"-*")) // this run's only
		for _, d := range dirs {
			fmt.Fprintf(&report, "  cgroup %s\n", d)
			removeCgroupTree(d)
		}
	}
	return report.String()
}

// removeCgroupTree kills everything in the cgroup at dir and removes it
// and its descendants, deepest first.
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
		for range 200 { // EBUSY until the killed processes have left
			if err := syscall.Rmdir(dirs[i]); err == nil || os.IsNotExist(err) {
				break
			}
			sleepBriefly()
		}
	}
}

package security

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/proctree"
)

const (
	// markEnv carries a value unique to this run into every process the
	// tests start; a leftover is found by it after the suite.
	markEnv = "ORPHAND_SECURITY_MARK"
	// cgroupPrefix, then the run's mark, starts the name of every cgroup
	// root the suite makes: a run cleans up only its own, never those of
	// a run beside it.
	cgroupPrefix = "orphand-security-"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	mark := randHex(8)
	os.Setenv(markEnv, mark)
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if os.Geteuid() == 0 {
		if msg := leftovers(mark); msg != "" {
			fmt.Fprintf(os.Stderr, "security: the suite left things behind (now cleaned up):\n%s", msg)
			code = 1
		}
	}
	os.Exit(code)
}

// bins are the programs the suite runs: orphand, and a copy of this test
// binary that other uids can execute (the helper client). orphand has the
// race detector when this binary has it; plainOrphand never has it (the
// race detector's shadow memory would blur resource figures).
type bins struct {
	orphand, plainOrphand, helper string
}

var (
	buildOnce sync.Once
	built     bins
	buildErr  error
	binDir    string // removed after the suite
)

func binaries(t testing.TB) bins {
	t.Helper()
	buildOnce.Do(func() { built, buildErr = build() })
	if buildErr != nil {
		t.Fatalf("security: %v", buildErr)
	}
	return built
}

// build puts orphand (with -race when this binary has it) and the helper
// into a directory every uid may read.
func build() (bins, error) {
	dir, err := os.MkdirTemp("", "orphand-security-bin-")
	if err != nil {
		return bins{}, err
	}
	binDir = dir
	if err := os.Chmod(dir, 0o755); err != nil {
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
	if err := copyFile(self, b.helper); err != nil {
		return bins{}, fmt.Errorf("copy the helper: %w", err)
	}
	return b, nil
}

func goBuild(out string, race bool) error {
	args := []string{"build", "-trimpath", "-o", out}
	env := append(os.Environ(), "CGO_ENABLED=0")
	if race {
		args = append(args, "-race")
		env = append(os.Environ(), "CGO_ENABLED=1")
	}
	cmd := exec.Command("go", append(args, "../../cmd/orphand")...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %w\n%s", args, err, out)
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// leftovers reports and removes what the suite left: live processes with
// this run's mark, and cgroups named with its prefix.
func leftovers(mark string) string {
	var report bytes.Buffer
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
			fmt.Fprintf(&report, "  process %d (%s)\n", pid, st.Comm)
			_ = p.Signal(syscall.SIGKILL)
		}
		p.Close()
	}
	if m, err := cgroup.Discover(); err == nil {
		dirs, _ := filepath.Glob(filepath.Join(m.Path, cgroupPrefix+mark+"-*"))
		for _, d := range dirs {
			fmt.Fprintf(&report, "  cgroup %s\n", d)
			removeCgroupTree(d)
		}
	}
	return report.String()
}

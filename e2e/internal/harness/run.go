package harness

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/proctree"
)

// Run is one run of an end-to-end suite. Every process the suite starts
// carries the run's mark in its environment (its descendants inherit it),
// and every cgroup it makes under the cgroup2 mount is named with
// CgroupPrefix, so that after the suite Main can find what was left
// behind: this run's only, never that of a run beside it.
type Run struct {
	name    string // starts the report of leftovers ("e2e")
	markEnv string // the environment variable that carries the mark
	mark    string // unique to the run
	// CgroupPrefix starts the name of every cgroup the run makes: the
	// suite's base name, the mark and a dash.
	CgroupPrefix string

	mu     sync.Mutex
	atExit []func()
}

// NewRun starts a run and puts its mark in this process's environment. The
// mark is the one the environment already has, if any (a run started by
// another keeps its mark), else a fresh one. cgroupBase names the suite
// ("orphand-e2e-").
func NewRun(name, markEnv, cgroupBase string) *Run {
	mark := os.Getenv(markEnv)
	if mark == "" {
		mark = testutil.RandHex(8)
		_ = os.Setenv(markEnv, mark)
	}
	return &Run{name: name, markEnv: markEnv, mark: mark, CgroupPrefix: cgroupBase + mark + "-"}
}

// AtExit adds f to what Main runs after the tests, before the sweep (last
// added, first run).
func (r *Run) AtExit(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.atExit = append(r.atExit, f)
}

// Main runs the tests, then the AtExit functions, then, as root, the sweep
// for leftovers. It returns the exit code for os.Exit: 1 if the tests
// failed or left anything behind.
func (r *Run) Main(m *testing.M) int {
	code := m.Run()
	r.mu.Lock()
	fs := r.atExit
	r.atExit = nil
	r.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	if os.Geteuid() == 0 {
		if msg := r.leftovers(); msg != "" {
			fmt.Fprintf(os.Stderr, "%s: the suite left things behind (now cleaned up):\n%s", r.name, msg)
			code = 1
		}
	}
	return code
}

// TempDir makes a directory every uid may enter and read (other uids run
// the binaries built into it); Main removes it after the tests.
func (r *Run) TempDir(pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", err
	}
	r.AtExit(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// leftovers finds what the run left behind — live processes carrying its
// mark, and cgroups directly under the cgroup2 mount named with its
// prefix — kills and removes it, and describes it ("" when nothing). A run
// killed before its sweep leaves its cgroups behind, named after its mark:
// they hold that run's processes only.
func (r *Run) leftovers() string {
	var report strings.Builder
	want := []byte(r.markEnv + "=" + r.mark)
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
		if st, err := proctree.ReadStat(pid); err == nil && !st.IsZombie() {
			cg, _ := os.ReadFile("/proc/" + e.Name() + "/cgroup")
			fmt.Fprintf(&report, "  process %d (%s), parent %d, session %d, cgroup %s\n",
				pid, st.Comm, st.PPid, st.Session, bytes.TrimSpace(bytes.ReplaceAll(cg, []byte("\n"), []byte(" "))))
			_ = p.Signal(syscall.SIGKILL)
		}
		p.Close()
	}
	if m, err := cgroup.Discover(); err == nil {
		dirs, _ := filepath.Glob(filepath.Join(m.Path, r.CgroupPrefix+"*"))
		for _, d := range dirs {
			fmt.Fprintf(&report, "  cgroup %s\n", d)
			_ = testutil.RemoveCgroupTree(d)
		}
	}
	return report.String()
}

package pid1_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/proctree"
)

// The benchmarks (bench_init_linux_test.go) run `orphand init` side by side
// with tini, dumb-init and catatonit (the Debian packages) and with Go
// programs that show the floor under any init written in Go, interleaved:
// every round runs each contender once, in an order that rotates from round
// to round, so that the noise of a shared machine falls on all of them
// alike. Each reports the median of its rounds per contender, and the
// ratios the targets are about. Method and results:
// docs/benchmarks/init.md.

// contender is one init under comparison.
type contender struct {
	name string
	ns   []string // argv before CMD as PID 1 of a pid namespace
	host []string // argv before CMD outside one (subreaper where it can be)
}

// floor holds the Go floor programs (pid1/internal/gofloor), built by the
// first benchmark that needs them.
var floor struct {
	once                 sync.Once
	noop, spawn, signals string
	err                  error
}

func needFloors(b *testing.B) {
	b.Helper()
	needBinaries(b)
	floor.once.Do(func() {
		for _, f := range []struct {
			out *string
			pkg string
		}{{&floor.noop, "noop"}, {&floor.spawn, "spawn"}, {&floor.signals, "signals"}} {
			*f.out = filepath.Join(bin.dir, "gofloor-"+f.pkg)
			if floor.err = goBuild(*f.out, "github.com/orphand/orphand/pid1/internal/gofloor/"+f.pkg); floor.err != nil {
				return
			}
		}
	})
	if floor.err != nil {
		b.Fatal(floor.err)
	}
}

// contenders returns the inits the issue compares — orphand-init (the
// init's own binary), orphand (`orphand init`, the agent's binary), tini,
// dumb-init, catatonit — plus the variants and floors named in extra:
//
//   - go-noop: a Go program that exits at once (it does not run CMD): the
//     Go runtime's own start and exit;
//   - go-spawn: a Go program that runs CMD and waits for it, nothing else:
//     the floor of any init in Go (the start-up target is measured
//     against it);
//   - go-signals: go-spawn plus os/signal for every signal orphand init
//     catches, forwarding and reaping on SIGCHLD: the floor of a Go init
//     that forwards signals;
//   - orphand-init-cgroup: orphand-init --cgroup (CMD in a cgroup of its
//     own, which only a non-reaper gets by default);
//   - orphand-init-procs1: orphand-init with GOMAXPROCS=1 (set by env(1),
//     which then exec's it in place);
//   - pid1.Run-sigchld: pid1.Run reaping on SIGCHLD through os/signal
//     instead of on its waiter goroutine (the fallback, forced);
//   - exec-reaper: proctree.StartReaper next to os/exec, the other way to
//     build an init in Go.
func contenders(b *testing.B, extra ...string) []contender {
	needBinaries(b)
	tini := testutil.RequireCommand(b, "tini")
	dumb := testutil.RequireCommand(b, "dumb-init")
	cata := testutil.RequireCommand(b, "catatonit")
	cs := []contender{
		{"orphand-init", []string{bin.init, "--"}, []string{bin.init, "--"}},
		{"orphand", []string{bin.orphand, "init", "--"}, []string{bin.orphand, "init", "--"}},
		{"tini", []string{tini, "--"}, []string{tini, "-s", "--"}},
		{"dumb-init", []string{dumb, "--"}, []string{dumb, "--"}},
		{"catatonit", []string{cata, "--"}, []string{cata, "--"}},
	}
	for _, name := range extra {
		var argv []string
		switch name {
		case "go-noop", "go-spawn", "go-signals":
			needFloors(b)
			argv = []string{map[string]string{"go-noop": floor.noop, "go-spawn": floor.spawn, "go-signals": floor.signals}[name]}
		case "orphand-init-cgroup":
			argv = []string{bin.init, "--cgroup", "--"}
		case "orphand-init-procs1":
			argv = []string{"/usr/bin/env", "GOMAXPROCS=1", bin.init, "--"}
		case "pid1.Run-sigchld":
			argv = []string{bin.helper, "init-sigchld"}
		case "exec-reaper":
			argv = []string{bin.helper, "exec-reaper"}
		default:
			b.Fatalf("no contender %q", name)
		}
		cs = append(cs, contender{name, argv, argv})
	}
	return cs
}

// rotated returns cs starting at round % len(cs).
func rotated(cs []contender, round int) []contender {
	k := round % len(cs)
	return append(slices.Clone(cs[k:]), cs[:k]...)
}

// samples collects one metric per contender.
type samples map[string][]float64

func (s samples) median(name string) float64 {
	v := slices.Clone(s[name])
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// report reports each contender's median as "<name>-<unit>", and the
// ratios of orphand-init and orphand to each of refs as
// "<name>/<ref>-<unit>".
func (s samples) report(b *testing.B, cs []contender, unit string, refs ...string) {
	for _, c := range cs {
		b.ReportMetric(s.median(c.name), c.name+"-"+unit)
	}
	for _, ref := range refs {
		if r := s.median(ref); r != 0 {
			for _, name := range []string{"orphand-init", "orphand"} {
				b.ReportMetric(s.median(name)/r, name+"/"+ref+"-"+unit)
			}
		}
	}
	var line []string
	for _, c := range cs {
		line = append(line, fmt.Sprintf("%s %.4g", c.name, s.median(c.name)))
	}
	b.Logf("%s (median of %d): %s", unit, len(s[cs[0].name]), strings.Join(line, ", "))
}

// machineLoad reports the load average over the benchmark (read at its
// start and end): the machine is shared, and the figures are only as quiet
// as it was.
func machineLoad(b *testing.B) {
	b.Helper()
	start := loadavg()
	b.Cleanup(func() {
		end := loadavg()
		b.ReportMetric(start, "load1-start")
		b.ReportMetric(end, "load1-end")
		b.Logf("load average (1 min): %.2f at the start, %.2f at the end; %d CPUs", start, end, cpus())
	})
}

func loadavg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func cpus() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return -1
	}
	return set.Count()
}

// writeScript writes a workload to a file and returns its path.
func writeScript(b *testing.B, name, text string) string {
	p := filepath.Join(b.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// inNamespace runs argv as PID 1 of a new pid namespace (in the benchmark's
// cgroup) and returns its output.
func inNamespace(b *testing.B, cg *testCgroup, argv ...string) string {
	unshare := testutil.RequireCommand(b, "unshare")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := cg.fs.OpenDir(cg.rel)
	if err != nil {
		b.Fatal(err)
	}
	defer dir.Close()
	cmd := exec.CommandContext(ctx, unshare, append([]string{"--pid", "--fork", "--mount-proc", "--kill-child"}, argv...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("%q: %v\n%s", argv, err, out)
	}
	return string(out)
}

// field returns the number after key in out ("key 123").
func field(b *testing.B, out, key string) float64 {
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == key {
				if v, err := strconv.ParseFloat(f[i+1], 64); err == nil {
					return v
				}
			}
		}
	}
	b.Fatalf("no %q in output:\n%s", key, out)
	return 0
}

// residentWhileRunning starts init in a new pid namespace with a CMD that
// waits, reads init's memory, and lets CMD go.
func residentWhileRunning(b *testing.B, cg *testCgroup, initArgv []string) (rssKB, anonKB float64) {
	unshare := testutil.RequireCommand(b, "unshare")
	dir, err := cg.fs.OpenDir(cg.rel)
	if err != nil {
		b.Fatal(err)
	}
	defer dir.Close()
	argv := append(append([]string{"--pid", "--fork", "--mount-proc", "--kill-child"}, initArgv...), "sh", "-c", "echo ready; read x; exit 0")
	cmd := exec.Command(unshare, argv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			b.Errorf("%q: %v", argv, err)
		}
	}()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		b.Fatalf("%q: %q, %v", argv, line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	kids, err := proctree.Descendants(cmd.Process.Pid)
	if err != nil || len(kids) == 0 {
		b.Fatalf("no init under unshare: %v", err)
	}
	st, err := os.ReadFile("/proc/" + strconv.Itoa(kids[0]) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	status := strings.ReplaceAll(string(st), ":", "")
	return field(b, status, "VmRSS"), field(b, status, "RssAnon")
}

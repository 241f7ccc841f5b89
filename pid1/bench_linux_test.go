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
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/proctree"
)

// The benchmarks run `orphand init` side by side with tini, dumb-init and
// catatonit (the Debian packages), interleaved: every round runs each init
// once, in an order that rotates from round to round, so that the noise of
// a shared machine falls on all of them alike. Each reports the median of
// its rounds per init, and the ratios the targets are about. Method and
// results: docs/benchmarks/init.md.

// contender is one init under comparison.
type contender struct {
	name string
	ns   []string // argv before CMD as PID 1 of a pid namespace
	host []string // argv before CMD outside one (subreaper where it can be)
}

// contenders returns the inits to compare, plus the variants named in
// extra: "orphand-nocgroup" (orphand init --no-cgroup), "orphand-procs1"
// (with GOMAXPROCS=1, set by env(1), which then exec's orphand in place),
// "pid1.Run-alone" (pid1.Run in a binary of its own: the agent's packages
// not linked in) and "exec-reaper" (proctree.StartReaper next to os/exec,
// the other way to build an init in Go).
func contenders(b *testing.B, extra ...string) []contender {
	needBinaries(b)
	tini := testutil.RequireCommand(b, "tini")
	dumb := testutil.RequireCommand(b, "dumb-init")
	cata := testutil.RequireCommand(b, "catatonit")
	cs := []contender{
		{"orphand", []string{bin.orphand, "init", "--"}, []string{bin.orphand, "init", "--"}},
		{"tini", []string{tini, "--"}, []string{tini, "-s", "--"}},
		{"dumb-init", []string{dumb, "--"}, []string{dumb, "--"}},
		{"catatonit", []string{cata, "--"}, []string{cata, "--"}},
	}
	variants := map[string][]string{
		"orphand-nocgroup": {bin.orphand, "init", "--no-cgroup", "--"},
		"orphand-procs1":   {"/usr/bin/env", "GOMAXPROCS=1", bin.orphand, "init", "--"},
		"pid1.Run-alone":   {bin.helper, "init"},
		"exec-reaper":      {bin.helper, "exec-reaper"},
	}
	for _, name := range extra {
		argv, ok := variants[name]
		if !ok {
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
// ratio of orphand to ref as "orphand/<ref>-<unit>".
func (s samples) report(b *testing.B, cs []contender, unit, ref string) {
	for _, c := range cs {
		b.ReportMetric(s.median(c.name), c.name+"-"+unit)
	}
	if r := s.median(ref); r != 0 && ref != "" {
		b.ReportMetric(s.median("orphand")/r, "orphand/"+ref+"-"+unit)
	}
	var line []string
	for _, c := range cs {
		line = append(line, fmt.Sprintf("%s %.4g", c.name, s.median(c.name)))
	}
	b.Logf("%s (median of %d): %s", unit, len(s[cs[0].name]), strings.Join(line, ", "))
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

// drainPL makes $total orphaned zombies in batches of $batch (pid_max is
// 32768 and the machine is shared): an intermediate process forks a batch
// of children that exit at once, lets them all become zombies, notes the
// time and the last child's pid and exits, so the whole batch is
// re-parented to PID 1 at once. The script (CMD, PID 1's child) then spins
// on kill(last, 0), which succeeds as long as the zombie exists: every init
// here reaps with wait4(-1), which takes the re-parented children in the
// order they were forked, so the last one goes last. A check of PID 1's
// children lists confirms the batch is gone. It prints each batch's drain
// time, and PID 1's memory at the end.
const drainPL = `use strict; use POSIX (); use Time::HiRes qw(time sleep);
my ($total, $batch) = @ARGV;
sub nkids { my $n = 0; for my $f (glob "/proc/1/task/*/children") { open my $h, '<', $f or next; my $l = <$h> // ''; $n += () = $l =~ /\d+/g } return $n }
sub status { my %s; open my $h, '<', "/proc/1/status" or return (0, 0); while (<$h>) { $s{$1} = $2 if /^(VmRSS|VmHWM):\s+(\d+)/ } return ($s{VmRSS}, $s{VmHWM}) }
my $done = 0;
pipe(my $r, my $w) or die;
while ($done < $total) {
  my $n = $total - $done; $n = $batch if $n > $batch;
  my $i = fork(); die unless defined $i;
  if ($i == 0) {
    my $last;
    for (1 .. $n) { my $p = fork(); die unless defined $p; POSIX::_exit(0) if $p == 0; $last = $p }
    sleep(0.3);
    syswrite($w, pack("dl", time(), $last)); POSIX::_exit(0);
  }
  waitpid($i, 0);
  sysread($r, my $buf, 12); my ($t0, $last) = unpack("dl", $buf);
  1 while kill 0, $last;
  my $t1 = time();
  while (nkids() > 1) { sleep(0.0002) }
  printf "batch %d seconds %.6f\n", $n, $t1 - $t0;
  $done += $n;
}
my ($rss, $hwm) = status();
printf "rss_kb %d hwm_kb %d\n", $rss, $hwm;
`

// BenchmarkInitDrainZombies: how fast each init reaps orphaned zombies that
// land on it 2,500 at a time, 10,000 per run. The rate is the batch size
// over the median batch's drain time (one slow batch on a shared machine
// does not decide it). Target: orphand >= tini.
func BenchmarkInitDrainZombies(b *testing.B) {
	testutil.RequireCommand(b, "perl")
	cs := contenders(b, "orphand-procs1", "exec-reaper")
	script := writeScript(b, "drain.pl", drainPL)
	cg := newTestCgroup(b)
	rate, hwm := samples{}, samples{}
	for round := 0; round < b.N*5; round++ {
		for _, c := range rotated(cs, round) {
			out := inNamespace(b, cg, append(slices.Clone(c.ns), "perl", script, "10000", "2500")...)
			for line := range strings.Lines(out) {
				if f := strings.Fields(line); len(f) == 4 && f[0] == "batch" {
					n, _ := strconv.ParseFloat(f[1], 64)
					sec, _ := strconv.ParseFloat(f[3], 64)
					rate[c.name] = append(rate[c.name], n/sec)
				}
			}
			hwm[c.name] = append(hwm[c.name], field(b, out, "hwm_kb"))
		}
	}
	rate.report(b, cs, "zombies/s", "tini")
	hwm.report(b, cs, "hwm-kB-after-drain", "tini")
}

// streamPL makes $n orphans one after the other (fork a child that forks a
// grandchild and exits; the grandchild exits at once, re-parented to PID
// 1), and reports the CPU time PID 1 spent meanwhile (all its threads,
// from schedstat: nanoseconds on the CPU).
const streamPL = `use strict; use POSIX ();
my $n = shift;
sub cpu1 { my $s = 0; for my $f (glob "/proc/1/task/*/schedstat") { open my $h, '<', $f or next; my $l = <$h>; $s += (split ' ', $l)[0] } return $s }
my $c0 = cpu1();
for (1 .. $n) {
  my $p = fork(); die unless defined $p;
  if ($p == 0) { fork(); POSIX::_exit(0) }
  waitpid($p, 0);
}
select(undef, undef, undef, 0.3); # the last ones reaped
my $c1 = cpu1();
printf "orphans %d init_cpu_ns %d per_orphan_us %.3f\n", $n, $c1 - $c0, ($c1 - $c0) / 1000 / $n;
`

// BenchmarkInitReapCPU: the CPU each init spends per orphan under a
// steady stream of orphans (5,000 per run). Reported: µs per orphan, and
// the ratio of orphand to tini.
func BenchmarkInitReapCPU(b *testing.B) {
	testutil.RequireCommand(b, "perl")
	cs := contenders(b, "orphand-procs1", "exec-reaper")
	script := writeScript(b, "stream.pl", streamPL)
	cg := newTestCgroup(b)
	cpu := samples{}
	for round := 0; round < b.N*3; round++ {
		for _, c := range rotated(cs, round) {
			out := inNamespace(b, cg, append(slices.Clone(c.ns), "perl", script, "5000")...)
			cpu[c.name] = append(cpu[c.name], field(b, out, "per_orphan_us"))
		}
	}
	cpu.report(b, cs, "us/orphan", "tini")
}

// BenchmarkInitStartup: `init -- /bin/true` end to end, outside a pid
// namespace (each init as a subreaper where it can be one), and as PID 1 of
// a new pid namespace (unshare's own cost included, the same for all).
// Target: orphand <= 1.5x catatonit.
func BenchmarkInitStartup(b *testing.B) {
	cs := contenders(b, "orphand-nocgroup", "pid1.Run-alone")
	cg := newTestCgroup(b)
	dir, err := cg.fs.OpenDir(cg.rel)
	if err != nil {
		b.Fatal(err)
	}
	defer dir.Close()
	unshare := testutil.RequireCommand(b, "unshare")
	host, ns := samples{}, samples{}
	timeRun := func(argv []string) float64 {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
		t0 := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%q: %v\n%s", argv, err, out)
		}
		return float64(time.Since(t0).Microseconds())
	}
	for round := 0; round < b.N*50; round++ {
		for _, c := range rotated(cs, round) {
			host[c.name] = append(host[c.name], timeRun(append(slices.Clone(c.host), "/bin/true")))
			nsArgv := append([]string{unshare, "--pid", "--fork", "--mount-proc"}, c.ns...)
			ns[c.name] = append(ns[c.name], timeRun(append(nsArgv, "/bin/true")))
		}
	}
	host.report(b, cs, "us-startup", "catatonit")
	ns.report(b, cs, "us-startup-pidns", "catatonit")
}

// BenchmarkInitRSS: each init's memory as PID 1 of a pid namespace while
// CMD (sh waiting on its stdin) runs: VmRSS, and its anonymous part (the
// rest is the binary's pages, shared with the page cache). Target: orphand
// <= 3 MB.
func BenchmarkInitRSS(b *testing.B) {
	cs := contenders(b, "orphand-nocgroup", "orphand-procs1", "pid1.Run-alone", "exec-reaper")
	cg := newTestCgroup(b)
	rss, anon := samples{}, samples{}
	for round := 0; round < b.N*3; round++ {
		for _, c := range rotated(cs, round) {
			r, a := residentWhileRunning(b, cg, c.ns)
			rss[c.name] = append(rss[c.name], r)
			anon[c.name] = append(anon[c.name], a)
		}
	}
	rss.report(b, cs, "VmRSS-kB", "tini")
	anon.report(b, cs, "RssAnon-kB", "tini")
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
	return field(b, strings.ReplaceAll(string(st), ":", ""), "VmRSS"), field(b, strings.ReplaceAll(string(st), ":", ""), "RssAnon")
}

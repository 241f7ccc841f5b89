package pid1_test

import (
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
)

// The four benchmarks. Harness: bench_linux_test.go; method and
// results: docs/benchmarks/init.md.

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

// The inits compared for reaping: the four, the Go floor that reaps
// through os/signal, and the variants that isolate one choice each.
var reapContenders = []string{"go-signals", "pid1.Run-sigchld", "orphand-init-procs1", "exec-reaper"}

// BenchmarkInitDrainZombies: how fast each init reaps orphaned zombies that
// land on it 2,500 at a time, 10,000 per run. The rate is the batch size
// over the median batch's drain time (one slow batch on a shared machine
// does not decide it). Target: orphand-init >= tini.
func BenchmarkInitDrainZombies(b *testing.B) {
	testutil.RequireCommand(b, "perl")
	cs := contenders(b, reapContenders...)
	script := writeScript(b, "drain.pl", drainPL)
	cg := newTestCgroup(b)
	machineLoad(b)
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
// 1), and reports what PID 1 spent meanwhile, over all its threads: CPU
// time (schedstat: nanoseconds on the CPU) and context switches (how many
// times a thread of PID 1 went to sleep or was preempted: its wake-ups).
const streamPL = `use strict; use POSIX ();
my $n = shift;
sub cpu1 { my $s = 0; for my $f (glob "/proc/1/task/*/schedstat") { open my $h, '<', $f or next; my $l = <$h>; $s += (split ' ', $l)[0] } return $s }
sub csw1 { my $s = 0; for my $f (glob "/proc/1/task/*/status") { open my $h, '<', $f or next; while (<$h>) { $s += $1 if /ctxt_switches:\s+(\d+)/ } } return $s }
my ($c0, $w0) = (cpu1(), csw1());
for (1 .. $n) {
  my $p = fork(); die unless defined $p;
  if ($p == 0) { fork(); POSIX::_exit(0) }
  waitpid($p, 0);
}
select(undef, undef, undef, 0.3); # the last ones reaped
my ($c1, $w1) = (cpu1(), csw1());
printf "orphans %d init_cpu_ns %d per_orphan_us %.3f csw_per_orphan %.2f\n", $n, $c1 - $c0, ($c1 - $c0) / 1000 / $n, ($w1 - $w0) / $n;
`

// BenchmarkInitReapCPU: the CPU each init spends per orphan under a
// steady stream of orphans (5,000 per run), and its threads' context
// switches per orphan. Reported: µs per orphan, and the ratio of
// orphand-init (and orphand) to tini. Target: <= 1.5x tini.
func BenchmarkInitReapCPU(b *testing.B) {
	testutil.RequireCommand(b, "perl")
	cs := contenders(b, reapContenders...)
	script := writeScript(b, "stream.pl", streamPL)
	cg := newTestCgroup(b)
	machineLoad(b)
	cpu, csw := samples{}, samples{}
	for round := 0; round < b.N*5; round++ {
		for _, c := range rotated(cs, round) {
			out := inNamespace(b, cg, append(slices.Clone(c.ns), "perl", script, "5000")...)
			cpu[c.name] = append(cpu[c.name], field(b, out, "per_orphan_us"))
			csw[c.name] = append(csw[c.name], field(b, out, "csw_per_orphan"))
		}
	}
	cpu.report(b, cs, "us/orphan", "tini")
	csw.report(b, cs, "csw/orphan", "tini")
}

// BenchmarkInitStartup: `init -- /bin/true` end to end, outside a pid
// namespace (each init as a subreaper where it can be one), and as PID 1 of
// a new pid namespace (unshare's own cost included, the same for all).
// go-noop does not run CMD: it is the Go runtime's start and exit alone.
// Target: orphand-init <= 1.2x go-spawn, the Go floor measured in the same
// run.
func BenchmarkInitStartup(b *testing.B) {
	cs := contenders(b, "go-noop", "go-spawn", "go-signals", "orphand-init-cgroup")
	cg := newTestCgroup(b)
	dir, err := cg.fs.OpenDir(cg.rel)
	if err != nil {
		b.Fatal(err)
	}
	defer dir.Close()
	unshare := testutil.RequireCommand(b, "unshare")
	machineLoad(b)
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
	for round := 0; round < b.N*100; round++ {
		for _, c := range rotated(cs, round) {
			host[c.name] = append(host[c.name], timeRun(append(slices.Clone(c.host), "/bin/true")))
			nsArgv := append([]string{unshare, "--pid", "--fork", "--mount-proc"}, c.ns...)
			ns[c.name] = append(ns[c.name], timeRun(append(nsArgv, "/bin/true")))
		}
	}
	host.report(b, cs, "us-startup", "go-spawn", "go-signals", "catatonit")
	ns.report(b, cs, "us-startup-pidns", "go-spawn", "go-signals", "catatonit")
}

// BenchmarkInitRSS: each init's memory as PID 1 of a pid namespace while
// CMD (sh waiting on its stdin) runs: VmRSS, and its anonymous part (the
// rest is the binary's pages, shared with the page cache). go-spawn stands
// for the Go no-op, since it is the least a Go program does that stays
// alive while CMD runs. Target: orphand-init <= 3 MB.
func BenchmarkInitRSS(b *testing.B) {
	cs := contenders(b, "go-spawn", "go-signals", "orphand-init-procs1", "exec-reaper")
	cg := newTestCgroup(b)
	machineLoad(b)
	rss, anon := samples{}, samples{}
	for round := 0; round < b.N*5; round++ {
		for _, c := range rotated(cs, round) {
			r, a := residentWhileRunning(b, cg, c.ns)
			rss[c.name] = append(rss[c.name], r)
			anon[c.name] = append(anon[c.name], a)
		}
	}
	rss.report(b, cs, "VmRSS-kB", "go-spawn", "tini")
	anon.report(b, cs, "RssAnon-kB", "go-spawn", "tini")
}

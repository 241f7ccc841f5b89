package pid1_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/orphand/orphand/proctree"
)

// doubleForks makes n orphans that exit at once: each child of CMD forks a
// grandchild and exits, so the grandchild is re-parented to init and dies
// there.
func doubleForks(n int) string {
	return fmt.Sprintf(`i=0; while [ $i -lt %d ]; do (sh -c 'exit 0' &); i=$((i+1)); done; `, n)
}

func TestZombiesOfDoubleForksReaped(t *testing.T) {
	t.Parallel()
	r := start(t, spec{pidns: true, args: []string{
		"init", "--", "sh", "-c",
		doubleForks(200) + `echo cmd $$; read x`,
	}})
	cmd := r.hostPid(r.waitPid("cmd "))
	init := r.initPid()
	// Every orphan has exited; the only descendant left must be CMD, which
	// means every orphan was reaped (a zombie would still be listed).
	waitFor(t, "init to have reaped every orphan", func() bool {
		d, err := proctree.Descendants(init)
		return err == nil && slices.Equal(d, []int{cmd})
	})
	r.release()
	r.expectExit(0)
}

// CMD's exit status comes out of the same reaping as a burst of orphans
// exiting with it, and every orphan is reaped; signals still reach CMD. Both
// ways Run reaps while CMD runs: on its waiter goroutine (orphand init), and
// on SIGCHLD through os/signal (the fallback, forced in the test helper).
func TestCMDStatusAmongABurstOfOrphans(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	for _, c := range []struct {
		name   string
		binary string
		args   []string
	}{
		{"waiter", bin.orphand, []string{"init", "--"}},
		{"sigchld", bin.helper, []string{"init-sigchld"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			script := `trap 'echo usr1' USR1; ` + doubleForks(300) + `echo cmd $$; while ! read x; do :; done; ` + doubleForks(300) + `exit 5`
			r := start(t, spec{pidns: true, binary: c.binary, args: append(c.args, "sh", "-c", script)})
			cmd := r.hostPid(r.waitPid("cmd "))
			init := r.initPid()
			waitFor(t, "init to have reaped every orphan", func() bool {
				d, err := proctree.Descendants(init)
				return err == nil && slices.Equal(d, []int{cmd})
			})
			r.signal(syscall.SIGUSR1)
			r.waitOutput("usr1")
			r.release()
			r.expectExit(5)
		})
	}
}

func TestSubreaperModeOutsideAPidNamespace(t *testing.T) {
	t.Parallel()
	// An orphan of CMD is re-parented to init (not to the host's PID 1)
	// and reaped by it. It reports its parent once that is init (CMD's
	// parent, passed as $0), or after 10 s.
	r := start(t, spec{args: []string{
		"init", "--", "sh", "-c",
		`(sh -c 'i=0; while [ $i -lt 1000 ]; do read -r l < /proc/$$/stat; set -- $l; [ "$4" = "$0" ] && break; sleep 0.01; i=$((i+1)); done; echo orphan $1 ppid $4' $PPID &); read x`,
	}})
	f := strings.Fields(r.waitOutput("orphan "))
	orphan, _ := strconv.Atoi(f[0])
	if f[2] != strconv.Itoa(r.initPid()) {
		t.Errorf("orphan's parent is %s, not init (%d)", f[2], r.initPid())
	}
	waitFor(t, "the orphan to be reaped", func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(orphan))
		return err != nil
	})
	r.release()
	r.expectExit(0)
	if strings.Contains(r.stderr.String(), "not a child subreaper") {
		t.Errorf("warned although it is a subreaper: %s", r.stderr.String())
	}
}

func TestWarnsWhenNeitherPid1NorSubreaper(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	r := start(t, spec{wrap: []string{bin.helper, "nosubreaper"}, args: []string{"init", "--", "sh", "-c", "exit 7"}})
	r.expectExit(7)
	for _, want := range []string{"not PID 1 and not a child subreaper", "PR_SET_CHILD_SUBREAPER", "-s makes this an error"} {
		if !strings.Contains(r.stderr.String(), want) {
			t.Errorf("the warning does not say %q:\n%s", want, r.stderr.String())
		}
	}
	// -s turns it into a failure of init's own.
	r = start(t, spec{wrap: []string{bin.helper, "nosubreaper"}, args: []string{"init", "-s", "--", "sh", "-c", "exit 7"}})
	r.expectExit(125)
	if !strings.Contains(r.stderr.String(), "cannot become a child subreaper") {
		t.Errorf("-s failure does not say why:\n%s", r.stderr.String())
	}
}

// leaveBehind starts, and reports the pids of, what CMD leaves behind: a
// plain background child, a setsid'ed double-forked daemon that ignores
// SIGTERM, and one that records SIGTERM before exiting.
const leaveBehind = `sleep 1000 & echo child $!; ` +
	`(setsid sh -c 'trap "" TERM; echo stubborn $$; exec sleep 1000' &); ` +
	`(setsid sh -c 'trap "echo polite got TERM; exit 0" TERM; echo polite $$; ` + waitLoop + `' &); `

func TestRemainingDescendantsKilledBeforeInitExits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pidns bool
		flags []string
	}{
		{"subreaper with cgroup", false, nil},
		{"subreaper without cgroup", false, []string{"--no-cgroup"}},
		{"pid 1 with cgroup", true, nil},
		{"pid 1 without cgroup", true, []string{"--no-cgroup"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append(append([]string{"init", "--grace", "300ms"}, tc.flags...), "--", "sh", "-c",
				leaveBehind+`read x; exit 4`)
			r := start(t, spec{pidns: tc.pidns, args: args})
			var held []*proctree.Process
			for _, name := range []string{"child ", "stubborn ", "polite "} {
				held = append(held, openPid(t, r.hostPid(r.waitPid(name))))
			}
			init := openPid(t, r.initPid())
			r.release()
			r.expectExit(4)
			// Checked from outside: nothing CMD started is left.
			for _, p := range held {
				if !p.Exited() {
					t.Errorf("pid %d outlived init", p.Pid())
				}
			}
			if left := r.cg.procs(t); len(left) > 0 {
				t.Errorf("processes left in the test cgroup: %v", left)
			}
			if !init.Exited() {
				t.Fatal("init still running")
			}
			// That the polite one got SIGTERM first is checked by
			// TestRemainingDescendantsGetTERMFirst: within this grace of
			// 300 ms a loaded machine may not run its trap before the
			// SIGKILL (seen in the flake hunt, at a load of 30).
		})
	}
}

// TestRemainingDescendantsGetTERMFirst: what CMD leaves behind gets the
// polite signal before any SIGKILL (a pid namespace torn down by the kernel
// would use SIGKILL), and init exits as soon as it is gone, long before the
// grace ends. Nothing here ignores SIGTERM, so the grace is a bound only.
func TestRemainingDescendantsGetTERMFirst(t *testing.T) {
	const polite = `(setsid sh -c 'trap "echo polite got TERM; exit 0" TERM; echo polite $$; ` + waitLoop + `' &); `
	for _, tc := range []struct {
		name  string
		pidns bool
		flags []string
	}{
		{"subreaper with cgroup", false, nil},
		{"subreaper without cgroup", false, []string{"--no-cgroup"}},
		{"pid 1 with cgroup", true, nil},
		{"pid 1 without cgroup", true, []string{"--no-cgroup"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append(append([]string{"init", "--grace", "10m"}, tc.flags...), "--", "sh", "-c", polite+`read x; exit 4`)
			r := start(t, spec{pidns: tc.pidns, args: args})
			p := openPid(t, r.hostPid(r.waitPid("polite ")))
			r.release()
			r.expectExit(4)
			if !p.Exited() {
				t.Errorf("pid %d outlived init", p.Pid())
			}
			if out := r.stdout.String(); !strings.Contains(out, "polite got TERM\n") {
				t.Errorf("the remaining process never ran its TERM trap\nstdout: %s", out)
			}
		})
	}
}

func TestNoKillRemaining(t *testing.T) {
	t.Parallel()
	r := start(t, spec{args: []string{
		"init", "--no-kill-remaining", "--", "sh", "-c",
		`(setsid sh -c 'echo daemon $$; exec sleep 1000' &); read x; exit 2`,
	}})
	d := openPid(t, r.waitPid("daemon "))
	r.release()
	r.expectExit(2)
	if d.Exited() {
		t.Fatal("--no-kill-remaining killed the daemon")
	}
	// The test cgroup's cleanup kills it.
}

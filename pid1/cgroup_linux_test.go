package pid1_test

import (
	"os"
	"strings"
	"testing"
)

// cmdCgroupLine prints CMD's cgroup v2 path.
const cmdCgroupLine = `while read -r l; do case $l in 0::*) echo "cgroup ${l#0::}";; esac; done < /proc/$$/cgroup; `

func TestCMDRunsInAChildCgroup(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func() []string
		args []string
	}{
		{"with --cgroup", nil, []string{"init", "--cgroup", "--"}},
		{"neither PID 1 nor a subreaper", func() []string { return []string{bin.helper, "nosubreaper"} }, []string{"init", "--"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			needBinaries(t)
			cg := newTestCgroup(t)
			var wrap []string
			if tc.wrap != nil {
				wrap = tc.wrap()
			}
			r := start(t, spec{cg: cg, wrap: wrap, args: append(tc.args, "sh", "-c", cmdCgroupLine)})
			r.expectExit(0)
			got := r.waitOutput("cgroup ")
			if !strings.HasPrefix(got, cg.rel+"/orphand-init-") {
				t.Fatalf("CMD ran in cgroup %q, not in a child of init's %q", got, cg.rel)
			}
			if _, err := os.Stat(cg.fs.Path(got)); !os.IsNotExist(err) {
				t.Errorf("CMD's cgroup %s is still there after init exited (%v)", got, err)
			}
		})
	}
}

// TestNoCgroupForAReaper pins the default: PID 1 and a subreaper find every
// descendant in their process tree, so CMD stays in init's cgroup (and init
// spends nothing on one).
func TestNoCgroupForAReaper(t *testing.T) {
	for _, pidns := range []bool{false, true} {
		t.Run(map[bool]string{false: "subreaper", true: "pid 1"}[pidns], func(t *testing.T) {
			t.Parallel()
			cg := newTestCgroup(t)
			r := start(t, spec{cg: cg, pidns: pidns, args: []string{"init", "--", "sh", "-c", cmdCgroupLine}})
			r.expectExit(0)
			if got := r.waitOutput("cgroup "); got != cg.rel {
				t.Fatalf("CMD ran in cgroup %q, want init's own %q", got, cg.rel)
			}
		})
	}
}

func TestWithoutCgroupCMDStaysInInitsCgroup(t *testing.T) {
	t.Parallel()
	cg := newTestCgroup(t)
	r := start(t, spec{cg: cg, args: []string{"init", "--no-cgroup", "--", "sh", "-c", cmdCgroupLine}})
	r.expectExit(0)
	if got := r.waitOutput("cgroup "); got != cg.rel {
		t.Fatalf("CMD ran in cgroup %q, want init's own %q", got, cg.rel)
	}
}

// escape leaves a setsid'ed double-forked daemon that ignores SIGTERM. When
// init is neither PID 1 nor a subreaper it is re-parented away from init,
// out of reach of any walk of init's process tree: only the cgroup still
// holds it.
const escape = `(setsid sh -c 'trap "" TERM; echo escapee $$; exec sleep 1000' &); read x`

func TestEscapeeKilledThroughTheCgroup(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	cg := newTestCgroup(t)
	r := start(t, spec{cg: cg, wrap: []string{bin.helper, "nosubreaper"}, args: []string{"init", "-v", "--grace", "200ms", "--", "sh", "-c", escape}})
	e := openPid(t, r.waitPid("escapee "))
	r.release()
	r.expectExit(0)
	if !e.Exited() {
		t.Fatal("the escapee outlived init although it was in CMD's cgroup")
	}
	// It shrugged SIGTERM off: cgroup.kill did it (or, on kernels before
	// 5.14, SIGKILL to each member).
	method := "method=cgroup.kill"
	if !cg.fs.HasFile(cg.rel, "cgroup.kill") {
		method = "method=sigkill"
	}
	if !strings.Contains(r.stderr.String(), method) {
		t.Errorf("the cgroup was not emptied by %s:\n%s", method, r.stderr.String())
	}
}

func TestEscapeeSurvivesWithoutCgroupOrReaper(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	// The counterpart: what the cgroup is for. The warning said so; the
	// test cgroup's cleanup kills the survivor.
	r := start(t, spec{wrap: []string{bin.helper, "nosubreaper"}, args: []string{"init", "--grace", "200ms", "--no-cgroup", "--", "sh", "-c", escape}})
	e := openPid(t, r.waitPid("escapee "))
	r.release()
	r.expectExit(0)
	if e.Exited() {
		t.Fatal("the escapee died: nothing should have been able to reach it")
	}
	if !strings.Contains(r.stderr.String(), "not a child subreaper") {
		t.Errorf("no warning:\n%s", r.stderr.String())
	}
}

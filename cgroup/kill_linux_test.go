package cgroup_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/internal/cgtest"
)

func TestKillTree(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   cgroup.Options
		method string
	}{
		{"cgroup.kill", cgroup.Options{}, cgroup.MethodCgroupKill},
		{"fallback", cgroup.Options{NoKill: true}, cgroup.MethodFreezeSIGKILL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := openFS(t, tc.opts)
			rel := cgtest.Dir(t)
			cgtest.StartTree(t, rel)
			before, err := fs.Procs(rel, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(before) < cgtest.MinTree {
				t.Fatalf("workload has %d processes, want at least %d", len(before), cgtest.MinTree)
			}
			held := holdAll(t, before)
			res, err := fs.Kill(ctxTimeout(t, time.Minute), rel, cgroup.KillOptions{})
			if err != nil {
				t.Fatalf("Kill: %v", err)
			}
			t.Logf("killed %d (%d seen before) in %v by %s", res.Killed, len(before), res.Duration, res.Method)
			if res.Method != tc.method {
				t.Errorf("Method = %q, want %q", res.Method, tc.method)
			}
			if res.Killed < cgtest.MinTree {
				t.Errorf("Killed = %d, want at least %d", res.Killed, cgtest.MinTree)
			}
			assertGone(t, fs, rel, held)
		})
	}
}

func TestKillGraceEnough(t *testing.T) {
	fs := openFS(t, cgroup.Options{})
	rel := cgtest.Dir(t)
	cmds := spawnSleeps(t, fs, rel, 5)
	// A stopped member must still act on the polite signal: Kill follows
	// it with SIGCONT.
	if err := cmds[0].Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	pids, _ := fs.Procs(rel, true)
	held := holdAll(t, pids)
	res, err := fs.Kill(ctxTimeout(t, time.Minute), rel, cgroup.KillOptions{Grace: 30 * time.Second})
	if err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if res.Method != cgroup.MethodSignal || res.Killed != 5 {
		t.Errorf("got %+v, want 5 killed by %q", res, cgroup.MethodSignal)
	}
	assertGone(t, fs, rel, held)
	for _, c := range cmds {
		err := c.Wait()
		if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGTERM {
			t.Errorf("sleep ended with %v (%v), want SIGTERM", c.ProcessState, err)
		}
	}
}

func TestKillGraceIgnored(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   cgroup.Options
		method string
	}{
		{"cgroup.kill", cgroup.Options{}, cgroup.MethodCgroupKill},
		{"fallback", cgroup.Options{NoKill: true}, cgroup.MethodFreezeSIGKILL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := openFS(t, tc.opts)
			rel := cgtest.Dir(t)
			cgtest.StartTree(t, rel) // its daemons ignore SIGTERM
			before, _ := fs.Procs(rel, true)
			held := holdAll(t, before)
			res, err := fs.Kill(ctxTimeout(t, time.Minute), rel, cgroup.KillOptions{Grace: 100 * time.Millisecond, Signal: syscall.SIGTERM})
			if err != nil {
				t.Fatalf("Kill: %v", err)
			}
			if res.Method != tc.method {
				t.Errorf("Method = %q, want %q", res.Method, tc.method)
			}
			if res.Duration < 100*time.Millisecond {
				t.Errorf("Duration %v is shorter than the grace", res.Duration)
			}
			assertGone(t, fs, rel, held)
		})
	}
}

func TestKillNested(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts cgroup.Options
	}{
		{"cgroup.kill", cgroup.Options{}},
		{"fallback", cgroup.Options{NoKill: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := openFS(t, tc.opts)
			rel := cgtest.Dir(t)
			a := rel + "/a"
			b := a + "/b"
			c := rel + "/c"
			for _, d := range []string{a, b, c} {
				if err := fs.Mkdir(d); err != nil {
					t.Fatal(err)
				}
			}
			spawnSleeps(t, fs, rel, 1)
			spawnSleeps(t, fs, a, 2)
			spawnSleeps(t, fs, b, 3)
			cgtest.StartTree(t, c)
			all, err := fs.Procs(rel, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) < 6+cgtest.MinTree {
				t.Fatalf("Procs(recursive) = %d pids, want at least %d", len(all), 6+cgtest.MinTree)
			}
			held := holdAll(t, all)
			res, err := fs.Kill(ctxTimeout(t, time.Minute), rel, cgroup.KillOptions{})
			if err != nil {
				t.Fatalf("Kill: %v", err)
			}
			if res.Killed < 6+cgtest.MinTree {
				t.Errorf("Killed = %d, want at least %d", res.Killed, 6+cgtest.MinTree)
			}
			assertGone(t, fs, rel, held)
			for _, d := range []string{a, b, c} {
				if ev, err := fs.Events(d); err != nil || ev.Populated {
					t.Errorf("%s: populated=%v err=%v", d, ev.Populated, err)
				}
			}
			if err := fs.Remove(ctxTimeout(t, 10*time.Second), rel); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if _, err := fs.Events(rel); err == nil {
				t.Errorf("%s still exists after Remove", rel)
			}
		})
	}
}

func TestKillEmpty(t *testing.T) {
	fs := openFS(t, cgroup.Options{})
	rel := cgtest.Dir(t)
	res, err := fs.Kill(ctxTimeout(t, 10*time.Second), rel, cgroup.KillOptions{Grace: time.Hour})
	if err != nil || res.Killed != 0 || res.Method != "" {
		t.Errorf("Kill of an empty group = %+v, %v; want nothing done", res, err)
	}
}

func TestRemoveRefusesPopulated(t *testing.T) {
	fs := openFS(t, cgroup.Options{})
	rel := cgtest.Dir(t)
	spawnSleeps(t, fs, rel, 1)
	ctx := ctxTimeout(t, 200*time.Millisecond)
	if err := fs.Remove(ctx, rel); err == nil {
		t.Fatal("Remove of a populated cgroup succeeded")
	}
}

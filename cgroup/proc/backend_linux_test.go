package proc_test

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/internal/cgtest"
	"github.com/orphand/orphand/cgroup/proc"
	"github.com/orphand/orphand/proctree"
)

func TestOpenFeatures(t *testing.T) {
	forEachMode(t, func(t *testing.T, b *proc.Backend, m mode) {
		f := b.Features()
		if f.Backend != "proc" || b.Name() != "proc" || f.Writable || f.Kill || f.Freeze || f.Root != "" {
			t.Errorf("Features = %+v", f)
		}
		lim := strings.Join(b.Limitations(), "\n")
		if !strings.Contains(lim, "double fork") || !strings.Contains(lim, "restart") {
			t.Errorf("Limitations do not name the double fork and the restart:\n%s", lim)
		}
	})
}

// TestCreateAttachKill tracks a spawner with children and grandchildren
// forked before registration, and an attached process, then kills them.
func TestCreateAttachKill(t *testing.T) {
	forEachMode(t, func(t *testing.T, b *proc.Backend, _ mode) {
		w := shell(t, "", `sleep 1000 & echo $!; sh -c 'sleep 1000 & echo $!; wait' & echo $!; wait`)
		kids := w.pids(t, 3)
		other := exec.Command("sleep", "1000")
		start(t, w.rel, other)
		g, err := b.Create(ctx(t, 30*time.Second), cgroup.Spec{ID: "g1", Pids: []int{w.pid()}})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if err := g.Attach(ctx(t, 10*time.Second), other.Process.Pid); err != nil {
			t.Fatalf("Attach: %v", err)
		}
		want := append([]int{w.pid(), other.Process.Pid}, kids...)
		slices.Sort(want)
		if got := members(t, g); !slices.Equal(got, want) {
			t.Errorf("Members = %v, want %v", got, want)
		}
		if id, ok := b.GroupOf(kids[1]); !ok || id != "g1" {
			t.Errorf("GroupOf(%d) = %q, %v", kids[1], id, ok)
		}
		held := hold(t, want)
		res, err := g.Kill(ctx(t, time.Minute), cgroup.KillOptions{})
		if err != nil || res.Killed != 5 || res.Method != proc.MethodPidfd {
			t.Errorf("Kill = %+v, %v; want 5 killed by pidfd", res, err)
		}
		assertExited(t, held)
		killedBySIGKILL(t, w.cmd)
		killedBySIGKILL(t, other)
		if got := procs(t, w.rel); len(got) != 0 {
			t.Errorf("left running: %v", got)
		}
		if err := g.Remove(ctx(t, 10*time.Second)); err != nil {
			t.Fatalf("Remove: %v", err)
		}
		if _, err := b.Load(ctx(t, 10*time.Second), g.Ref()); !errors.Is(err, cgroup.ErrNotFound) {
			t.Errorf("Load after Remove: %v, want ErrNotFound", err)
		}
	})
}

// TestForksAfterRegistration: children and grandchildren forked after
// registration (none of them a double fork) are tracked in both modes.
func TestForksAfterRegistration(t *testing.T) {
	forEachMode(t, func(t *testing.T, b *proc.Backend, _ mode) {
		w := shell(t, "", `read x; sleep 1000 & echo $!; sh -c 'sleep 1000 & echo $!; wait' & echo $!; wait`)
		g, err := b.Create(ctx(t, 30*time.Second), cgroup.Spec{ID: "later", Pids: []int{w.pid()}})
		if err != nil {
			t.Fatal(err)
		}
		if got := members(t, g); !slices.Equal(got, []int{w.pid()}) {
			t.Errorf("Members before the forks = %v", got)
		}
		w.release(t)
		kids := w.pids(t, 3)
		if got := members(t, g); !contains(got, kids...) || len(got) != 4 {
			t.Errorf("Members = %v, want the spawner and %v", got, kids)
		}
		held := hold(t, kids)
		if _, err := g.Kill(ctx(t, time.Minute), cgroup.KillOptions{}); err != nil {
			t.Fatal(err)
		}
		assertExited(t, held)
	})
}

// TestDoubleFork shows the known gap and what the proc connector closes.
// A double fork (the middle process exits at once, so its child is
// reparented to init) made before registration escapes in both modes; made
// after registration, the proc connector catches it (the fork event names
// the parent), and the fallback — whose walks here never run in the
// double fork's millisecond — does not: documented, not hidden.
func TestDoubleFork(t *testing.T) {
	const daemonize = `(setsid sleep 1000 & echo $!)`
	forEachMode(t, func(t *testing.T, _ *proc.Backend, m mode) {
		cfg := m.cfg
		cfg.RescanInterval = time.Hour // only the walks the test causes
		b := openBackend(t, cfg)
		for _, after := range []bool{false, true} {
			name := map[bool]string{false: "before-registration", true: "after-registration"}[after]
			t.Run(name, func(t *testing.T) {
				script := daemonize + `; read x; exec sleep 1000`
				if after {
					script = `read x; ` + daemonize + `; exec sleep 1000`
				}
				w := shell(t, "", script)
				var escapee int
				if !after {
					escapee = w.pids(t, 1)[0]
					waitReparented(t, escapee, w.pid())
					// Events not yet handled when the group is created
					// would still be attributed to it (the connector is
					// better than promised): let them be handled first.
					syncEvents(t, b)
				}
				g, err := b.Create(ctx(t, 30*time.Second), cgroup.Spec{ID: "df-" + name, Pids: []int{w.pid()}})
				if err != nil {
					t.Fatal(err)
				}
				w.release(t)
				if after {
					escapee = w.pids(t, 1)[0]
					waitReparented(t, escapee, w.pid())
				}
				d := hold(t, []int{escapee})[0]
				caught := after && m.name == "connector"
				if got := members(t, g); slices.Contains(got, escapee) != caught {
					t.Errorf("Members = %v; escapee %d tracked = %v, want %v", got, escapee, !caught, caught)
				}
				if _, err := g.Kill(ctx(t, time.Minute), cgroup.KillOptions{}); err != nil {
					t.Fatal(err)
				}
				if caught {
					assertExited(t, []*proctree.Process{d})
					if got := procs(t, w.rel); len(got) != 0 {
						t.Errorf("left running: %v", got)
					}
				} else {
					assertAlive(t, d, "known gap: a double fork before it is seen escapes, and must not be killed by accident either")
					if got := procs(t, w.rel); !slices.Equal(got, []int{escapee}) {
						t.Errorf("left running: %v, want only the escapee %d", got, escapee)
					}
				}
			})
		}
	})
}

// syncEvents returns once every proc connector event queued so far has
// been handled (Members of any group syncs).
func syncEvents(t *testing.T, b *proc.Backend) {
	t.Helper()
	w := shell(t, "", "exec sleep 1000")
	g, err := b.Create(ctx(t, 30*time.Second), cgroup.Spec{ID: "sync-" + strconv.Itoa(w.pid()), Pids: []int{w.pid()}})
	if err != nil {
		t.Fatal(err)
	}
	members(t, g)
	if err := g.Remove(ctx(t, time.Second)); err != nil {
		t.Fatal(err)
	}
}

// helperExecFromThread waits for a line on stdin, then calls execve from a
// thread that is not the thread-group leader, as Go programs may: the
// kernel then reports the old leader's exit although the process lives on.
func helperExecFromThread() error {
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	errc := make(chan error)
	for {
		go func() {
			runtime.LockOSThread() // never unlocked: this thread is not reused
			if unix.Gettid() == os.Getpid() {
				errc <- nil // the leader: try another thread
				return
			}
			errc <- syscall.Exec("/bin/sh", []string{"sh", "-c", "sleep 1000 & echo $!; wait"}, os.Environ())
		}()
		if err := <-errc; err != nil {
			return err
		}
	}
}

// TestExecFromThread: a member that execs from a thread other than its
// leader stays tracked, and its children after the exec are tracked too.
func TestExecFromThread(t *testing.T) {
	forEachMode(t, func(t *testing.T, b *proc.Backend, _ mode) {
		c := ctx(t, time.Minute)
		w := start(t, "", cgtest.Helper("exec-from-thread"))
		g, err := b.Create(c, cgroup.Spec{ID: "exec", Pids: []int{w.pid()}})
		if err != nil {
			t.Fatal(err)
		}
		w.release(t)
		kid := w.pids(t, 1)[0]
		if got := members(t, g); !slices.Equal(got, sorted(w.pid(), kid)) {
			t.Errorf("Members = %v, want the exec'd spawner %d and its child %d", got, w.pid(), kid)
		}
		if id, ok := b.GroupOf(w.pid()); !ok || id != "exec" {
			t.Errorf("GroupOf(spawner) = %q, %v", id, ok)
		}
	})
}

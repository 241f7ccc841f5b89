package proctree

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/internal/testutil"
)

func init() {
	helpers["pdeath-parent"] = helperPdeathParent
	helpers["pdeath-child"] = func() error { return helperPdeathChild(false) }
	helpers["pdeath-child-late"] = func() error { return helperPdeathChild(true) }
}

func TestParentDeathSignalSetAndRead(t *testing.T) {
	before, err := ParentDeathSignal()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := SetParentDeathSignal(before); err != nil {
			t.Errorf("restore: %v", err)
		}
	})
	if err := SetParentDeathSignal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	if got, err := ParentDeathSignal(); err != nil || got != syscall.SIGUSR2 {
		t.Fatalf("ParentDeathSignal = %v, %v; want SIGUSR2", got, err)
	}
	if err := SetParentDeathSignal(0); err != nil {
		t.Fatal(err)
	}
	if got, err := ParentDeathSignal(); err != nil || got != 0 {
		t.Fatalf("ParentDeathSignal after disarming = %v, %v; want 0", got, err)
	}
	if err := SetParentDeathSignal(65); err == nil {
		t.Fatal("SetParentDeathSignal(65) succeeded")
	}
	if ParentAtStart() != os.Getppid() {
		t.Errorf("ParentAtStart = %d, want %d", ParentAtStart(), os.Getppid())
	}
}

// The chain: this test → parent (a helper) → child, which arms SIGUSR1 and
// reports on a pipe. The test kills the parent; the child must get SIGUSR1.
// The child is this test binary (built with cgo under -race, so the
// pinned-thread fallback is used) and testbin (built without cgo:
// AllThreadsSyscall).
func TestParentDeathSignalFires(t *testing.T) {
	for _, c := range pdeathChildren(t, false) {
		t.Run(c.name, func(t *testing.T) { pdeathChain(t, c.argv, false) })
	}
}

// The parent dies before the child arms the signal: the child must notice
// and raise it itself.
func TestParentDeathSignalParentAlreadyGone(t *testing.T) {
	for _, c := range pdeathChildren(t, true) {
		t.Run(c.name, func(t *testing.T) { pdeathChain(t, c.argv, true) })
	}
}

type pdeathChild struct {
	name string
	argv []string
}

func pdeathChildren(t *testing.T, late bool) []pdeathChild {
	helper, tb := "pdeath-child", []string{testbinPath(t), "pdeath"}
	if late {
		helper = "pdeath-child-late"
		tb = append(tb, "late")
	}
	return []pdeathChild{
		{"cgo", []string{"env", helperEnv + "=" + helper, os.Args[0], "-test.run=^$"}},
		{"nocgo", tb},
	}
}

func pdeathChain(t *testing.T, childArgv []string, late bool) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	parent := helperCmd(t, "pdeath-parent", "PDEATH_CHILD="+strings.Join(childArgv, "\x1f"))
	parent.ExtraFiles = []*os.File{w}
	var out strings.Builder
	parent.Stderr = &out
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { killWait(parent) })
	lines := make(chan string, 4)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func(prefix string) string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok || !strings.HasPrefix(l, prefix) {
				t.Fatalf("child said %q (closed: %v), want %q…\n%s", l, !ok, prefix, out.String())
			}
			return l
		case <-time.After(time.Minute):
			t.Fatalf("no %q from the child\n%s", prefix, out.String())
		}
		return ""
	}
	var pid int
	first := "ready "
	if late {
		first = "started "
	}
	if _, err := fmt.Sscanf(next(first), first+"%d", &pid); err != nil {
		t.Fatal(err)
	}
	child, err := Open(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = child.Signal(syscall.SIGKILL)
		child.Close()
	})
	killWait(parent)
	if late {
		next("ready ")
	}
	next("fired")
	if err := child.Wait(ctxTimeout(t, time.Minute)); err != nil {
		t.Fatalf("child did not exit after the signal: %v", err)
	}
}

// helperPdeathParent starts PDEATH_CHILD with the report pipe as its fd 3,
// then waits to be killed.
func helperPdeathParent() error {
	argv := strings.Split(os.Getenv("PDEATH_CHILD"), "\x1f")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.ExtraFiles = []*os.File{os.NewFile(3, "report")}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	time.Sleep(2 * time.Minute)
	return errors.New("not killed within two minutes")
}

func helperPdeathChild(late bool) error {
	report := os.NewFile(3, "report")
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGUSR1)
	if late {
		fmt.Fprintf(report, "started %d\n", os.Getpid())
		if err := waitForErr("the parent to die", time.Minute, func() bool { return os.Getppid() != ParentAtStart() }); err != nil {
			return err
		}
	}
	if err := SetParentDeathSignal(syscall.SIGUSR1); err != nil {
		return err
	}
	if got, err := ParentDeathSignal(); err != nil || got != syscall.SIGUSR1 {
		return fmt.Errorf("ParentDeathSignal = %v, %w", got, err)
	}
	newThreads(4)
	if got, err := ParentDeathSignal(); err != nil || got != syscall.SIGUSR1 {
		return fmt.Errorf("ParentDeathSignal after new threads = %v, %w", got, err)
	}
	fmt.Fprintf(report, "ready %d\n", os.Getpid())
	select {
	case <-sigc:
		fmt.Fprintln(report, "fired")
		return nil
	case <-time.After(time.Minute):
		return errors.New("no parent-death signal within a minute")
	}
}

// newThreads makes the runtime create (and end) n threads, which start with
// no parent-death signal.
func newThreads(n int) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { runtime.LockOSThread() })
	}
	wg.Wait()
}

func init() { helpers["pdeath-creds"] = helperPdeathCreds }

// A credential change makes the kernel clear the signal on every thread;
// ParentDeathSignal must say so.
func TestParentDeathSignalClearedBySetuid(t *testing.T) {
	testutil.RequireRoot(t)
	runHelper(t, "pdeath-creds", time.Minute, nil)
}

func helperPdeathCreds() error {
	if err := SetParentDeathSignal(syscall.SIGUSR1); err != nil {
		return err
	}
	if err := syscall.Setresuid(-1, 65534, -1); err != nil {
		return err
	}
	defer syscall.Setresuid(-1, 0, -1)
	if got, err := ParentDeathSignal(); err != nil || got != 0 {
		return fmt.Errorf("ParentDeathSignal after seteuid = %v, %w; want 0", got, err)
	}
	// The kernel agrees, on whichever thread this runs.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var sig int32
	if err := unix.Prctl(unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&sig)), 0, 0, 0); err != nil || sig != 0 {
		return fmt.Errorf("PR_GET_PDEATHSIG after seteuid = %d, %w; want 0", sig, err)
	}
	return nil
}

package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orphand/orphand/cgroup"
)

// subreaperEnv runs the test binary as an agent with Config.Subreaper, so
// that the test process's own reaper state stays untouched.
const subreaperEnv = "ORPHAND_AGENT_TEST_SUBREAPER"

// subreaperMain is that helper: it runs the agent, makes an orphan land on
// itself, and checks the reaper reaps it while os/exec still gets its own
// child's status. It prints "reaped" on success.
func subreaperMain(dir string) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
		return 1
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "s.sock"))
	if err != nil {
		return fail("listen: %v", err)
	}
	cfg := DefaultConfig()
	cfg.Subreaper = true
	ready := make(chan struct{})
	cfg.OnReady = func() { close(ready) }
	a, err := New(cfg, &fakeBackend{groups: map[string]*fakeGroup{}}, testLogger(nopTB{}))
	if err != nil {
		return fail("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, ln) }()
	<-ready
	defer func() { cancel(); <-done }()

	// sh exits at once; its background child is orphaned onto us.
	if err := exec.Command("sh", "-c", "(sleep 0.5 &); exit 3").Run(); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		return fail("os/exec lost its child's status: %v", err)
	}
	// The orphan shows up as our child (we are a subreaper)...
	deadline := time.Now().Add(20 * time.Second)
	for len(children(os.Getpid())) == 0 {
		if time.Now().After(deadline) {
			return fail("the orphan never landed on the agent: not a subreaper?")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// ...and is gone once it exits: reaped, not left a zombie.
	for len(children(os.Getpid())) > 0 {
		if time.Now().After(deadline) {
			return fail("children left unreaped: %v", children(os.Getpid()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("reaped")
	return 0
}

func TestSubreaperReapsOrphans(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), subreaperEnv+"="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "reaped") {
		t.Fatalf("subreaper helper: %v\n%s", err, out)
	}
}

// nopTB discards the helper's logs (it has no *testing.T).
type nopTB struct{ testing.TB }

func (nopTB) Log(...any) {}

var _ cgroup.Backend = (*fakeBackend)(nil)

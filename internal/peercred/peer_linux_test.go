package peercred

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/proctree"
)

// The fallback refuses a pid whose process started after the connection
// was accepted: a newcomer that reused the peer's pid.
func TestFallbackRefusesNewcomer(t *testing.T) {
	r, err := NewReader(Options{NoPidfd: true})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := testutil.UnixConnPair(t)
	p, err := r.Read(srv, proctree.BootTicks())
	if err != nil || p.Proc == nil || p.Proc.Pid() != os.Getpid() || !p.SameNS || p.UID != uint32(os.Getuid()) {
		t.Fatalf("peer: %+v %v", p, err)
	}
	p.Proc.Close()
	// Pretend the connection was accepted before this process started.
	p, err = r.Read(srv, 0)
	if err != nil || p.Proc != nil {
		t.Fatalf("a process younger than the connection was accepted: %+v %v", p, err)
	}
}

// Both ways name the connecting process: here, the test's own.
func TestReadBothWays(t *testing.T) {
	for _, noPidfd := range []bool{false, true} {
		r, err := NewReader(Options{NoPidfd: noPidfd})
		if err != nil {
			t.Fatal(err)
		}
		if r.Pidfd() != (PidfdSupported() && !noPidfd) {
			t.Errorf("NoPidfd %v: Pidfd() = %v", noPidfd, r.Pidfd())
		}
		srv, _ := testutil.UnixConnPair(t)
		p, err := r.Read(srv, proctree.BootTicks())
		if err != nil || p.Proc == nil || p.Proc.Pid() != os.Getpid() || p.Pid != os.Getpid() || !p.SameNS {
			t.Fatalf("NoPidfd %v: peer %+v %v", noPidfd, p, err)
		}
		p.Proc.Close()
	}
}

// TestSameNS tells a process in the reader's pid namespace from one in a
// nested namespace, by NSpid (the way the packaged agent, without
// CAP_SYS_PTRACE, must) and by the ns/pid link.
func TestSameNS(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "unshare")
	r, err := NewReader(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.nsLevels != 1 {
		t.Fatalf("the test's /proc is not its pid namespace's (NSpid levels %d)", r.nsLevels)
	}
	cmd := exec.Command("unshare", "--pid", "--fork", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var inner int
	for deadline := time.Now().Add(10 * time.Second); inner == 0 && time.Now().Before(deadline); {
		if kids, _ := proctree.Descendants(cmd.Process.Pid); len(kids) > 0 {
			inner = kids[0]
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if inner == 0 {
		t.Fatal("unshare's child never appeared")
	}
	t.Cleanup(func() { _ = syscall.Kill(inner, syscall.SIGKILL) })
	viaLink := *r
	viaLink.nsLevels = 0 // forces the ns/pid comparison
	for name, rd := range map[string]*Reader{"NSpid": r, "ns/pid link": &viaLink} {
		if !rd.SameNS(os.Getpid()) || !rd.SameNS(cmd.Process.Pid) {
			t.Errorf("%s: a process of the reader's namespace is not seen as such", name)
		}
		if rd.SameNS(inner) {
			t.Errorf("%s: pid %d in a nested namespace is seen as the reader's", name, inner)
		}
	}
}

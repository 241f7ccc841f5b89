package pid1_test

import (
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/orphand/orphand/internal/testutil"
)

// TestNohupSIGHUPStaysIgnored is `nohup orphand init -- sleep`: nohup leaves
// SIGHUP ignored, and CMD must inherit that. A SIGHUP sent to CMD directly,
// and one sent to init (forwarded), must both leave it running: the SIGTERM
// after them is what ends it (143, not 129).
func TestNohupSIGHUPStaysIgnored(t *testing.T) {
	nohup := testutil.RequireCommand(t, "nohup")
	for _, b := range initBinaries(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			sp := b.spec("--", "sh", "-c", `echo cmd $$; exec sleep 1000`)
			sp.pidns = true
			sp.shell = `exec ` + nohup + ` "$0" "$@"`
			r := start(t, sp)
			cmd := r.hostPid(r.waitPid("cmd "))
			if err := syscall.Kill(cmd, syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			r.signal(syscall.SIGHUP)
			r.signal(syscall.SIGTERM)
			r.expectExit(128 + int(syscall.SIGTERM))
		})
	}
}

// TestInheritedSignalStateReachesCMD starts init with signals ignored and
// blocked, and reads CMD's from /proc. What the Go runtime lets init see is
// passed on; the rest is pinned here as the documented limitation (see
// docs/init.md): SIGQUIT ignored and SIGTERM blocked are lost, because the
// runtime replaces the one and unblocks the other before init's code runs.
func TestInheritedSignalStateReachesCMD(t *testing.T) {
	for _, pidns := range []bool{false, true} {
		t.Run(map[bool]string{false: "subreaper", true: "pid 1"}[pidns], func(t *testing.T) {
			t.Parallel()
			needBinaries(t)
			r := start(t, spec{
				pidns:  pidns,
				binary: bin.init,
				shell:  `exec ` + bin.helper + ` sigstate ignore=HUP,INT,TTOU,QUIT block=USR1,WINCH,TERM "$0" "$@"`,
				args:   []string{"--", "grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"},
			})
			r.expectExit(0)
			ign, blk := sigMask(t, r.waitOutput("SigIgn:")), sigMask(t, r.waitOutput("SigBlk:"))
			for _, s := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGTTOU} {
				if !ign.has(s) {
					t.Errorf("CMD does not ignore %v (SigIgn %x)", s, ign)
				}
			}
			for _, s := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGWINCH} {
				if !blk.has(s) {
					t.Errorf("CMD does not block %v (SigBlk %x)", s, blk)
				}
			}
			// The limitation: pinned so that a change is noticed either way.
			if ign.has(syscall.SIGQUIT) || blk.has(syscall.SIGTERM) {
				t.Errorf("SIGQUIT ignored or SIGTERM blocked reached CMD (SigIgn %x, SigBlk %x): update docs/init.md", ign, blk)
			}
			if ign.has(syscall.SIGTERM) || blk.has(syscall.SIGHUP) {
				t.Errorf("CMD got more than init inherited (SigIgn %x, SigBlk %x)", ign, blk)
			}
		})
	}
}

// TestIgnoredSIGINTIsForwardedOnceCMDRuns: a signal init inherited ignored
// stays ignored for init only until CMD has started; then init forwards it,
// as tini does (here to a CMD that installed its own handler).
func TestIgnoredSIGINTIsForwardedOnceCMDRuns(t *testing.T) {
	t.Parallel()
	needBinaries(t)
	r := start(t, spec{
		pidns:  true,
		binary: bin.init,
		shell:  `exec ` + bin.helper + ` sigstate ignore=INT "$0" "$@"`,
		args:   []string{"-v", "--", bin.helper, "catch"},
	})
	r.waitOutput("ready")
	waitFor(t, "init to ask for every signal", func() bool {
		return strings.Contains(r.stderr.String(), "every signal is forwarded from now on")
	})
	r.signal(syscall.SIGINT)
	r.waitOutput("got 2")
	r.signal(syscall.SIGTERM)
	r.expectExit(0)
}

// sigset is a /proc/<pid>/status signal mask.
type sigset uint64

func sigMask(t *testing.T, hex string) sigset {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
	if err != nil {
		t.Fatalf("mask %q: %v", hex, err)
	}
	return sigset(v)
}

func (m sigset) has(s syscall.Signal) bool { return m&(1<<(uint(s)-1)) != 0 }

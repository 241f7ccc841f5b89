package pid1_test

import (
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/orphand/orphand/pid1"
)

// TestEverySignalIsForwarded sends init every signal it forwards, one at a
// time, and waits for CMD (a program that catches them all) to report each:
// 1-31 but the few init keeps, and the real-time ones from 35. SIGTERM goes
// last and ends CMD.
func TestEverySignalIsForwarded(t *testing.T) {
	var sigs []syscall.Signal
	for s := syscall.Signal(1); s <= 64; s++ {
		if pid1.Forwarded(s) && s != syscall.SIGTERM {
			sigs = append(sigs, s)
		}
	}
	if len(sigs) < 50 {
		t.Fatalf("only %d signals are forwarded", len(sigs))
	}
	for _, pidns := range []bool{false, true} {
		t.Run(map[bool]string{false: "subreaper", true: "pid 1"}[pidns], func(t *testing.T) {
			t.Parallel()
			needBinaries(t)
			r := start(t, spec{pidns: pidns, binary: bin.init, args: []string{"--", bin.helper, "catch"}})
			r.waitOutput("ready")
			for _, s := range sigs {
				r.signal(s)
				r.waitOutput("got " + strconv.Itoa(int(s)))
			}
			r.signal(syscall.SIGTERM)
			r.expectExit(0)
		})
	}
}

// groupCMD is a CMD whose child stays in its process group; both report a
// SIGUSR1, and CMD exits once its child has.
const groupCMD = `sh -c 'trap "echo child got USR1; exit 0" USR1; echo child ready; ` + waitLoop + `' & ` +
	`trap 'echo cmd got USR1' USR1; ` + statFields + `; ` +
	`while :; do wait; [ $? -le 128 ] && break; done`

// TestProcessGroupSignalling: who gets a forwarded signal, and whether CMD
// leads a session, for tini's -g and TINI_KILL_PROCESS_GROUP, dumb-init's
// DUMB_INIT_SETSID and -c, and the default (tini's: CMD alone).
func TestProcessGroupSignalling(t *testing.T) {
	for _, tc := range []struct {
		name   string
		env    []string
		args   []string
		group  bool // the child gets the signal too
		setsid bool // CMD leads its own session
	}{
		{"default", nil, nil, false, false},
		{"-g", nil, []string{"-g"}, true, false},
		{"TINI_KILL_PROCESS_GROUP", []string{"TINI_KILL_PROCESS_GROUP=1"}, nil, true, false},
		{"DUMB_INIT_SETSID=1", []string{"DUMB_INIT_SETSID=1"}, nil, true, true},
		{"DUMB_INIT_SETSID=0", []string{"DUMB_INIT_SETSID=0"}, nil, false, false},
		{"DUMB_INIT_SETSID=1 -c", []string{"DUMB_INIT_SETSID=1"}, []string{"-c"}, false, false},
		{"--single-child -g", nil, []string{"-g", "--single-child"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			needBinaries(t)
			r := start(t, spec{pidns: true, binary: bin.init, env: tc.env, args: append(append([]string{}, tc.args...), "--", "sh", "-c", groupCMD)})
			f := strings.Fields(r.waitOutput("pid="))
			pid, sid := f[0], strings.TrimPrefix(f[2], "sid=")
			if (sid == pid) != tc.setsid {
				t.Errorf("CMD %s is in session %s; its own session wanted: %v", pid, sid, tc.setsid)
			}
			r.waitOutput("child ready")
			r.signal(syscall.SIGUSR1)
			r.waitOutput("cmd got USR1")
			if !tc.group {
				// Only CMD got it: end the child ourselves, through init.
				r.signal(syscall.SIGUSR2)
			}
			r.expectExit(map[bool]int{true: 0, false: 128 + int(syscall.SIGUSR2)}[tc.group])
			if got := strings.Contains(r.stdout.String(), "child got USR1"); got != tc.group {
				t.Errorf("the child got the signal: %v, want %v\n%s", got, tc.group, r.stdout.String())
			}
		})
	}
}

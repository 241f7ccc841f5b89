package e2e

import (
	"testing"
)

// scenario is one end-to-end story, played against an agent: on the host
// (TestHost, cgroupfs, a fresh agent each) and in the container
// (TestSystemd, the socket-activated agent with the systemd backend).
type scenario struct {
	name string
	fn   func(t *testing.T, a *agent)
}

var scenarios = []scenario{
	{"PerlExample", testPerlExample},
	{"PythonExample", testPythonExample},
	{"GoExample", testGoExample},
	{"RunKill9", testRunKill9},
	{"RunExecInPlace", testRunExecInPlace},
	{"RunOnDisconnect", testRunOnDisconnect},
	{"RunNested", testRunNested},
	{"Watch", testWatch},
	{"WatchTargetPidReused", testWatchPidReuse},
	{"OtherUID", testOtherUID},
	{"BadInput", testBadInput},
	{"CLI", testCLI},
	{"Concurrent500", testConcurrent},
}

// TestHost plays every scenario against an orphand started on this host
// with the cgroupfs backend under a cgroup root of its own.
func TestHost(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			a := startAgent(t, "")
			sc.fn(t, a)
		})
	}
}

package proc

import (
	"log/slog"
	"time"
)

// Name is the backend's name, as shown to users.
const Name = "proc"

// How forks are seen, as reported by [Backend.Tracking].
const (
	// TrackConnector: fork and exit events from the kernel's proc
	// connector; a fork is seen with its parent named, so a child is
	// tracked even if its parent exits at once.
	TrackConnector = "proc-connector"
	// TrackRescan: /proc is walked again when a tracked process exits and
	// every RescanInterval; a double fork completed between two walks is
	// not seen.
	TrackRescan = "proc-rescan"
)

// DefaultRescanInterval is the fallback's periodic rescan interval.
//
// It is the one place orphand polls while nothing happens, because without
// the proc connector the kernel offers no notification of a fork to a
// process that is neither the parent nor a tracer. Shorter narrows the gap
// for children that outlive their parent, at a cost that grows with the
// number of tracked processes; the loop therefore never spends more than
// about 5% of a CPU (the pause is at least 20 times the last walk), and it
// runs only while groups exist.
const DefaultRescanInterval = 250 * time.Millisecond

// DefaultReceiveBuffer is the proc connector socket's receive buffer. The
// connector reports every fork and exit on the host, not only tracked
// ones; 4 MiB holds a few thousand events, so that a burst of forks
// elsewhere does not overflow it while the agent is busy.
const DefaultReceiveBuffer = 4 << 20

// Config configures [Open].
type Config struct {
	// NoConnector forces the fallback (rescans on exits and every
	// RescanInterval) even where the proc connector works: for tests, and
	// for hosts where the event stream costs too much.
	NoConnector bool
	// RescanInterval is the fallback's periodic rescan interval; zero
	// means DefaultRescanInterval.
	RescanInterval time.Duration
	// ReceiveBuffer is the proc connector socket's receive buffer in
	// bytes; zero means DefaultReceiveBuffer.
	ReceiveBuffer int
	// Logger receives the probe result and rare warnings; nil discards
	// them.
	Logger *slog.Logger
}

// Limitations says in plain words what the proc backend cannot promise
// when it tracks with the given method (TrackConnector or TrackRescan).
// The agent shows it in status and hello.
func Limitations(tracking string) []string {
	first := "a double fork (fork, fork, exit of the middle process: how a setsid daemon starts) completed between two walks of /proc escapes: the grandchild is reparented before it is seen"
	if tracking == TrackConnector {
		first = "if the kernel drops proc connector events (the socket buffer overflowed), every group is walked again, and a double fork completed while events were lost escapes"
	}
	return []string{
		first,
		"after an agent restart, processes reparented while no agent ran are not found again: nothing of a group is kept in the kernel",
		"processes are tracked, not contained: no cgroup, so no resource limits and no cgroup.kill",
	}
}

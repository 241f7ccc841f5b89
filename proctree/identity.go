package proctree

import "fmt"

// Identity names one process for all time, so that it can be persisted and
// checked again later (for example across an agent restart): its pid, its
// start time (field 22 of /proc/<pid>/stat, in clock ticks after boot) and,
// where the kernel has pidfs (Linux >= 6.9), the inode number of its pidfds.
//
// The start time alone is not enough: it counts ticks of 10 ms, and a pid
// can be freed and given to a new process within one tick (a pid namespace
// with few processes, ns_last_pid, a fork storm wrapping pid_max). The pidfs
// inode is unique among all processes since boot and settles it; where it is
// unknown (Ino 0, older kernels, or records written before it was added)
// only pid and start time are compared. [Identity.Same] is that comparison.
type Identity struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
	Ino       uint64 `json:"ino,omitempty"`
}

func (id Identity) String() string {
	if id.Ino != 0 {
		return fmt.Sprintf("%d@%d#%d", id.Pid, id.StartTime, id.Ino)
	}
	return fmt.Sprintf("%d@%d", id.Pid, id.StartTime)
}

// Same reports whether id and b name the same process, as far as the fields
// both know can tell: pid and start time must match, and so must the pidfs
// inodes where both sides have one (an inode recorded on one side only, as
// in a record written by an older version, is not a difference).
func (id Identity) Same(b Identity) bool {
	return id.Pid == b.Pid && id.StartTime == b.StartTime && (id.Ino == 0 || b.Ino == 0 || id.Ino == b.Ino)
}

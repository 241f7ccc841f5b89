package proctree

// ReaperState is the reaper status of the calling process, after procctl's
// PROC_REAP_STATUS.
type ReaperState struct {
	// Acquired is true when the process is a child subreaper
	// ([AcquireReaper]).
	Acquired bool
	// Init is true when the process is PID 1 of its pid namespace. Such a
	// process inherits every orphan of its namespace whatever Acquired says
	// (Acquired reports only the subreaper attribute, which PID 1 does not
	// need and usually does not have), and when it exits the kernel kills
	// every process in the namespace.
	Init bool
	// Children counts the direct children, zombies included.
	Children int
	// Descendants counts all descendants, children included, zombies
	// included.
	Descendants int
	// Zombies counts the descendants that have exited but are not reaped.
	Zombies int
	// FirstPid is the first descendant that is still running, in
	// breadth-first order (children first, oldest first), or -1 when none
	// is: procctl's "kill it, wait for it, and loop" target.
	FirstPid int
}

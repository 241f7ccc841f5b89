// Package proc is the cgroup backend for hosts and containers where the
// agent cannot create cgroups. A group is the processes placed in it and
// their descendants, found in /proc and held by pidfd (pidfd_open(2)) from
// the moment they are found: a pid is trusted only at that moment, and
// every signal goes through the pidfd, so a process that later reuses a
// tracked pid is never signalled.
//
// It keeps the [cgroup.Backend] contract with weaker guarantees, which
// [Limitations] states in plain words for the agent's status and hello.
//
// # Finding descendants
//
// A process is adopted when it is a child of a tracked process: a walk of
// /proc/<pid>/task/*/children ([proctree.Descendants]) yields pids, and a
// pid is adopted only after the pidfd opened for it shows, through
// /proc/<pid>/stat read afterwards, that its parent is a tracked process
// that has not been reaped (so the parent pid still named it). A child
// joins its parent's group. Once adopted, a process stays tracked when it
// is reparented; it leaves only by exiting, by [Group.Attach] to another
// group, or by [Group.Remove].
//
// Forks are followed in one of two ways, probed once by [Open] and logged:
//
//   - The proc connector (NETLINK_CONNECTOR, CN_IDX_PROC;
//     drivers/connector/cn_proc.c), when the agent has CAP_NET_ADMIN and
//     runs in the initial pid and user namespaces (the kernel answers no
//     one else; the probe waits for its acknowledgement). One socket,
//     read by one goroutine, serves every group. The kernel reports a
//     fork before the child runs and before the parent can exit, and an
//     exit before the pid can be reused, in order; so the child of a
//     tracked process is adopted even when its parent exits at once — a
//     double fork is caught. A child already gone when its event is read
//     is kept as a "ghost" (its pid only) until its exit event, so that
//     the forks it made are attributed too. A child is opened by pid after its event
//     and accepted only if it started no later than the event. When the
//     socket's buffer overflows the kernel drops events (ENOBUFS): every
//     group is walked again, and a double fork completed meanwhile is
//     lost. To catch up with forks (before listing or killing), the
//     backend sends the kernel a marker and waits for its answer, which
//     is queued behind every event already queued. The socket and the
//     messages (fixed-size structs of linux/cn_proc.h) are handled here
//     with golang.org/x/sys/unix: a netlink library (mdlayher/netlink)
//     would add modules for one bind, one subscription and one read loop.
//   - Otherwise, the fallback: a group is walked again when one of its
//     processes exits (one [proctree.Watcher] for all) and periodically,
//     every [Config.RescanInterval] (default [DefaultRescanInterval])
//     while groups exist. That periodic walk is the one place orphand
//     polls while nothing happens: without the proc connector, no kernel
//     interface reports a fork to a process that is neither the parent
//     nor a tracer. The pause is at least 20 times the last walk's
//     duration, so walking costs at most about 5% of a CPU. A double fork
//     completed between two walks escapes: its grandchild is reparented
//     (to init or the nearest child subreaper) before it is seen.
//
// Either way, a process forked before its group was registered whose
// parent had already exited (a daemon that double-forked earlier) is not
// found: nothing links it to the group any more.
//
// # Groups
//
// A process belongs to one group: attaching a tracked process moves it,
// with its descendants tracked in a group the new one is nested in (as
// the agent moves a spawner's descendants that share its cgroup); Create's
// pids move likewise. A group created with a Parent (of this
// backend) is nested: the parent's Members include the nested group's,
// and killing the parent kills them — they descend from the parent's
// processes. Removing a group removes the groups nested in it. The
// agent's own process and its ancestors are never tracked.
//
// # Killing
//
// [Group.Kill] signals through pidfds, oldest process first (parents
// before children), and returns when nothing tracked is running — never
// waiting for a process (zombies are their parents' to reap): the polite
// signal and grace, then, in the fallback, stopping the tree (SIGSTOP, walk,
// repeat until nothing new: a process with a signal pending cannot
// complete a fork, so a stopped process's children are all visible), then
// SIGKILL, wait for the exits, catch up with forks, and repeat until
// nothing tracked remains. A process adopted during a kill is signalled at
// once. KillResult.Method is "pidfd" ("signal" when the polite signal was
// enough).
//
// # Restarts
//
// Nothing of a proc group is kept in the kernel. [Group.Ref] carries the
// group id only (no cgroup path, no unit); [Backend.Load] and
// [Backend.Groups] know only the groups of the running instance. After an
// agent restart, the agent re-creates a group from its own record: it
// re-opens the spawner by identity ([proctree.OpenIdentity], or a pidfd
// kept in systemd's fd store) and calls [Backend.CreateWith]
// ([cgroup.Recreator]) with the same id and the spawner's pidfd; the
// spawner's descendants are walked again. Those reparented while the agent
// was down are not found.
//
// # Costs
//
// One pidfd per tracked process (two in the fallback, whose exit watch
// holds a duplicate). With the proc connector, the agent reads an event
// for every fork, exec and exit on the host, tracked or not.
//
// Linux only; elsewhere [Open] fails with an error wrapping
// [cgroup.ErrUnavailable].
package proc

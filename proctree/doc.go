// Package proctree holds processes by pidfd and controls the process tree
// beneath the calling process: the Linux counterpart of DragonFly's and
// FreeBSD's procctl(2) reaper operations, and a zombie reaper that is safe
// to run next to os/exec.
//
// It provides:
//
//   - [Process]: a process held through a pidfd (pidfd_open(2)), with its
//     [Identity] (pid, start time from /proc/<pid>/stat, and the pidfs inode
//     where the kernel has one) verified at open time. Signals go through the pidfd (pidfd_send_signal(2)), so a
//     *Process never signals a newcomer that reused its pid. [Process.Wait]
//     waits for exit by pidfd readiness on Go's netpoller: no polling, and no
//     OS thread per waiter.
//   - [Watcher]: the exits of thousands of processes on one goroutine and
//     one epoll instance, for programs where a goroutine per process costs
//     too much.
//   - [Descendants]: a walk of /proc/<pid>/task/*/children that tolerates
//     processes vanishing mid-walk; [Children] reads one level of it.
//   - Reaper control with procctl's semantics: [AcquireReaper],
//     [ReleaseReaper], [ReaperStatus] (PR_SET_CHILD_SUBREAPER and /proc),
//     [KillDescendants] (PROC_REAP_KILL's loop), [SetParentDeathSignal] and
//     [ParentDeathSignal] (PR_SET_PDEATHSIG, with its per-thread pitfalls
//     handled).
//   - [StartReaper] and [Reap]: go-reaper's job and configuration surface,
//     without stealing exit statuses from os/exec.
//   - Reading the kernel's view of a process, in one place for the whole
//     module: [ReadStat] and [ParseStat] (/proc/<pid>/stat, coping with any
//     comm), [ReadStatus] and [ParseStatus] (the Uid:, Gid:, CapPrm: and
//     NSpid: lines of /proc/<pid>/status), [PidNamespace], [BootID], and
//     [BootTicks], the clock of start times. [Identity.Same] is the one
//     comparison of two identities. These are a few lines each, fuzzed,
//     and read only the fields orphand uses: prometheus/procfs reads the
//     same files but brings its own file-system abstraction and
//     dependencies, and knows nothing of reading through a verified pidfd.
//
// # Reaping next to os/exec
//
// A process that is PID 1 or a child subreaper inherits orphans and must
// reap them, but a reaper that calls wait4(-1) also reaps the children that
// os/exec is about to wait for, and exec.Cmd.Wait then fails or reports the
// wrong status. The reaper here tells the two apart by ownership:
//
//   - Since Go 1.23 os.StartProcess starts every child with CLONE_PIDFD and
//     keeps that pidfd until its Wait has reaped the child. So a zombie child
//     for which a pidfd exists in this process's fd table has an owner that
//     will wait for it; a zombie child without one is an orphan (or was
//     forked without a handle) and is the reaper's. Pidfds in the fd table
//     are found by fstat (pidfs) or readlink ("anon_inode:[pidfd]") of
//     /proc/self/fd/N, and the process each refers to by PIDFD_GET_INFO or
//     the Pid: line of /proc/self/fdinfo/N.
//   - Pidfds that proctree opened itself ([Process], [Watcher]) are no
//     promise to wait and are excluded: they are kept in a registry by fd
//     number, inode and pid, added after the fd is opened and removed before
//     it is closed, so that a reused fd number is never mistaken for one of
//     them.
//   - A reaping pass holds syscall.ForkLock for reading: os/exec and
//     syscall.ForkExec hold it for writing around clone, so no child can be
//     born (and no pid of ours reused) during the pass. If nothing is owned
//     (no foreign pidfd, no claim), every zombie child is the reaper's and
//     it calls wait4(-1, WNOHANG) in a loop, like tini. Otherwise it lists
//     its children (/proc/self/task/*/children) and reaps each unowned
//     zombie by pid.
//   - Children started without a pidfd (syscall.ForkExec, C code) can be
//     protected with [ClaimChild]. os/exec needs pidfds to work (Linux 5.4,
//     no seccomp filter against them): [StartReaper] checks and refuses to
//     run otherwise ([ErrNoPidfd]).
//
// The reaper is driven by SIGCHLD through os/signal. SIGCHLD is coalesced,
// so each one drains every waiting zombie. Nothing wakes it while nothing
// exits. A zombie left to its owner is looked at again on the next SIGCHLD
// and, only while such zombies exist, after a backoff from 1 s to 30 s: that
// catches an owner that released its handle without waiting
// ((*os.Process).Release). Statuses go to [ReaperConfig.StatusChannel]
// without ever blocking reaping: a bounded backlog absorbs a slow reader,
// and beyond it each status is dropped, counted and logged.
//
// One owner of wait: at most one Reaper runs in a process. [KillDescendants]
// hands its reaping to the running Reaper, and without one it reaps by pid
// only the zombies that are its doing.
//
// # Pid namespaces and /proc
//
// Pids read from /proc are those of the pid namespace /proc was mounted for.
// A process that enters a new pid namespace (as PID 1 of a container) must
// mount a /proc of its own; [StartReaper] checks it.
//
// Linux only; on other systems the functions return [ErrUnsupported].
package proctree

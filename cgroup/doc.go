// Package cgroup makes groups of processes that nothing escapes, and kills
// them completely.
//
// Membership of a cgroup v2 is inherited at fork, so double forks and
// setsid daemons stay inside their group. The contract between the agent
// and a backend is one file, backend.go: the [Backend] and [Group]
// interfaces with what each method guarantees, and the optional ones a
// backend may add ([DirOpener], [Recreator], [Placer], [Placed],
// [Tracker]). It is implemented by the cgroupfs backend (directories under
// a subtree the agent owns, package cgroup/cgroupfs), the systemd backend
// (transient scopes, package cgroup/systemd) and, without a writable
// cgroup v2, the proc backend (package cgroup/proc); package cgroup/auto
// picks one.
//
// This package holds what both share, on the kernel's cgroup v2 interface
// (Documentation/admin-guide/cgroup-v2.rst):
//
//   - discovery: [Discover] finds the cgroup2 mount in
//     /proc/self/mountinfo and checks it with statfs(2)
//     (CGROUP2_SUPER_MAGIC); [Mount].Layout tells unified, hybrid and none
//     apart. No path is assumed.
//   - [FS]: the opened hierarchy. Every file is opened beneath a descriptor
//     of the mount with openat2(2) (RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
//     RESOLVE_NO_XDEV), or on kernels without it one component at a time
//     with O_NOFOLLOW and a device check, so a hostile group name cannot
//     walk out. [FS.Probe] finds out once whether cgroup.kill and
//     cgroup.freeze work.
//   - the kill pipeline, [FS.Kill]: optional polite signal by pidfd and a
//     grace period, then cgroup.kill, or where that is missing freeze +
//     SIGKILL by pidfd + thaw until empty; done means "populated 0" in
//     cgroup.events, watched with inotify armed before the kill. It never
//     reaps: an empty group may still leave zombies to their parents.
//   - parsers that take an io.Reader and are fuzzed: [FindMount]
//     (mountinfo; its lines parsed by github.com/moby/sys/mountinfo, as in
//     runc and containerd), [ParseProcCgroup] (/proc/<pid>/cgroup, read
//     for the whole module by [ProcessCgroup]) and [ParseEvents]
//     (cgroup.events).
package cgroup

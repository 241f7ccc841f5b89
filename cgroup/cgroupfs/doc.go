// Package cgroupfs is the cgroup backend for hosts without systemd (or
// where the agent owns a delegated subtree): each group is a cgroup v2
// directory, named after the group id, under a root the agent owns.
//
// The root is, in order: the configured one (the agent's --cgroup-root);
// the agent's own cgroup when systemd delegated it (Delegate=yes, seen as
// the trusted.delegate or user.delegate extended attribute systemd sets),
// in which case the agent first moves itself into the leaf "<own>/agent"
// (with controllers delegated, cgroup v2 allows processes only in leaves)
// and creates groups under "<own>/groups"; else "/orphand" at the top of
// the cgroup2 mount — except for a per-user agent (Config.User), which
// never uses that shared default and fails instead, saying how to delegate
// a cgroup to the user. A nested group is a subdirectory of its parent group,
// so killing the parent kills it too.
//
// All file access goes through [cgroup.FS] (openat2 beneath the mount),
// and kills through its shared pipeline. The kernel interface is
// Documentation/admin-guide/cgroup-v2.rst.
//
// containerd/cgroups' cgroup2 package was considered for create, load,
// procs and delete. It is not used: it opens files by joined path strings
// (no RESOLVE_BENEATH), its Delete is os.RemoveAll (which tries to unlink
// interface files) with a fixed retry and no context, its Kill does not
// wait and its fallback reaps processes that are not its own, and it would
// add ~35 modules to the agent for four system calls.
package cgroupfs

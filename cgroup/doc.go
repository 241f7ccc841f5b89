// Package cgroup makes groups of processes that nothing escapes, and kills
// them completely.
//
// Membership of a cgroup v2 is inherited at fork, so double forks and
// setsid daemons stay inside their group. The [Backend] and [Group]
// interfaces are implemented by the cgroupfs backend (directories under a
// subtree the agent owns) and the systemd backend (transient scopes).
package cgroup

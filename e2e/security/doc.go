// Package security attacks a real orphand agent from unprivileged
// accounts and checks that every attempt fails the way docs/SECURITY.md
// says it must.
//
// The tests start the orphand binary on the host (cgroupfs backend, a
// cgroup root of their own) and speak to it as other uids (65534, 65533,
// 65532, which need no /etc/passwd entry): the test binary re-executes
// itself with those credentials as a small client. They try to register,
// watch, attach and kill what those uids may not (root's processes,
// another user's groups, PID 1, the agent, its parent, a kernel thread),
// reuse the pid of a watch target and of a spawner (through
// /proc/sys/kernel/ns_last_pid), build group names and ids meant to leave
// the cgroup tree, send oversized and malformed frames, trickle bytes,
// and open thousands of connections. Every attempt must be refused with
// the right code, no process the attacker may not kill may die (victims
// are held by pidfd and checked), nothing may appear on disk outside the
// agent's cgroup root, and the agent must still serve others throughout.
//
// The tests need root (ORPHAND_TEST_STRICT=1 turns the skip into a
// failure, as in CI). This package holds no code outside its tests.
package security

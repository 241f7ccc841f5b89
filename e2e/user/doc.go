// Package user proves the per-user agent: orphand run by an ordinary user,
// without root, for that user's own processes (docs/user.md).
//
// Without systemd, on the host (as root, which plays the administrator and
// then drops to unprivileged uids that need no /etc/passwd entry):
//
//   - the agent run by a user with nothing delegated to it picks the proc
//     backend and says, in its log and in hello and status, that it has no
//     proc connector and that a setsid daemon can escape; a spawner's
//     children die with it, and a daemon that escaped is reported as the
//     agent said it could be;
//   - the agent run in a cgroup delegated to the user (chowned, marked
//     user.delegate, as systemd marks one) picks the cgroupfs backend, and
//     the Go, Perl and Python example clients, finding the agent's socket
//     on their own, die with everything they started, setsid daemons
//     included; the agent SIGKILLed and started again keeps its groups;
//   - another uid that reaches the socket despite its directory's mode
//     (CAP_DAC_OVERRIDE), and root, are refused.
//
// In a real systemd (internal/nspawn: Debian 12, systemd 252, a user
// manager started with systemctl start user@UID.service): the packaged
// user units enabled with one systemctl --user command, the agent started
// by its socket, a spawner in a user service with a setsid grandchild
// SIGKILLed and its whole subtree gone, the group a scope under
// user@UID.service bound to the spawner's unit, a spawner from outside the
// user's manager (a system service running as the user) placed in the
// user's app.slice, a second user refused, and the agent SIGKILLed,
// restarted by systemd, keeping its groups (fd store in use).
//
// The tests need root (ORPHAND_TEST_STRICT=1 turns the skip into a
// failure, as in CI). This package holds no code outside its tests.
package user

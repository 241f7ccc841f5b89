// Package harness is what orphand's end-to-end suites (e2e, e2e/restart
// and e2e/security) share, so that each keeps only its own story:
//
//   - a Run: the mark every process a suite starts carries in its
//     environment and the prefix of every cgroup it makes, and the sweep
//     after the suite that finds, reports and removes what it left behind
//     (only its own: a run beside it has another mark);
//   - building the programs under test (GoBuild) and copying files;
//   - starting `orphand serve` on the host (Host, Daemon): a directory
//     every uid can reach for its socket, configuration and state, a cgroup
//     root of its own, and a stand-in for systemd's notification socket
//     that tells when the agent serves;
//   - giving a new process a chosen pid through
//     /proc/sys/kernel/ns_last_pid (ReusePid, SetLastPid), to test what
//     happens when a pid is reused.
//
// Helpers that need a test take a testing.TB and skip, through
// internal/testutil, when root or a command is missing (CI's
// ORPHAND_TEST_STRICT=1 turns those skips into failures). The package is
// for tests only; nothing in the product imports it.
package harness

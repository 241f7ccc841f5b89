// Package e2e tests orphand end to end, as a user would: it builds the real
// orphand and orphanctl binaries, starts the agent (on the host with the
// cgroupfs backend, and in a systemd-nspawn container started by a socket
// unit with the systemd backend) and drives it with orphanctl and the
// example clients in Perl, Python and Go.
//
// The tests need root; `go test ./e2e/` runs them (CI runs them with
// ORPHAND_TEST_STRICT=1, so that nothing is skipped). After the suite, it
// checks that nothing was left behind: no process started by it, no cgroup
// it created. The benchmarks of the agent (kill latency against a raw
// cgroup.kill, registration latency, RSS and idle wakeups) live here too;
// docs/benchmarks/agent.md has their method and results.
//
// This package holds no code outside its tests.
package e2e

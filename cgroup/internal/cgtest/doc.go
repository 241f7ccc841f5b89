// Package cgtest holds what the tests of the cgroup packages share: a test
// root cgroup per test binary that Main checks is left empty, per-test
// cgroups under it, and a hostile workload (double-forked setsid daemons
// that ignore SIGTERM, a multi-threaded process, a stopped process and a
// process forking in a tight loop) run by re-executing the test binary.
//
// It deliberately does not use package cgroup: the check that nothing is
// left behind must not trust the code under test. Linux only.
package cgtest

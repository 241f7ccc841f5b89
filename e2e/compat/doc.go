// Package compat tests the agent's compatibility socket end to end, as a
// user migrating from the original orphand would use it: with that
// daemon's clients, rewritten for the tests from its wire format and kept
// in testdata — orphand-forkwait.so (forkwait.c, an LD_PRELOAD library
// that registers every child a program forks and unregisters it once
// waited for) and the Perl client (client.pl, core Perl only). The C files
// are compiled with the system cc when the tests run; nothing is fetched.
//
// The tests build the real orphand, start it on the host (cgroupfs
// backend, a cgroup root of their own) with --compat-socket, and check
// the promise: a parent under the preload library is SIGKILLed and every
// child it forked, and every process those children started, is gone
// (the time is logged; the benchmark reports it); children it waited for,
// and what they left, are never touched; PING echoes. Hostile tests run as
// unprivileged uids: naming root's processes, reusing a registered
// child's pid before the parent dies, and a thousand connections each
// holding half a record.
//
// The benchmarks compare the original daemon's mechanism (oldpoll.c: its
// 2-second sweep, reimplemented) with the compatibility socket, side by
// side, and measure what fork() and waitpid() cost under the preload
// library (docs/BENCHMARKS.md).
//
// The tests need root, cc and perl (ORPHAND_TEST_STRICT=1 turns a skip
// into a failure, as in CI). This package holds no code outside its tests.
package compat

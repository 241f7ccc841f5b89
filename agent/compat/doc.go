// Package compat speaks the original orphand's wire protocol, so that its
// clients — the Perl client and orphand-forkwait.so, an LD_PRELOAD library
// that registers every child a program forks — work unchanged against the
// agent. docs/protocol.md ("The compatibility socket") is the wire format;
// docs/compat.md is the migration guide.
//
// The protocol: a Unix stream socket carrying records of 12 bytes, three
// unsigned 32-bit integers in host byte order — parent, child, action.
// Action 1 (REGISTER) asks that child be killed when parent dies, 2
// (UNREGISTER) withdraws that (the parent has waited for the child), 3
// (PING) is echoed. There is no answer to anything else: a client cannot
// tell a refused record from a registered one, so every record dropped is
// logged instead (rate-limited per uid and reason, as the agent's socket
// logs its refusals).
//
// This package is the protocol and its server, and knows nothing of
// groups: [Reader] cuts a byte stream into records (fuzzed), and [Server]
// accepts connections, reads each peer's credentials ([peercred]) at
// accept, reads records promptly and hands every REGISTER and UNREGISTER
// to a [Handler] on a pool of workers, so that a client writing from inside
// fork() never waits for the agent's work. The agent is the Handler: it
// turns a REGISTER into a group and an UNREGISTER into a release.
//
// Connections are one per record (orphand-forkwait.so connects, writes and
// closes inside fork() and waitpid()) or many records on one. Records of
// one connection, and connections in the order they were accepted, are
// numbered ([Seq]), so that the handler can tell an UNREGISTER that
// overtook its REGISTER on the way to a worker.
package compat

// Package peercred tells a Unix socket server who is at the other end of a
// connection: the uid, gid and pid the kernel recorded when the peer
// connected (SO_PEERCRED, socket(7)), and the peer's process held by a
// pidfd, so that the server acts on that process and never on a newcomer
// that reused its pid.
//
// Where the kernel has SO_PEERPIDFD (Linux 6.5+) it gives the pidfd
// itself, with no race. Elsewhere [Reader.Read] opens a pidfd for
// SO_PEERCRED's pid and accepts it only if that process started no later
// than the connection was accepted ([proctree.BootTicks] at accept; the
// resolution is one clock tick, 10 ms: a newcomer that reused the pid
// within the same tick is not detected). [PidfdSupported] probes once per
// process which way works.
//
// The agent's socket uses it, and so will any other socket the agent serves
// (the compatibility socket of the old protocol). Package family, which
// stands alone (it imports nothing of the module), checks its peers itself.
package peercred

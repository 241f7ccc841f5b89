// Package peercred probes, once per process, whether the kernel gives a
// Unix socket's peer as a pidfd (SO_PEERPIDFD, Linux 6.5+): with it, a
// server holds the very process that connected, without the pid-reuse race
// of SO_PEERCRED's pid. The agent and package family both ask it at start
// and fall back to SO_PEERCRED when it says no.
package peercred

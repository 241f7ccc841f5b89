// Package orphand is the root of the orphand module: a Linux host agent that
// guarantees no process outlives the process that spawned it.
//
// The module is laid out by architecture:
//
//	cmd/orphand      the agent binary (serve, init, version) — wiring only
//	cmd/orphanctl    the command-line client — wiring only
//	agent            registrations, triggers, the kill pipeline's driver
//	cgroup           cgroup v2 discovery, groups and the kill pipeline; backends in
//	                 cgroup/cgroupfs, cgroup/systemd, cgroup/proc, chosen by cgroup/auto
//	proctree         processes held by pidfd, descendants, subreaper control, the reaper
//	policy           who may ask the agent for what (peer credentials, rules, quotas)
//	ipc              the agent's wire protocol (JSON lines) and its Go client
//	ipc/family       children reporting named values and queues to their master
//	pid1             the container init (orphand init) and a one-call PID 1 helper
//
// This package holds no code; it exists to document the layout and to host
// repository-wide tests.
package orphand

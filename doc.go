// Package orphand is the root of the orphand module: a Linux host agent that
// guarantees no process outlives the process that spawned it.
//
// The module is laid out by architecture:
//
//	cmd/orphand      the agent binary (serve, init, version) — wiring only
//	cmd/orphanctl    the command-line client — wiring only
//	agent            registrations, triggers, the kill pipeline's driver
//	agent/config     the TOML configuration file
//	agent/state      the durable records that survive a restart
//	cgroup           cgroup v2 discovery, groups and the kill pipeline; backends in
//	                 cgroup/cgroupfs, cgroup/systemd, cgroup/proc, chosen by cgroup/auto
//	proctree         processes held by pidfd, descendants, subreaper control, the reaper
//	policy           who may ask the agent for what (peer credentials, rules, quotas)
//	ipc              the agent's wire protocol (JSON lines) and its Go client
//	family           children reporting named values and queues to their master
//	                 (stands alone: shares nothing with the agent's protocol)
//	pid1             the container init (orphand init) and a one-call PID 1 helper
//	internal/...     signal names, version, systemd's fd store, the SO_PEERPIDFD
//	                 probe (peercred), test helpers
//	                 (testutil, nspawn: a real systemd in a container for tests)
//	e2e              end-to-end tests of the real binaries (restart, security)
//	contrib/systemd  the units; packaging: .deb and .rpm (nfpm)
//
// This package holds no code; it exists to document the layout and to host
// repository-wide tests.
package orphand

// Package orphand is the root of the orphand module: a Linux host agent that
// guarantees no process outlives the process that spawned it.
//
// The module is laid out by architecture (docs/ARCHITECTURE.md has the
// parts, the arrows between them and the import rules that
// imports_test.go enforces):
//
//	cmd/orphand      the agent binary (serve, init, version) — wiring only
//	cmd/orphanctl    the command-line client — wiring only
//	agent            registrations, triggers, the kill pipeline's driver
//	agent/config     the TOML configuration file
//	agent/state      the durable records that survive a restart
//	agent/internal   the agent's leaf mechanisms: request lines and deadlines
//	                 (wire), kill workers, rate-limited logging, crash points,
//	                 the fd store probe
//	cgroup           cgroup v2 discovery, groups and the kill pipeline, and the
//	                 backend contract (backend.go); backends in cgroup/cgroupfs,
//	                 cgroup/systemd, cgroup/proc, chosen by cgroup/auto
//	proctree         processes held by pidfd and their identity, /proc read in
//	                 one place, descendants, subreaper control, the reaper
//	policy           who may ask the agent for what (peer credentials, rules, quotas)
//	ipc              the agent's wire protocol (JSON lines) and its Go client
//	family           children reporting named values and queues to their master
//	                 (stands alone: shares nothing with the agent's protocol)
//	pid1             the container init (orphand init) and a one-call PID 1 helper
//	internal/...     peer credentials (peercred), signal names, version, systemd's
//	                 fd store, test helpers (testutil, nspawn: a real systemd in a
//	                 container for tests), the registration path count (regpath)
//	e2e              end-to-end tests of the real binaries (restart, security)
//	contrib/systemd  the units; packaging: .deb and .rpm (nfpm)
//
// This package holds no code; it exists to document the layout and to host
// repository-wide tests (every package documented; the import rules).
package orphand

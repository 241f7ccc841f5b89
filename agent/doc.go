// Package agent is the orphand agent: it serves protocol v1 (package ipc)
// on a Unix socket, keeps a registry of groups, watches every spawner
// through its pidfd and kills a group the moment its trigger fires.
//
// [New] takes a [Config], a cgroup backend and a logger; [Agent.Run] takes
// the listener (the caller owns it: systemd's socket or its own) and returns
// only when every goroutine it started has ended.
//
// # Connections
//
// Each connection has one goroutine that reads a line, handles it and
// writes the response; a client that sends nothing, or half a line, holds
// up nobody else. A line longer than Config.Conn.MaxRequest (at most
// ipc.MaxLine, newline included) is answered with too_large and the
// connection is closed; invalid JSON, a request without "op" or an unknown
// op is answered with an error and the connection goes on. Blank lines are
// ignored. Responses may be longer than ipc.MaxLine (a list of thousands of
// groups). A client that does not read its responses within
// Config.WriteTimeout is disconnected.
//
// [ConnLimits] bound the rest: a request must arrive within IdleTimeout of
// connecting or of the previous response (a subscription and a holder of
// on=disconnect groups are exempt: they wait on purpose), and a line once
// begun must arrive whole within LineTimeout, or the agent answers
// limit_exceeded naming the limit and closes the connection. A line cut
// short by a deadline or a reset is never served. Connections are counted
// per uid and in total (policy.Limits); the last few of the total are kept
// for root, so that an admin can connect however many users flood the
// agent. The totals are lowered at start to fit RLIMIT_NOFILE.
//
// The caller is identified when it connects: uid and pid from SO_PEERCRED,
// and its process held by the pidfd SO_PEERPIDFD gives (Linux 6.5+). Where
// the kernel lacks SO_PEERPIDFD the agent opens a pidfd for the pid and
// accepts it only if that process started no later than the connection was
// accepted (clock-tick resolution: a newcomer that reused the pid within
// the same 10 ms tick is not detected). New probes which path works and
// logs it. A caller in another pid namespace may use every op, but may not
// name pids (its numbers mean nothing here); it registers itself by leaving
// "pid" out, if the agent can see its process at all.
//
// # Groups and their triggers
//
// register makes a subtree group: the spawner ("pid", default the caller)
// and its current descendants that share its cgroup are moved into a new
// cgroup (cgroupfs) or scope (systemd). A descendant in another cgroup was
// put there on purpose (a container runtime, systemd, another group) and is
// left alone; if it heads a top-level group of the same owner, the new
// group adopts that group as nested. After the move the agent looks for
// children forked meanwhile by members (born in the old cgroup) and
// attaches them, until a pass finds none: everything forked after that is
// born inside the group. One window remains: a process that forks and exits
// while the registration runs can orphan a grandchild outside the group;
// registering before starting children (as orphanctl run does) closes it.
//
// The trigger (on) is the spawner's exit ("exit", the default), seen when
// its pidfd becomes readable — a zombie counts — through one watcher for
// all spawners, with no polling. With on "disconnect" the trigger is instead
// the end of the connection that registered the group (EOF, a reset, or the
// agent closing it after too_large), for whatever reason other than the
// agent itself stopping — but the next agent, which cannot have that
// connection, kills the group when it starts (see Restart); the spawner's
// exit triggers nothing.
//
// watch makes a watch group, the seed's model: the watched process ("pid",
// default the caller) and the targets ("kill") are held as pidfds from the
// moment of registration, so a target whose pid is later reused by another
// process is never signalled. On the trigger the targets alive get the
// polite signal, up to the grace to exit, then SIGKILL, and the group is
// dead once every target has exited. A watch group has no cgroup: only the
// targets themselves die, not their children. watch takes "on" too, with
// the same meaning as for register.
//
// attach adds a process: to a subtree group, the process and its
// descendants that share its cgroup (with the same re-check); to a watch
// group, one more target. A process already in another group is refused.
//
// # Killing
//
// A trigger or a kill request moves the group to "killing" and hands it to
// a goroutine of its own (at most Config.ParallelKills run the pipeline at
// once), never to the watcher's goroutine: writing cgroup.kill blocks for
// tens of ms on big groups. A kill with a grace waits the grace out before
// it takes one of those workers, so that groups that ignore their polite
// signal for long graces delay nobody else's kill. The pipeline is the backend's (polite signal,
// grace, cgroup.kill or its fallback, wait for populated 0); then the
// cgroup is removed or the scope stopped. The group becomes "dead" with the
// number killed, and the killed event reports the time from the trigger to
// empty. kill answers once the group is empty; killing a dead group answers
// with what its kill counted. A kill that fails (rare: a backend error)
// leaves the group in "killing" and is retried by the next kill request.
//
// A group still populated Config.StuckAfter after SIGKILL is stuck: a
// process in uninterruptible sleep outlives SIGKILL until its kernel call
// returns. The agent flags the group (Stuck, a flag on a killing group:
// protocol v1 keeps its four states), publishes a stuck event, logs a
// warning naming each process left with its state, wchan, command line and
// cgroup v1 freezer, and sends SIGKILL again every StuckAfter on a goroutine
// of its own, so that stuck groups hold no worker. The flag clears when the
// group empties; its killed event says it had been stuck.
//
// # Observing
//
// The agent counts as it goes (metrics.go): groups by state, kills by
// reason, kill durations, processes killed, requests by op and result,
// stuck groups — each updated in constant time where what it counts
// changes, never by a walk of the groups. WithMetrics serves them, with the
// Go runtime's and the process's, over HTTP for Prometheus; status gives
// root the same figures. show and list carry each group's usage, read from
// its cgroup (package cgroup/usage); a dead group keeps the figures read
// before its cgroup was removed. Log lines about a group carry group,
// spawner_pid and event (fields ORPHAND_GROUP=… in the journal).
//
// # Nesting
//
// A process already inside a group may register its own: the new group
// nests in the group whose cgroup holds the spawner (or the one "parent"
// names, which the caller must control). With cgroupfs it is a
// subdirectory of the enclosing group's cgroup; with systemd a cgroup
// inside the enclosing group's scope (not a scope of its own); with the
// proc backend a group whose members count in the enclosing group's.
// Either way, killing a group kills every group nested in it (at any
// depth, the agent kills each), and a nested group's own trigger kills
// only itself.
//
// # Release
//
// release stops watching a group and leaves its processes alone, for good:
// the group becomes "released", a released group cannot be killed through
// the agent any more, and groups nested in it stay active. The processes
// stay in the group's cgroup (it is the only cgroup they have); the agent
// removes that cgroup once it is empty (checking with a backoff of 1 s
// doubling to 5 min, only while such groups exist), never before. A systemd
// scope is collected by systemd once empty. A released group nested in
// another group's cgroup (cgroupfs, systemd) is still inside it and dies
// with it.
//
// # Ended groups
//
// Dead and released groups stay visible in list and show for
// Config.DeadRetention, and at most Config.DeadMax of them (the oldest go
// first). A timer runs only while something is due, so an idle agent has no
// wake-ups.
//
// # Stopping
//
// When Run's context ends the agent stops accepting, lets requests in
// flight finish and kills in flight complete for up to Config.ShutdownGrace
// (then cancels them: such a group stays in "killing"), stops watching, and
// returns. It does not kill registered groups — their spawners are alive.
// With a [Durable] (WithDurable; the orphand binary always has one) their
// records stay on disk and the next agent takes them over; without one they
// are forgotten, and their cgroups stay in place.
//
// # The compatibility socket
//
// [WithCompat] serves the original orphand's 12-byte protocol on a second
// listener (package compat reads it; compat.go is its one entry into the
// agent). A REGISTER becomes a watch group with origin "compat": the
// record's parent is its spawner (watched like any spawner), the child its
// one target — and, unlike the watch op's groups, the child with its
// descendants is placed in a cgroup of its own, nested in the group that
// holds it, so that the parent's exit kills the child's subtree. The
// parent must be the sender or one of its descendants, the child a process
// the sender may signal. An UNREGISTER releases the pair's group; records
// are numbered in the order sent, so that one that overtakes its REGISTER
// on the way to the workers still wins (compat_pairs.go). Compat
// connections count against the same limits as the agent's; compat groups
// are recorded, restored and listed like every group (Record.Origin and
// CompatChild; a watch group with a cgroup is loaded on restore as a
// subtree group is).
//
// # Restart
//
// The agent may be killed at any instant; docs/restart.md has the whole
// story. With a Durable, every group's [Record] is written (package state:
// a journal, one flush per batch of changes) at every state change, and
// before a request that changes one is answered: a subtree registration
// writes its record once before its cgroup is made (state "registering") and
// again, active, before it answers; a kill request's killing record is on
// disk before anything is signalled (a trigger's kill starts at once: a
// restarted agent derives it again). A registration whose record cannot be
// written is undone and refused. Under systemd the pidfds of spawners and
// watch targets also go into the fd store ([FDStore]), named after their
// group, and leave it when the group ends.
//
// Run, before it serves, takes over what the records describe: a live
// spawner (found through its stored pidfd, else by pid, start time and
// pidfs inode — a pid reused meanwhile is never taken for the old process)
// is watched again; a group whose spawner died is killed at once; a group
// being killed is killed again for what is left of its grace; an
// on=disconnect group is killed, its connection having ended; a
// registration cut short is completed if its cgroup exists and forgotten
// otherwise; watch targets that died or whose pid was reused are dropped.
// Groups under the backend's root that no record names are left alone,
// reported in status (Unrecorded, to root) and removed once empty.
//
// # Authorization
//
// A per-user agent (Config.User: orphand run by a user, for that user's
// processes) first refuses, when they connect, every caller whose uid is
// not its own, root included (policy.MayConnect): its socket's mode keeps
// others out, and the peer credentials keep out one that gets past it.
// Every process the agent acts on passes package policy's rules, decided
// from facts read through the process's verified pidfd; every group op
// checks ownership (list, show, subscribe and the group counts of status
// cover only the caller's own groups, unless the caller is root). Quotas
// reserve a place before the work starts.
// Membership is checked when a process enters a group (register, attach);
// what its members start later belongs to the group whatever its uid (a
// sudo run from a registered shell), and dies with it — on the trigger as
// on a kill request — just as a systemd session scope takes its sudo
// children with it. Children caught by the re-check after a move are
// attached without a policy check for the same reason: had they been
// forked a moment later they would have been born inside.
//
// # Locking
//
// Agent.mu guards the registry and every group's mutable fields (see
// [Agent] for the list and the lock order: the persist lock, then
// Agent.mu, then the work queue's own lock, which a kill takes when it is
// queued with Agent.mu held). Watcher registrations and cancellations,
// pidfd closes and all I/O happen without it. Every state change goes
// through one function, transitionLocked, which also publishes the event
// and queues a copy of the group's [Record]; one goroutine (persistLoop)
// writes the queue without the lock, and whoever must wait for the disk
// waits on the queued write, never under the lock.
//
// # One package
//
// The agent stays one package under one lock. Its parts — the registry, the
// request handlers, the kill driver, restore, the queue of records, the
// subscribers — all work on the same group values under Agent.mu, and the
// invariants that keep them right span the parts: a state changes only in
// transitionLocked, which counts, publishes and queues the record in the
// same critical section; a kill marks a group and everything nested in it
// before any of their kills starts; restore enters groups as
// transitionLocked would have. Packages for these parts would have to
// export the group's fields and the lock, or put the registry behind an
// API with a lock of its own — more lock-order edges and two copies of the
// bookkeeping, for no reader's gain. What knows nothing of groups is apart
// instead, in packages of its own: state and config, and the leaf
// mechanisms under agent/internal. The cost is a package of some 7,000
// lines; the map below is how a reader finds their way in it.
//
// # Files
//
// The path of a registration runs through the first eight (see
// docs/ARCHITECTURE.md, which also tells the path of a kill).
//
//	conn.go                a connection: its peer, the read–handle–write loop, limits, writes
//	request.go             a request line decoded, the route table, protocol errors
//	ops_register.go        register: the spawner's tree collected, the group made, forks in flight caught, inserted
//	target.go              the process a request names: opened, checked against the policy, located
//	group.go               the group, its Record, a new group's settings and kill options
//	registry.go            state changes (transitionLocked), lookup, nesting, counts and quotas
//	persist.go             records written in batches; pidfds in systemd's fd store
//	subscribe.go           event subscribers and publishing
//
//	agent.go               Agent, New, Run, shutdown, the accept loop; the lock order
//	config.go              Config and ConnLimits, defaults and checks
//	host.go                what New probes about the agent's own process
//	ops_watch.go           watch, and attach (to either kind of group)
//	ops_control.go         kill, release, subscribe
//	ops_query.go           hello, list, show, status
//	kill.go                triggers, the kill of a group and of what nests in it, watch targets' kill
//	killqueue.go           a graced kill waits on a goroutine of its own, not on a worker
//	stuck.go               a kill that does not empty its group: reported, retried off the workers
//	metrics.go             the Prometheus collectors, and the calls that update them
//	metrics_serve.go       WithMetrics: the metrics served while Run runs
//	metrics_status.go      the same figures for status
//	usage.go               a group's usage: read live, kept final at its death
//	sweep.go               ended groups forgotten, lingering cgroups removed
//	watcher.go             the spawner watcher (proctree.Watcher)
//	reaper.go              the child subreaper
//	durable.go             Durable: the state directory and fd store an agent is given
//	restore.go             taking over the previous agent's groups: records decoded, linked, entered
//	restore_group.go       one group rebuilt: loaded, re-created, a cut-short registration completed
//	restore_fates.go       each restored group's fate (watch, kill, resume), the fd store synced
//	restore_unrecorded.go  groups under the backend's root that no record names
//	reacquire.go           recorded processes found again: handed-back pidfds, identity
//	filelimits_linux.go    totals lowered to fit RLIMIT_NOFILE
//
//	compat.go              the compatibility socket's entry: WithCompat, its server started and stopped, Admit, Handle
//	compat_register.go     a REGISTER's processes checked and its group made; an UNREGISTER's release
//	compat_pairs.go        groups by (parent, child), and the order of records that overtake each other
//
// Elsewhere: agent/state (the journal of records), agent/config (the TOML
// file), agent/compat (the original orphand's protocol and its server), and
// agent/internal/wire (request lines and read deadlines),
// workqueue (the kill workers), ratelog (refusals logged once a minute),
// crashpoint (test builds' crash points), fdstoreprobe (the fd store's
// size, asked of systemd) and promexport (the metrics' HTTP server and
// process collector).
package agent

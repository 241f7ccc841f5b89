package ipc

import (
	"encoding/json"
	"time"
)

// Protocol constants.
const (
	// Version is the protocol version this package speaks.
	Version = 1
	// MaxLine is the longest request or response line, newline included.
	MaxLine = 64 << 10
	// DefaultSocket is where the agent listens unless configured otherwise.
	DefaultSocket = "/run/orphand/orphand.sock"
	// SocketEnv overrides DefaultSocket for clients.
	SocketEnv = "ORPHAND_SOCKET"
)

// Operations.
const (
	OpHello     = "hello"
	OpRegister  = "register"
	OpWatch     = "watch"
	OpAttach    = "attach"
	OpList      = "list"
	OpShow      = "show"
	OpKill      = "kill"
	OpRelease   = "release"
	OpSubscribe = "subscribe"
	OpStatus    = "status"
)

// Modes of an agent (Response.Mode in hello, Status.Mode).
const (
	ModeSystem = "system" // the system agent: serves every user
	ModeUser   = "user"   // a per-user agent: serves the user who runs it, only
)

// Triggers of a group (Request.On, Group.On).
const (
	OnExit       = "exit"       // the spawner's exit (default)
	OnDisconnect = "disconnect" // the registering connection closing
)

// Group kinds.
const (
	KindSubtree = "subtree" // the spawner and every descendant
	KindWatch   = "watch"   // a watched pid and explicit targets
)

// Origins of a group (Group.Origin): where it was registered. A group
// registered over this protocol has no origin.
const (
	// OriginCompat: a REGISTER record on the agent's compatibility socket,
	// the original orphand's 12-byte protocol (docs/compat.md).
	OriginCompat = "compat"
)

// Group states.
const (
	StateActive   = "active"
	StateKilling  = "killing"
	StateDead     = "dead"
	StateReleased = "released"
)

// Event names streamed after a subscribe.
const (
	EventRegistered    = "registered"
	EventSpawnerExited = "spawner_exited"
	EventKilling       = "killing"
	EventKilled        = "killed"
	EventReleased      = "released"
	// EventStuck: a killing group is still populated Status's stuck_after
	// after SIGKILL (a process in uninterruptible sleep, a frozen cgroup).
	// The agent keeps killing; the killed event that ends it has Stuck set.
	EventStuck = "stuck"
)

// GroupsStuck is the key of Status.Groups that counts stuck groups. It is
// not a state: stuck groups are killing groups, counted under
// StateKilling as well.
const GroupsStuck = "stuck"

// Error codes.
const (
	CodeBadRequest       = "bad_request"
	CodeUnknownOp        = "unknown_op"
	CodeTooLarge         = "too_large"
	CodePermissionDenied = "permission_denied"
	CodeNotFound         = "not_found"
	CodeNoSuchProcess    = "no_such_process"
	CodeLimitExceeded    = "limit_exceeded"
	CodeUnsupported      = "unsupported"
	CodeInternal         = "internal"
)

// Codes lists every error code, for whoever must bound a set of them (the
// agent's metrics label requests by code).
var Codes = []string{
	CodeBadRequest, CodeUnknownOp, CodeTooLarge, CodePermissionDenied, CodeNotFound,
	CodeNoSuchProcess, CodeLimitExceeded, CodeUnsupported, CodeInternal,
}

// Limits, as an Error names them in Limit: with CodeLimitExceeded, or
// CodeTooLarge for LimitMaxRequest. This is the one place they are named:
// the agent's quotas (package policy) and connection limits use these.
const (
	LimitGroupsPerUID     = "groups_per_uid"      // active groups one uid owns
	LimitGroupsTotal      = "groups_total"        // active groups altogether
	LimitConnsPerUID      = "connections_per_uid" // open connections of one uid
	LimitConnsTotal       = "connections_total"   // open connections altogether
	LimitTargetsPerWatch  = "targets_per_watch"   // targets in one watch group
	LimitTargetsPerUID    = "targets_per_uid"     // watch targets one uid holds
	LimitTargetsTotal     = "targets_total"       // watch targets altogether
	LimitIdleTimeout      = "idle_timeout"        // no request for too long; the connection is closed
	LimitLineTimeout      = "line_timeout"        // a request line begun but not finished in time
	LimitMaxRequest       = "max_request"         // a request line too long (CodeTooLarge)
	LimitSubscriberBuffer = "subscriber_buffer"   // a subscriber too slow for its events
)

// Request is one request line. Which fields matter depends on Op; the rest
// are ignored.
type Request struct {
	Op string          `json:"op"`
	ID json.RawMessage `json:"id,omitempty"` // any JSON value, echoed verbatim

	Version int    `json:"version,omitempty"` // hello
	Pid     int    `json:"pid,omitempty"`     // register (default: the caller), watch, attach
	Name    string `json:"name,omitempty"`    // register, watch
	// GraceMS is the time between the polite signal and SIGKILL; nil means
	// the agent's default, 0 means SIGKILL at once.
	GraceMS *int64 `json:"grace_ms,omitempty"` // register, watch, kill
	Signal  string `json:"signal,omitempty"`   // register, watch: "SIGTERM", "TERM" or "15"
	On      string `json:"on,omitempty"`       // register: OnExit or OnDisconnect
	Kill    []int  `json:"kill,omitempty"`     // watch: target pids
	Group   string `json:"group,omitempty"`    // attach, show, kill, release, subscribe
	Parent  string `json:"parent,omitempty"`   // register: explicit parent group (optional)
}

// Response is one response line. On success OK is true and the fields of
// the op are set; on failure Error is set.
type Response struct {
	ID    json.RawMessage `json:"id,omitempty"`
	OK    bool            `json:"ok"`
	Error *Error          `json:"error,omitempty"`

	// hello
	Version  int      `json:"version,omitempty"`
	Agent    string   `json:"agent,omitempty"`
	Backend  string   `json:"backend,omitempty"`
	Features []string `json:"features,omitempty"`
	// Mode is ModeSystem or ModeUser (agents before per-user agents
	// existed leave it out: system).
	Mode string `json:"mode,omitempty"`
	// Limitations says, in plain words, what the backend cannot promise
	// (the proc backend: escapes it cannot see); empty for cgroup backends.
	Limitations []string `json:"limitations,omitempty"`

	Group   *Group  `json:"group,omitempty"`   // register, watch, show
	Members []int   `json:"members,omitempty"` // show: pids in the group
	Groups  []Group `json:"groups,omitempty"`  // list
	Killed  *int    `json:"killed,omitempty"`  // kill
	Status  *Status `json:"status,omitempty"`  // status
}

// Error is a failed request's reason.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Limit names the limit exceeded, for CodeLimitExceeded.
	Limit string `json:"limit,omitempty"`
}

func (e *Error) Error() string {
	if e.Limit != "" {
		return e.Code + ": " + e.Message + " (limit " + e.Limit + ")"
	}
	return e.Code + ": " + e.Message
}

// Process names a process by pid and start time (clock ticks after boot,
// field 22 of /proc/<pid>/stat), which together never name two processes.
type Process struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"start_time,omitempty"`
}

// Group describes a group.
type Group struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Kind     string    `json:"kind"` // KindSubtree or KindWatch
	OwnerUID uint32    `json:"owner_uid"`
	Spawner  Process   `json:"spawner"`
	State    string    `json:"state"`
	Backend  string    `json:"backend"`
	Cgroup   string    `json:"cgroup,omitempty"` // path relative to the cgroup2 mount
	Unit     string    `json:"unit,omitempty"`   // systemd scope
	Members  int       `json:"members"`          // count of live members
	Created  time.Time `json:"created"`

	On      string    `json:"on,omitempty"`      // OnExit or OnDisconnect
	Parent  string    `json:"parent,omitempty"`  // enclosing group, when nested
	Signal  string    `json:"signal,omitempty"`  // polite signal, e.g. "SIGTERM"
	GraceMS int64     `json:"grace_ms"`          // grace before SIGKILL
	Targets []Process `json:"targets,omitempty"` // watch groups: the processes to kill
	Ended   time.Time `json:"ended,omitzero"`    // when it became dead or released
	Killed  int       `json:"killed,omitempty"`  // processes killed, once dead

	// Stuck is set on a killing group still populated stuck_after after
	// SIGKILL; StuckSince is when it was found so. Both clear when the
	// group empties. A flag, not a state: the state stays "killing".
	Stuck      bool      `json:"stuck,omitempty"`
	StuckSince time.Time `json:"stuck_since,omitzero"`
	// Usage is what the group's cgroup used; a dead group's final figures.
	Usage *Usage `json:"usage,omitempty"`
	// Origin says where the group was registered: absent for this
	// protocol's register and watch, OriginCompat for a REGISTER on the
	// compatibility socket (a watch group whose spawner is the record's
	// parent and whose one target, the child, is held with its whole
	// subtree in Cgroup).
	Origin string `json:"origin,omitempty"`
}

// Event is one line of a subscription stream.
type Event struct {
	Event  string    `json:"event"`
	Group  string    `json:"group"`
	Time   time.Time `json:"time"`
	Pid    int       `json:"pid,omitempty"`    // spawner_exited: the spawner
	Killed *int      `json:"killed,omitempty"` // killed: how many
	Millis *float64  `json:"ms,omitempty"`     // killed, stuck: trigger (or request) to now

	Members []int  `json:"members,omitempty"` // stuck: the pids still in the group
	Stuck   bool   `json:"stuck,omitempty"`   // killed: the kill had been stuck
	Usage   *Usage `json:"usage,omitempty"`   // killed: the group's final usage

	// Reason says what triggered a killing event: "spawner_exited",
	// "disconnect" (on=disconnect), "request" (a kill op) or "parent" (an
	// enclosing group is being killed).
	Reason string `json:"reason,omitempty"`
}

// Status is the agent's health report.
type Status struct {
	Version     string         `json:"version"`
	Pid         int            `json:"pid"`
	Backend     string         `json:"backend"`
	Mode        string         `json:"mode,omitempty"`   // ModeSystem or ModeUser
	UID         *uint32        `json:"uid,omitempty"`    // the agent's uid: a per-user agent's user
	Features    []string       `json:"features"`         // e.g. "cgroup.kill", "pidfd", "SO_PEERPIDFD"
	Cgroup      map[string]any `json:"cgroup,omitempty"` // backend probe results (cgroup.Features)
	Groups      map[string]int `json:"groups"`           // count by state, and GroupsStuck
	Connections int            `json:"connections"`      // open client connections
	Subscribers int            `json:"subscribers"`
	Uptime      float64        `json:"uptime_s"`
	Started     time.Time      `json:"started"`
	// Unrecorded lists groups found under the backend's root with no
	// record (see docs on restarts): shown to root, and to a per-user
	// agent's user.
	Unrecorded []string `json:"unrecorded,omitempty"`
	// Metrics are the agent's counters since it started, the figures its
	// Prometheus metrics carry (root only: they cover every user).
	Metrics *Metrics `json:"metrics,omitempty"`
	// Compat is the compatibility socket's counters, when it is served;
	// shown to root only (they count every user's records).
	Compat *CompatStatus `json:"compat,omitempty"`
}

// CompatStatus counts what the compatibility socket did since the agent
// started.
type CompatStatus struct {
	Connections int    `json:"connections"` // open now (also counted in Status.Connections)
	Records     uint64 `json:"records"`     // REGISTER and UNREGISTER records handled
	Registered  uint64 `json:"registered"`  // groups made by a REGISTER
	Refused     uint64 `json:"refused"`     // records refused (see the agent's log)
}

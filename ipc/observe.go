package ipc

import "time"

// Usage is what a group's cgroup used, from its cgroup v2 files. A figure
// the agent cannot read is null, never zero, and Unavailable says why under
// the figure's name ("cpu", "memory", "pids", "io"; "cgroup" when the group
// has none at all).
type Usage struct {
	// Time is when the figures were read. For a dead group they are the
	// final ones (Final), read once it was empty and before its cgroup was
	// removed.
	Time  time.Time `json:"time"`
	Final bool      `json:"final,omitempty"`

	CPU    *CPUUsage    `json:"cpu"`
	Memory *MemoryUsage `json:"memory"`
	Pids   *PidsUsage   `json:"pids"`
	IO     *IOUsage     `json:"io"`

	Unavailable map[string]string `json:"unavailable,omitempty"`
}

// CPUUsage is the CPU time the group's processes used (cpu.stat, which
// cgroup v2 keeps with or without the cpu controller).
type CPUUsage struct {
	UsageUsec  uint64 `json:"usage_usec"`
	UserUsec   uint64 `json:"user_usec"`
	SystemUsec uint64 `json:"system_usec"`
}

// MemoryUsage is memory.current and memory.peak, in bytes. PeakBytes is null
// on kernels without memory.peak (before 5.19).
type MemoryUsage struct {
	CurrentBytes uint64  `json:"current_bytes"`
	PeakBytes    *uint64 `json:"peak_bytes"`
}

// PidsUsage is pids.current and pids.peak. Peak is null on kernels without
// pids.peak (before 6.13).
type PidsUsage struct {
	Current uint64  `json:"current"`
	Peak    *uint64 `json:"peak"`
}

// IOUsage is io.stat summed over devices, in bytes.
type IOUsage struct {
	ReadBytes  uint64 `json:"read_bytes"`
	WriteBytes uint64 `json:"write_bytes"`
}

// Metrics are the agent's counters since it started: the figures of its
// Prometheus metrics (docs/observability.md), for Status.
type Metrics struct {
	// Kills counts the kills begun, by reason (orphand_kills_total).
	Kills map[string]uint64 `json:"kills"`
	// ProcessesKilled counts processes alive when their group was killed
	// (orphand_processes_killed_total).
	ProcessesKilled uint64 `json:"processes_killed"`
	// KillDuration is the histogram of trigger-to-empty times, in seconds
	// (orphand_kill_duration_seconds).
	KillDuration Histogram `json:"kill_duration_seconds"`
	// Requests counts requests by op and result: "ok" or an error code
	// (orphand_requests_total).
	Requests map[string]map[string]uint64 `json:"requests"`
	// StuckGroups is orphand_stuck_groups.
	StuckGroups int `json:"stuck_groups"`
}

// Histogram is a Prometheus histogram: cumulative buckets, without the
// +Inf one (JSON has no infinity), which is Count.
type Histogram struct {
	Count   uint64   `json:"count"`
	Sum     float64  `json:"sum"`
	Buckets []Bucket `json:"buckets"`
}

// Bucket is a histogram's bucket: Count observations were at most LE.
type Bucket struct {
	LE    float64 `json:"le"`
	Count uint64  `json:"count"`
}

package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/orphand/orphand/agent/internal/promexport"
	"github.com/orphand/orphand/internal/version"
	"github.com/orphand/orphand/ipc"
)

// The agent's metrics, as Prometheus names them (docs/observability.md
// says what each means). Labels carry only bounded sets: the protocol's
// states, ops and error codes, and the kill reasons — never a pid, a group
// id or a uid.
const (
	metricGroups          = "orphand_groups"
	metricStuckGroups     = "orphand_stuck_groups"
	metricKills           = "orphand_kills_total"
	metricKillDuration    = "orphand_kill_duration_seconds"
	metricProcessesKilled = "orphand_processes_killed_total"
	metricRequests        = "orphand_requests_total"
	metricBuildInfo       = "orphand_build_info"
)

// opUnknown is the op label of a request whose op is not one of the
// protocol's (invalid JSON, no op, an unknown op, a line too long).
const opUnknown = "unknown"

// resultOK is the result label of a request answered ok.
const resultOK = "ok"

// killBuckets are the kill duration histogram's buckets, in seconds: from a
// small group's kill (about a millisecond) to long graces.
var killBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

// killReasons are the reasons a kill starts (ipc.Event.Reason).
var killReasons = []string{reasonSpawnerExited, reasonDisconnect, reasonRequest, reasonParent}

// metrics holds the agent's collectors. Each is updated by one call from
// the place where what it counts changes — transitionLocked, enterLocked
// and forgetLocked (groups by state), the kill's start and end, the stuck
// check, a connection's answer to each request — in constant time: a
// scrape reads them and never walks the groups. The children of every
// label value known in advance are resolved once, here, so that an update
// is an atomic add. Safe for concurrent use; the maps are read-only. A nil
// *metrics counts nothing: the benchmarks compare an agent without them.
type metrics struct {
	own *prometheus.Registry // the agent's own metrics: what status reports
	all prometheus.Gatherers // own, the Go runtime's and the process's: what is served

	groups          map[string]prometheus.Gauge // by state, and ipc.GroupsStuck
	stuck           prometheus.Gauge
	kills           *prometheus.CounterVec
	killsBy         map[string]prometheus.Counter
	killDuration    prometheus.Histogram
	processesKilled prometheus.Counter
	requests        *prometheus.CounterVec
	requestsOK      map[string]prometheus.Counter // by op, result "ok"
}

// newMetrics makes the agent's collectors; started is when the process
// started (process_start_time_seconds).
func newMetrics(started time.Time) *metrics {
	m := &metrics{
		own:     prometheus.NewRegistry(),
		groups:  map[string]prometheus.Gauge{},
		killsBy: map[string]prometheus.Counter{},
		stuck: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricStuckGroups,
			Help: "Groups still populated stuck_after after SIGKILL (the agent keeps killing them).",
		}),
		kills: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricKills,
			Help: "Group kills begun, by reason: spawner_exited, disconnect, request, parent.",
		}, []string{"reason"}),
		killDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: metricKillDuration,
			Help: "Time from a kill's cause (trigger or request) to the group being empty.", Buckets: killBuckets,
		}),
		processesKilled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricProcessesKilled,
			Help: "Processes that were alive when their group was killed.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricRequests,
			Help: "Requests answered, by op (unknown: not a protocol op) and result (ok, or the error code).",
		},
			[]string{"op", "result"}),
		requestsOK: map[string]prometheus.Counter{},
	}
	groups := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: metricGroups,
		Help: "Groups the agent knows, by state; stuck groups are killing groups, counted under both.",
	},
		[]string{"state"})
	for _, s := range []string{ipc.StateActive, ipc.StateKilling, ipc.StateDead, ipc.StateReleased, ipc.GroupsStuck} {
		m.groups[s] = groups.WithLabelValues(s)
	}
	for _, r := range killReasons {
		m.killsBy[r] = m.kills.WithLabelValues(r)
	}
	for op := range ops {
		m.requestsOK[op] = m.requests.WithLabelValues(op, resultOK)
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: metricBuildInfo,
		Help: "Always 1; the label is the agent's version.", ConstLabels: prometheus.Labels{"version": version.String()},
	})
	build.Set(1)
	m.own.MustRegister(groups, m.stuck, m.kills, m.killDuration, m.processesKilled, m.requests, build)
	runtime := prometheus.NewRegistry()
	runtime.MustRegister(collectors.NewGoCollector(), promexport.NewProcessCollector(started))
	m.all = prometheus.Gatherers{m.own, runtime}
	return m
}

// stateChanged moves a group from one state to another in the counts; ""
// for from means it was not counted (registered, restored), "" for to that
// it is no longer (forgotten).
func (m *metrics) stateChanged(from, to string) {
	if m == nil {
		return
	}
	if g := m.groups[from]; g != nil {
		g.Dec()
	}
	if g := m.groups[to]; g != nil {
		g.Inc()
	}
}

// stuckChanged counts a group that became stuck (true) or no longer is.
func (m *metrics) stuckChanged(stuck bool) {
	if m == nil {
		return
	}
	d := 1.0
	if !stuck {
		d = -1
	}
	m.stuck.Add(d)
	m.groups[ipc.GroupsStuck].Add(d)
}

// killStarted counts a kill that begins for reason.
func (m *metrics) killStarted(reason string) {
	if m == nil {
		return
	}
	if c := m.killsBy[reason]; c != nil {
		c.Inc()
		return
	}
	m.kills.WithLabelValues(opUnknown).Inc() // a reason from a damaged record
}

// killEnded records a kill that emptied its group: took is from its cause
// to empty, killed the processes it found alive.
func (m *metrics) killEnded(took time.Duration, killed int) {
	if m == nil {
		return
	}
	m.killDuration.Observe(took.Seconds())
	m.processesKilled.Add(float64(killed))
}

// request counts a request answered with e (nil: ok). An op that is not
// the protocol's counts as unknown, so a client cannot make up labels.
func (m *metrics) request(op string, e *ipc.Error) {
	if m == nil {
		return
	}
	if _, known := ops[op]; !known {
		op = opUnknown
	}
	if e == nil {
		if c := m.requestsOK[op]; c != nil {
			c.Inc()
			return
		}
		m.requests.WithLabelValues(op, resultOK).Inc()
		return
	}
	m.requests.WithLabelValues(op, boundedCode(e.Code)).Inc()
}

// boundedCode is code if it is one of the protocol's, else internal.
func boundedCode(code string) string {
	for _, c := range ipc.Codes {
		if c == code {
			return c
		}
	}
	return ipc.CodeInternal
}

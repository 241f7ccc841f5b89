package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/internal/version"
	"github.com/orphand/orphand/ipc"
)

// scraper reads an agent's /metrics over the real listener, as Prometheus
// would, and parses it with the client library's text parser.
type scraper struct {
	t      *testing.T
	url    string
	client *http.Client
}

// startMetricsAgent runs an agent with the cgroupfs backend that serves
// its metrics on a TCP port of the loopback.
func startMetricsAgent(t *testing.T, cfg Config) (*testAgent, *scraper) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ta, _ := startCgroupfsAgent(t, cfg, WithMetrics(ln))
	tr := &http.Transport{DisableKeepAlives: true} // no client goroutine outlives a scrape
	return ta, &scraper{t: t, url: "http://" + ln.Addr().String() + "/metrics", client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// scrape gets and parses the metrics.
func (s *scraper) scrape() families {
	s.t.Helper()
	resp, err := s.client.Get(s.url)
	if err != nil {
		s.t.Fatalf("scrape %s: %v", s.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		body, _ := io.ReadAll(resp.Body)
		s.t.Fatalf("scrape %s: %s, %s\n%s", s.url, resp.Status, resp.Header.Get("Content-Type"), body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		s.t.Fatalf("parse the scrape: %v", err)
	}
	return families{s.t, mfs}
}

// families are one scrape's metric families.
type families struct {
	t   *testing.T
	mfs map[string]*dto.MetricFamily
}

// value is the value of the sample of name whose labels are labels (name,
// value pairs); a histogram's value is its sample count. It fails the test
// when there is no such sample.
func (f families) value(name string, labels ...string) float64 {
	f.t.Helper()
	v, ok := f.lookup(name, labels...)
	if !ok {
		f.t.Fatalf("no sample %s%v in the scrape", name, labels)
	}
	return v
}

func (f families) lookup(name string, labels ...string) (float64, bool) {
	mf := f.mfs[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		if label(m, pairs[i]) != pairs[i+1] {
			return false
		}
	}
	return true
}

// want fails the test unless each sample has its value.
func (f families) want(samples map[string]float64) {
	f.t.Helper()
	for spec, want := range samples {
		name, labels := parseSpec(spec)
		if got, _ := f.lookup(name, labels...); got != want {
			f.t.Errorf("%s = %v, want %v", spec, got, want)
		}
	}
}

// parseSpec reads `name{a="x",b="y"}` into its name and label pairs.
func parseSpec(spec string) (string, []string) {
	name, rest, ok := strings.Cut(spec, "{")
	if !ok {
		return name, nil
	}
	var labels []string
	for kv := range strings.SplitSeq(strings.TrimSuffix(rest, "}"), ",") {
		k, v, _ := strings.Cut(kv, "=")
		labels = append(labels, k, strings.Trim(v, `"`))
	}
	return name, labels
}

// Every metric the issue names is there from the start, with the Go
// runtime's and the process's, and moves as groups are registered, killed
// and refused: each assertion reads the real listener.
func TestMetricsMove(t *testing.T) {
	ta, s := startMetricsAgent(t, testConfig())
	f := s.scrape()
	f.want(map[string]float64{
		`orphand_build_info{version="` + version.String() + `"}`: 1,
		`orphand_groups{state="active"}`:                         0,
		`orphand_groups{state="stuck"}`:                          0,
		`orphand_stuck_groups`:                                   0,
		`orphand_kills_total{reason="spawner_exited"}`:           0,
		`orphand_processes_killed_total`:                         0,
		`orphand_kill_duration_seconds`:                          0,
		`orphand_requests_total{op="register",result="ok"}`:      0,
	})
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "process_open_fds", "process_resident_memory_bytes", "process_start_time_seconds"} {
		if f.mfs[name] == nil {
			t.Errorf("%s is not exported", name)
		}
	}

	events := subscribe(t, ta, "")
	c := dial(t, ta.sock)
	sh, gate := gatedShell(t, `read x; sleep 300 & wait`)
	g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: sh.Process.Pid}).Group
	s.scrape().want(map[string]float64{
		`orphand_groups{state="active"}`:                    1,
		`orphand_requests_total{op="register",result="ok"}`: 1,
	})

	// Refused: bad JSON, an unknown op, a pid that is not a process id, a
	// process nobody may act on. None may make up a label.
	c.send("{not json\n")
	c.recv()
	c.fails(ipc.Request{Op: "frobnicate"}, ipc.CodeUnknownOp)
	c.fails(ipc.Request{Op: ipc.OpWatch, Pid: -4}, ipc.CodeBadRequest)
	c.fails(ipc.Request{Op: ipc.OpRegister, Pid: 1}, ipc.CodePermissionDenied)
	f = s.scrape()
	f.want(map[string]float64{
		`orphand_requests_total{op="unknown",result="bad_request"}`:        1,
		`orphand_requests_total{op="unknown",result="unknown_op"}`:         1,
		`orphand_requests_total{op="watch",result="bad_request"}`:          1,
		`orphand_requests_total{op="register",result="permission_denied"}`: 1,
	})
	for _, m := range f.mfs["orphand_requests_total"].GetMetric() {
		if op := label(m, "op"); op == "frobnicate" {
			t.Errorf("an unknown op became a label: %v", m)
		}
	}

	// Killed when the spawner exits: its child was still alive.
	if _, err := io.WriteString(gate, "go\n"); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, c, g.ID, 2)
	if err := sh.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev := events.waitEvent(ipc.EventKilled, g.ID)
	f = s.scrape()
	f.want(map[string]float64{
		`orphand_groups{state="active"}`:               0,
		`orphand_groups{state="dead"}`:                 1,
		`orphand_kills_total{reason="spawner_exited"}`: 1,
		`orphand_kill_duration_seconds`:                1,
		`orphand_processes_killed_total`:               float64(*ev.Killed),
	})
	if *ev.Killed < 1 {
		t.Errorf("killed %d, want the spawner's child at least", *ev.Killed)
	}
	sum := f.mfs["orphand_kill_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleSum()
	if ms := *ev.Millis; sum <= 0 || sum*1000 < ms-0.01 || sum*1000 > ms+0.01 {
		t.Errorf("kill duration sum %v s, the killed event says %v ms", sum, ms)
	}

	// Killed by request.
	p := spawn(t, "sleep", "300")
	g2 := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: p.Process.Pid}).Group
	c.ok(ipc.Request{Op: ipc.OpKill, Group: g2.ID})
	s.scrape().want(map[string]float64{
		`orphand_groups{state="dead"}`:                  2,
		`orphand_kills_total{reason="request"}`:         1,
		`orphand_kill_duration_seconds`:                 2,
		`orphand_requests_total{op="kill",result="ok"}`: 1,
	})
}

// status, to root, carries the figures a scrape does.
func TestStatusShowsTheMetrics(t *testing.T) {
	ta, s := startMetricsAgent(t, testConfig())
	c := dial(t, ta.sock)
	p := spawn(t, "sleep", "300")
	g := c.ok(ipc.Request{Op: ipc.OpRegister, Pid: p.Process.Pid}).Group
	c.fails(ipc.Request{Op: ipc.OpShow, Group: "nope"}, ipc.CodeNotFound)
	c.ok(ipc.Request{Op: ipc.OpKill, Group: g.ID})
	st := c.ok(ipc.Request{Op: ipc.OpStatus}).Status
	f := s.scrape() // after status: it counts the status request too
	if st.Metrics == nil {
		t.Fatal("status to root has no metrics")
	}
	m := st.Metrics
	for state, n := range st.Groups {
		if got := f.value("orphand_groups", "state", state); got != float64(n) {
			t.Errorf("groups %s: status %d, scrape %v", state, n, got)
		}
	}
	for reason, n := range m.Kills {
		if got := f.value("orphand_kills_total", "reason", reason); got != float64(n) {
			t.Errorf("kills %s: status %d, scrape %v", reason, n, got)
		}
	}
	if got := f.value("orphand_processes_killed_total"); got != float64(m.ProcessesKilled) || m.ProcessesKilled == 0 {
		t.Errorf("processes killed: status %d, scrape %v", m.ProcessesKilled, got)
	}
	if got := f.value("orphand_kill_duration_seconds"); got != float64(m.KillDuration.Count) || m.KillDuration.Count != 1 {
		t.Errorf("kill durations: status %d, scrape %v", m.KillDuration.Count, got)
	}
	for op, results := range m.Requests {
		for result, n := range results {
			got := f.value("orphand_requests_total", "op", op, "result", result)
			if op == ipc.OpStatus && result == resultOK {
				got-- // this status itself, counted once answered
			}
			if got != float64(n) {
				t.Errorf("requests %s/%s: status %d, scrape %v", op, result, n, got)
			}
		}
	}
	if m.Requests[ipc.OpShow][ipc.CodeNotFound] != 1 {
		t.Errorf("status requests: %v", m.Requests)
	}
	b, _ := json.Marshal(m)
	t.Logf("status metrics: %s", b)
}

// Nobody but root reads the agent-wide figures through status.
func TestStatusMetricsRootOnly(t *testing.T) {
	testutil.RequireRoot(t)
	ta, _ := startCgroupfsAgent(t, testConfig())
	st := dialAs(t, ta.sock, 65534).ok(ipc.Request{Op: ipc.OpStatus}).Status
	if st.Metrics != nil {
		t.Errorf("a non-root caller got the agent's metrics: %+v", st.Metrics)
	}
}

// The scrape's labels are the bounded sets only: no pid, group id or uid,
// however many groups there are.
func TestMetricsLabelsBounded(t *testing.T) {
	ta, s := startMetricsAgent(t, testConfig())
	c := dial(t, ta.sock)
	for range 3 {
		p := spawn(t, "sleep", "300")
		c.ok(ipc.Request{Op: ipc.OpRegister, Pid: p.Process.Pid})
	}
	allowed := map[string]bool{"state": true, "reason": true, "op": true, "result": true, "version": true, "le": true}
	var seen []string
	for name, mf := range s.scrape().mfs {
		if !strings.HasPrefix(name, "orphand_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if !allowed[l.GetName()] {
					t.Errorf("%s has label %s=%q", name, l.GetName(), l.GetValue())
				}
				seen = append(seen, fmt.Sprintf("%s=%s", l.GetName(), l.GetValue()))
			}
		}
	}
	sort.Strings(seen)
	t.Logf("labels: %v", seen)
}

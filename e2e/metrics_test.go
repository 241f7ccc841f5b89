package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
)

// metricsSocket is where the container's agent serves its metrics (the
// test unit passes --metrics-address).
const metricsSocket = "/run/orphand/metrics.sock"

// TestMetrics starts orphand on the host with metrics_address naming a
// Unix socket and plays the metrics scenario against it.
func TestMetrics(t *testing.T) {
	sock := filepath.Join(testutil.ReachableTempDir(t), "metrics.sock")
	a := startAgent(t, fmt.Sprintf("metrics_address = %q\n", sock))
	testMetrics(t, a, sock)
}

// scrape gets the agent's /metrics over the Unix socket sock, as a
// Prometheus behind a socket proxy would, and parses it with the client
// library's text parser.
func scrape(t *testing.T, sock string) map[string]*dto.MetricFamily {
	t.Helper()
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("http://orphand/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", sock, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", sock, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the scrape: %v", err)
	}
	return mfs
}

// sample is the value of name's sample with the labels given (name, value
// pairs): a counter's or gauge's value, a histogram's count; 0 if absent.
func sample(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	for _, m := range mfs[name].GetMetric() {
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

// testMetrics: the real binary's metrics move as orphanctl runs a command
// whose child outlives it (a kill on the spawner's exit) and asks for a
// group that does not exist (a refusal). It compares before and after, so
// it also holds against an agent that has served others.
func testMetrics(t *testing.T, a *agent, sock string) {
	before := scrape(t, sock)
	for _, name := range []string{"go_goroutines", "process_open_fds", "process_resident_memory_bytes", "orphand_groups", "orphand_stuck_groups"} {
		if before[name] == nil {
			t.Errorf("%s is not exported", name)
		}
	}
	st, err := a.client(t).Status(context.Background()) // the agent's own version (the packaged one's, in that suite)
	if err != nil {
		t.Fatal(err)
	}
	if sample(before, "orphand_build_info", "version", st.Version) != 1 {
		t.Errorf("orphand_build_info{version=%q} is not 1: %v", st.Version, before["orphand_build_info"])
	}

	events := a.follow(t)
	group := runLeavingChild(t, a)
	ev := events.wait(t, group, ipc.EventKilled)
	// Its final usage, read before its cgroup (or scope) went: CPU time is
	// there with any cgroup v2; the rest depends on the host's controllers.
	if g, _ := a.show(t, group); g.Usage == nil || !g.Usage.Final || g.Usage.CPU == nil || ev.Usage == nil || *ev.Usage.CPU != *g.Usage.CPU {
		t.Errorf("the dead group's usage %+v, its killed event's %+v: want the same final figures, CPU time among them", g.Usage, ev.Usage)
	}
	if r := a.ctl(t, "kill", "000000000000"); r.code != 1 || !strings.Contains(r.stderr, "not_found") {
		t.Errorf("orphanctl kill of no group: %s", r)
	}
	after := scrape(t, sock)
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"orphand_kills_total", []string{"reason", "spawner_exited"}, 1},
		{"orphand_kill_duration_seconds", nil, 1},
		{"orphand_processes_killed_total", nil, 1},
		{"orphand_requests_total", []string{"op", "register", "result", "ok"}, 1},
		{"orphand_requests_total", []string{"op", "kill", "result", "not_found"}, 1},
		{"orphand_groups", []string{"state", "dead"}, 1},
	} {
		if d := sample(after, c.name, c.labels...) - sample(before, c.name, c.labels...); d < c.min {
			t.Errorf("%s%v moved by %v, want at least %v", c.name, c.labels, d, c.min)
		}
	}
}

// runLeavingChild runs, through orphanctl run, a shell that starts a
// sleeper and exits: the agent kills the sleeper. It returns the group.
func runLeavingChild(t *testing.T, a *agent) string {
	t.Helper()
	r := a.ctl(t, "run", "--name", "leaves-a-child", "--", "sh", "-c", `echo "$ORPHAND_GROUP"; sleep 300 >/dev/null 2>&1 & exit 0`)
	group := strings.TrimSpace(r.stdout)
	if r.code != 0 || len(group) != 12 {
		t.Fatalf("orphanctl run: %s", r)
	}
	return group
}

// testJournalFields (in the container, where systemd runs the agent with
// its stderr on the journal): the agent's lines about a group are found by
// journalctl -u orphand.service ORPHAND_GROUP=<id>, with the event and the
// spawner as fields of their own.
func testJournalFields(t *testing.T, a *agent) {
	events := a.follow(t)
	group := runLeavingChild(t, a)
	killed := events.wait(t, group, ipc.EventKilled)
	g, _ := a.show(t, group)
	// The "group killed" line is written just after the group is seen
	// dead (its killed event): wait for it to reach the journal.
	var out []byte
	deadline := time.Now().Add(goneTimeout)
	for {
		if o, err := exec.Command("journalctl", "--sync").CombinedOutput(); err != nil {
			t.Fatalf("journalctl --sync: %v\n%s", err, o)
		}
		o, err := exec.Command("journalctl", "--no-pager", "-o", "json", "-u", "orphand.service", "ORPHAND_GROUP="+group).Output()
		if err != nil {
			t.Fatalf("journalctl: %v", err)
		}
		out = o
		if bytes.Contains(out, []byte(`"group killed `)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var found bool
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		n++
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("journalctl -o json: %v", err)
		}
		if msg, _ := e["MESSAGE"].(string); !strings.HasPrefix(msg, "group killed ") {
			continue // the debug lines of each state change, for one
		}
		found = true
		for field, want := range map[string]string{
			"PRIORITY": "6", "SYSLOG_IDENTIFIER": "orphand", "ORPHAND_EVENT": ipc.EventKilled, "ORPHAND_SPAWNER_PID": strconv.Itoa(g.Spawner.Pid),
			"ORPHAND_KILLED": strconv.Itoa(*killed.Killed), "ORPHAND_REASON": "spawner_exited",
		} {
			if e[field] != want {
				t.Errorf("killed entry: %s = %v, want %s", field, e[field], want)
			}
		}
		if msg, _ := e["MESSAGE"].(string); !strings.HasPrefix(msg, "group killed group="+group+" spawner_pid=") {
			t.Errorf("killed entry's MESSAGE %q", msg)
		}
	}
	if !found {
		t.Errorf("journalctl -u orphand.service ORPHAND_GROUP=%s found %d entries, none the \"group killed\" line:\n%s", group, n, out)
	}
}

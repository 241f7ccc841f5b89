package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// testObservability, against the packaged, sandboxed service: its log
// lines reach the journal with their fields (the native protocol works
// inside the sandbox), and, with the documented drop-in and a
// metrics_address, Prometheus can scrape it over TCP.
func testObservability(t *testing.T) {
	t.Run("JournalFields", func(t *testing.T) {
		g := spawnGroup(t, "journal", "")
		g.killSpawner(t)
		g.waitAllGone(t)
		// The line is written after the group is seen dead (its killed
		// event, show): wait for it.
		waitUntil(t, "the group's killed line in the journal, with its fields", func() bool {
			run(t, "journalctl", "--sync")
			out := run(t, "journalctl", "--no-pager", "-o", "json", "-u", "orphand.service", "ORPHAND_GROUP="+g.ID, "ORPHAND_EVENT=killed")
			return killedEntries(t, out) == 1
		})
	})
	t.Run("MetricsOverTCP", func(t *testing.T) {
		const conf = "/etc/orphand/orphand.toml"
		dropin := "/etc/systemd/system/orphand.service.d/metrics.conf"
		orig, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dropin), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = os.WriteFile(conf, orig, 0o644)
			_ = os.RemoveAll(filepath.Dir(dropin))
			_, _ = try("systemctl", "daemon-reload")
			_, _ = try("systemctl", "restart", "orphand.service")
		})
		// Top-level keys go before the [limits] table.
		withMetrics := append([]byte("metrics_address = \"127.0.0.1:9464\"\n"), orig...)
		if err := os.WriteFile(conf, withMetrics, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dropin, []byte(metricsDropIn), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "systemctl", "daemon-reload")
		run(t, "systemctl", "restart", "orphand.service")
		agentStatus(t) // serving
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
		resp, err := c.Get("http://127.0.0.1:9464/metrics")
		if err != nil {
			t.Fatalf("scrape the sandboxed agent: %v (journal: %s)", err, run(t, "journalctl", "--no-pager", "-n", "20", "-u", "orphand.service"))
		}
		defer resp.Body.Close()
		var body bytes.Buffer
		if _, err := body.ReadFrom(resp.Body); err != nil {
			t.Fatal(err)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := p.TextToMetricFamilies(&body)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"orphand_build_info", "orphand_groups", "orphand_requests_total", "process_open_fds"} {
			if mfs[name] == nil {
				t.Errorf("the scrape has no %s", name)
			}
		}
	})
}

// killedEntries counts the journal entries (journalctl -o json) that carry
// the fields of the agent's "group killed" line.
func killedEntries(t *testing.T, out string) int {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		if e["PRIORITY"] == "6" && e["SYSLOG_IDENTIFIER"] == "orphand" && e["ORPHAND_SPAWNER_PID"] != nil {
			n++
		}
	}
	return n
}

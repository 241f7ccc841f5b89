package agent

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// contribFiles are the dashboard and the alerting rules shipped for
// operators (contrib/); promtool checks them in the root package's tests.
var contribFiles = []string{
	"../contrib/prometheus/orphand-alerts.yml",
	"../contrib/prometheus/orphand-alerts.test.yml",
	"../contrib/grafana/orphand-dashboard.json",
}

// Every metric and label the dashboard and the alerting rules use is one a
// running agent exports: a renamed metric cannot leave them reading
// nothing.
func TestContribUsesExportedMetrics(t *testing.T) {
	_, s := startMetricsAgent(t, testConfig())
	f := s.scrape()
	exported := map[string]bool{}
	labels := map[string]bool{"instance": true, "job": true, "le": true} // Prometheus's own, and histograms'
	for name, mf := range f.mfs {
		exported[name] = true
		if mf.GetType().String() == "HISTOGRAM" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				exported[name+suffix] = true
			}
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
	}
	metricRE := regexp.MustCompile(`\b(?:orphand|process|go)_[a-z0-9_]+`)
	byRE := regexp.MustCompile(`\b(?:by|without) \(([a-z_, ]*)\)`)
	used := 0
	for _, file := range contribFiles {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range metricRE.FindAllString(string(b), -1) {
			used++
			if !exported[name] {
				t.Errorf("%s uses %s, which the agent does not export", filepath.Base(file), name)
			}
		}
		for _, m := range byRE.FindAllStringSubmatch(string(b), -1) {
			for l := range strings.SplitSeq(m[1], ",") {
				if l = strings.TrimSpace(l); l != "" && !labels[l] {
					t.Errorf("%s aggregates by %s, a label no exported metric has", filepath.Base(file), l)
				}
			}
		}
	}
	if used < 10 {
		t.Fatalf("found only %d metric names in %v: is the pattern still right?", used, contribFiles)
	}
}

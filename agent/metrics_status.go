package agent

import (
	"math"

	dto "github.com/prometheus/client_model/go"

	"github.com/orphand/orphand/ipc"
)

// snapshot reads the agent's own metrics for status: the same collectors
// a scrape reads, so the figures are the same.
func (m *metrics) snapshot() (*ipc.Metrics, error) {
	mfs, err := m.own.Gather()
	if err != nil {
		return nil, err
	}
	out := &ipc.Metrics{Kills: map[string]uint64{}, Requests: map[string]map[string]uint64{}}
	for _, mf := range mfs {
		for _, x := range mf.GetMetric() {
			switch mf.GetName() {
			case metricKills:
				out.Kills[label(x, "reason")] = uint64(x.GetCounter().GetValue())
			case metricProcessesKilled:
				out.ProcessesKilled = uint64(x.GetCounter().GetValue())
			case metricStuckGroups:
				out.StuckGroups = int(x.GetGauge().GetValue())
			case metricKillDuration:
				out.KillDuration = histogram(x.GetHistogram())
			case metricRequests:
				op := label(x, "op")
				if out.Requests[op] == nil {
					out.Requests[op] = map[string]uint64{}
				}
				out.Requests[op][label(x, "result")] = uint64(x.GetCounter().GetValue())
			}
		}
	}
	return out, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func histogram(h *dto.Histogram) ipc.Histogram {
	out := ipc.Histogram{Count: h.GetSampleCount(), Sum: h.GetSampleSum()}
	for _, b := range h.GetBucket() {
		if !math.IsInf(b.GetUpperBound(), 1) {
			out.Buckets = append(out.Buckets, ipc.Bucket{LE: b.GetUpperBound(), Count: b.GetCumulativeCount()})
		}
	}
	return out
}

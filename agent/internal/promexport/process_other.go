//go:build !linux

package promexport

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewProcessCollector returns the client library's process collector: the
// agent runs on Linux only, and this keeps the package building elsewhere.
func NewProcessCollector(time.Time) prometheus.Collector {
	return collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})
}

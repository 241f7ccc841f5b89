package agent

import (
	"context"
	"net"
	"time"

	"github.com/orphand/orphand/agent/internal/promexport"
)

// WithMetrics makes Run serve the agent's Prometheus metrics over HTTP on
// ln (GET /metrics) while it runs; Run closes ln when it stops.
func WithMetrics(ln net.Listener) Option {
	return func(a *Agent) { a.metricsLn = ln }
}

// metricsStopGrace bounds how long a stopping agent waits for scrapes in
// flight; a scrape takes milliseconds.
const metricsStopGrace = 2 * time.Second

// serveMetrics starts the metrics server if Run was given a listener, and
// returns what stops it and waits for it.
func (a *Agent) serveMetrics() (stop func()) {
	if a.metricsLn == nil || a.metrics == nil {
		return func() {}
	}
	srv := promexport.Start(a.metricsLn, a.metrics.all, a.log)
	a.log.Info("serving metrics", "addr", srv.Addr(), "path", promexport.Path)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), metricsStopGrace)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			a.log.Warn("stopping the metrics server", "err", err)
		}
	}
}

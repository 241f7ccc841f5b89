// Package promexport serves Prometheus metrics over HTTP for the agent:
// GET /metrics in the text exposition format, from a Gatherer, on a
// listener the caller owns, behind a server with every timeout set, run by
// a goroutine that Stop ends and waits for. It also has the process
// collector the agent exports (process.go). It knows nothing of groups.
package promexport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Path is where the metrics are served.
const Path = "/metrics"

// Timeouts of the HTTP server: a scrape is one small request, so a client
// that is slower than this is broken or hostile and loses its connection.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 15 * time.Second
	idleTimeout       = 60 * time.Second
	gatherTimeout     = 10 * time.Second // promhttp's own, below writeTimeout
	maxHeaderBytes    = 8 << 10
	maxInFlight       = 4 // concurrent scrapes; more are answered 503
)

// Server serves metrics on one listener.
type Server struct {
	srv  *http.Server
	addr string
	done chan error // Serve's result, once it has returned
}

// Start serves g's metrics on ln on a goroutine of its own until Stop. The
// server closes ln when it stops. log receives the server's and the
// gatherer's errors.
func Start(ln net.Listener, g prometheus.Gatherer, log *slog.Logger) *Server {
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:            errLog,
		ErrorHandling:       promhttp.ContinueOnError, // a failed collector must not hide the others
		MaxRequestsInFlight: maxInFlight,
		Timeout:             gatherTimeout,
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "orphand serves its metrics at "+Path, http.StatusNotFound)
	})
	s := &Server{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          errLog,
		},
		addr: ln.Addr().String(),
		done: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if !errors.Is(err, http.ErrServerClosed) {
			log.Error("the metrics server stopped serving", "addr", s.addr, "err", err)
		}
		s.done <- err
	}()
	return s
}

// Addr is the listener's address.
func (s *Server) Addr() string { return s.addr }

// Stop stops accepting, lets scrapes in flight finish until ctx ends (then
// closes their connections), and returns once the serving goroutine has
// ended: nil, or why serving had stopped earlier.
func (s *Server) Stop(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close() // ctx ended first: cut the scrapes still running
	}
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("metrics server on %s: %w", s.addr, serr)
	}
	return nil
}

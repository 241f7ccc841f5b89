package ratelog

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimiterIsRateLimited(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var l Limiter
	for range 100 {
		l.Log(log, slog.LevelWarn, 65534, "connections_per_uid", "connection refused")
	}
	l.Log(log, slog.LevelWarn, 65533, "connections_per_uid", "connection refused")
	l.Log(log, slog.LevelWarn, 65534, "connections_total", "connection refused")
	if n := strings.Count(buf.String(), "connection refused"); n != 3 {
		t.Fatalf("%d lines, want one per uid and limit:\n%s", n, buf.String())
	}
	l.last[limitKey{65534, "connections_per_uid"}].at = time.Now().Add(-Every)
	l.Log(log, slog.LevelWarn, 65534, "connections_per_uid", "connection refused")
	if !strings.Contains(buf.String(), "same_since_last_logged=99") {
		t.Fatalf("the next line does not count the ones left out:\n%s", buf.String())
	}
}

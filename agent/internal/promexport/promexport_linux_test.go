package promexport

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The server serves /metrics and nothing else, and Stop ends it: the
// listener is closed and no goroutine is left (goleak, in TestMain).
func TestServerServesAndStops(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_things_total", Help: "Things."})
	reg.MustRegister(c, NewProcessCollector(time.Now()))
	c.Add(3)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := Start(ln, reg, slog.New(slog.DiscardHandler))
	base := "http://" + s.Addr()
	code, body := get(t, base+Path)
	if code != http.StatusOK || !strings.Contains(body, "test_things_total 3\n") || !strings.Contains(body, "process_open_fds ") {
		t.Fatalf("GET %s: %d\n%s", Path, code, body)
	}
	if code, _ := get(t, base+"/"); code != http.StatusNotFound {
		t.Errorf("GET /: %d, want 404", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", s.Addr()); err == nil {
		c.Close()
		t.Fatal("the listener still accepts after Stop")
	}
}

// The descriptor count is right by both ways of counting, and a scrape
// allocates as much with a thousand more descriptors open: nothing is
// allocated per descriptor (the agent holds one per group).
func TestProcessCollectorCountsWithoutListing(t *testing.T) {
	c := NewProcessCollector(time.Now()).(*processCollector)
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	listed := len(entries) - 1 // ReadDir's own descriptor, closed since
	byStat, ok := c.openFDs()
	if !ok || byStat != listed {
		t.Errorf("open fds %d (ok %v), listing says %d", byStat, ok, listed)
	}
	fd, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	k, err := unix.Getdents(fd, c.dirent)
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	if n := countDirents(c.dirent[:k]); n != listed+1 { // the listing's own descriptor
		t.Errorf("countDirents = %d, want %d", n, listed+1)
	}

	collect := func() {
		ch := make(chan prometheus.Metric, 16)
		c.Collect(ch)
		close(ch)
		for range ch {
		}
	}
	before := testing.AllocsPerRun(20, collect)
	var fds []int
	for range 500 {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		fds = append(fds, p[0], p[1])
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	after := testing.AllocsPerRun(20, collect)
	if n, _ := c.openFDs(); n < listed+1000 {
		t.Errorf("open fds %d after opening 1000 more than %d", n, listed)
	}
	if after != before {
		t.Errorf("a scrape allocates %v times with 1000 more descriptors, %v before", after, before)
	}
}

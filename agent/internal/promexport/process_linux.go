package promexport

import (
	"bytes"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// processCollector exports the process_* metrics of the client library's
// process collector (same names, same meaning), read so that a scrape
// costs the same however many descriptors the agent holds: the library's
// collector counts open descriptors by listing /proc/self/fd, one string
// per descriptor, and the agent holds one pidfd per group. Here the count
// is the size /proc/self/fd reports (Linux 6.2+), else a count of getdents
// records in a buffer reused from scrape to scrape; CPU time comes from
// getrusage, limits from getrlimit, memory from /proc/self/statm. The
// network byte counters of the library's collector are left out: the agent
// speaks over Unix sockets.
type processCollector struct {
	start                             float64 // process start, Unix seconds
	cpu, fds, maxFDs, vsize, maxVsize *prometheus.Desc
	rss, startTime                    *prometheus.Desc

	mu     sync.Mutex // guards dirent, for concurrent scrapes
	dirent []byte
}

// NewProcessCollector returns the collector of the agent's own process,
// which started at start.
func NewProcessCollector(start time.Time) prometheus.Collector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &processCollector{
		start:     float64(start.UnixNano()) / 1e9,
		cpu:       d("process_cpu_seconds_total", "Total user and system CPU time spent in seconds."),
		fds:       d("process_open_fds", "Number of open file descriptors."),
		maxFDs:    d("process_max_fds", "Maximum number of open file descriptors."),
		vsize:     d("process_virtual_memory_bytes", "Virtual memory size in bytes."),
		maxVsize:  d("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes."),
		rss:       d("process_resident_memory_bytes", "Resident memory size in bytes."),
		startTime: d("process_start_time_seconds", "Start time of the process since unix epoch in seconds."),
		dirent:    make([]byte, 8<<10),
	}
}

// Describe sends the descriptors of every metric Collect sends.
func (c *processCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cpu, c.fds, c.maxFDs, c.vsize, c.maxVsize, c.rss, c.startTime} {
		ch <- d
	}
}

// Collect reads the figures; one that cannot be read is left out.
func (c *processCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) == nil {
		secs := float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
		ch <- prometheus.MustNewConstMetric(c.cpu, prometheus.CounterValue, secs)
	}
	if n, ok := c.openFDs(); ok {
		gauge(c.fds, float64(n))
	}
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil {
		gauge(c.maxFDs, float64(lim.Cur))
	}
	if unix.Getrlimit(unix.RLIMIT_AS, &lim) == nil {
		gauge(c.maxVsize, float64(lim.Cur))
	}
	if vsize, rss, ok := statm(); ok {
		gauge(c.vsize, vsize)
		gauge(c.rss, rss)
	}
	gauge(c.startTime, c.start)
}

// openFDs counts the process's open descriptors.
func (c *processCollector) openFDs() (int, bool) {
	var st unix.Stat_t
	if unix.Stat("/proc/self/fd", &st) == nil && st.Size > 0 {
		return int(st.Size), true // Linux 6.2+: the count, without a listing
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fd, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, false
	}
	defer unix.Close(fd)
	n := -1 // the descriptor opened for the listing
	for {
		k, err := unix.Getdents(fd, c.dirent)
		if err != nil {
			return 0, false
		}
		if k == 0 {
			return n, true
		}
		n += countDirents(c.dirent[:k])
	}
}

// countDirents counts the linux_dirent64 records in b, "." and ".." aside.
func countDirents(b []byte) int {
	const nameOff = 19 // d_ino 8, d_off 8, d_reclen 2, d_type 1
	n := 0
	for len(b) >= nameOff {
		reclen := int(b[16]) | int(b[17])<<8
		if reclen < nameOff || reclen > len(b) {
			break
		}
		name := b[nameOff:reclen]
		if end := bytes.IndexByte(name, 0); end >= 0 {
			name = name[:end]
		}
		if string(name) != "." && string(name) != ".." {
			n++
		}
		b = b[reclen:]
	}
	return n
}

// statm reads the virtual and resident sizes from /proc/self/statm.
func statm() (vsize, rss float64, ok bool) {
	fd, err := unix.Open("/proc/self/statm", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, false
	}
	defer unix.Close(fd)
	var buf [128]byte
	k, err := unix.Read(fd, buf[:])
	if err != nil || k <= 0 {
		return 0, 0, false
	}
	fields := bytes.Fields(buf[:k])
	if len(fields) < 2 {
		return 0, 0, false
	}
	size, err1 := strconv.ParseUint(string(fields[0]), 10, 64)
	res, err2 := strconv.ParseUint(string(fields[1]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	page := float64(unix.Getpagesize())
	return float64(size) * page, float64(res) * page, true
}

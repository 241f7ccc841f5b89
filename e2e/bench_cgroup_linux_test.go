//go:build linux

package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/proctree"
)

// spawnerScript is a Perl spawner: it waits for a line on stdin, forks n
// children that sleep (forks without exec: cheap, like a server's workers),
// says "ready", and sleeps.
const benchSpawner = `
$| = 1;
my $n = shift;
my $go = <STDIN>;
for (1 .. $n) {
	my $pid = fork // die "fork: $!";
	if ($pid == 0) { sleep 1000 while 1; POSIX::_exit(0); }
}
print "ready\n";
sleep 1000 while 1;
`

// spawner is a started benchSpawner.
type spawner struct {
	cmd   *exec.Cmd
	proc  *proctree.Process
	stdin io.WriteCloser
	out   *bufio.Reader
	done  chan struct{}
}

// startSpawner starts the Perl spawner; with cgroupFD >= 0 it is born in
// that cgroup (clone3 CLONE_INTO_CGROUP).
func startSpawner(b *testing.B, children int, cgroupFD int) *spawner {
	b.Helper()
	cmd := exec.Command("perl", "-MPOSIX", "-e", benchSpawner, strconv.Itoa(children))
	if cgroupFD >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cgroupFD}
	}
	s := &spawner{cmd: cmd, done: make(chan struct{})}
	var err error
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	s.out = bufio.NewReader(out)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(s.done) }()
	if s.proc, err = proctree.Open(cmd.Process.Pid); err != nil {
		b.Fatal(err)
	}
	return s
}

// fork tells the spawner to fork its children and waits until it has.
func (s *spawner) fork(b *testing.B) {
	b.Helper()
	if _, err := s.stdin.Write([]byte("go\n")); err != nil {
		b.Fatal(err)
	}
	if l, err := s.out.ReadString('\n'); err != nil || l != "ready\n" {
		b.Fatalf("spawner: %q, %v", l, err)
	}
}

// end kills the spawner (if still alive) and waits for it to be reaped.
func (s *spawner) end() {
	_ = s.proc.Signal(syscall.SIGKILL)
	<-s.done
	s.proc.Close()
	_ = s.stdin.Close()
}

// emptyWatch sees a cgroup become empty: an inotify watch on its
// cgroup.events, armed before the kill, and a re-read at each wake-up
// (notifications are rate-limited: a hint, not the data).
type emptyWatch struct {
	fd     int
	events string
}

func armEmpty(dir string) (*emptyWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	w := &emptyWatch{fd: fd, events: filepath.Join(dir, "cgroup.events")}
	if _, err := unix.InotifyAddWatch(fd, w.events, unix.IN_MODIFY|unix.IN_DELETE_SELF); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return w, nil
}

// empty reports whether the cgroup has no live process (or is gone).
func (w *emptyWatch) empty() (bool, error) {
	f, err := os.Open(w.events)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	ev, err := cgroup.ParseEvents(f)
	if err != nil {
		if _, statErr := os.Stat(w.events); errors.Is(statErr, os.ErrNotExist) {
			return true, nil // removed while read
		}
		return false, err
	}
	return !ev.Populated, nil
}

// wait returns when the cgroup is empty.
func (w *emptyWatch) wait(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 4096)
	for {
		if ok, err := w.empty(); err != nil || ok {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%s still populated after %v", w.events, timeout)
		}
		// Poll wakes on the notification; the 100 ms bound only guards
		// against a notification lost to the rate limit.
		fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(min(left, 100*time.Millisecond)/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		for {
			if _, err := unix.Read(w.fd, buf); err != nil {
				break
			}
		}
	}
}

func (w *emptyWatch) close() { unix.Close(w.fd) }

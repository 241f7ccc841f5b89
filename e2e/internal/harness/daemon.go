package harness

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orphand/orphand/internal/testutil"
)

// Serve is how Start runs `orphand serve` on a Host.
type Serve struct {
	Bin     string   // the orphand binary
	Backend string   // --backend
	Env     []string // added to the test's environment
	// KeepNotify keeps the stand-in for systemd's notification socket
	// for the agent's whole life, so that its fd store messages
	// (FDSTORE=1 with pidfds, discarded here) are sent as under systemd.
	// Otherwise WaitReady closes it once READY=1 has arrived.
	KeepNotify bool
	// Extra are more flags of orphand serve, after the usual ones
	// (--compat-socket PATH).
	Extra []string
	// Args, when set, replace the flags after "serve" (a per-user agent
	// started with its own defaults takes no --socket or --state-dir).
	Args []string
	// SysProcAttr starts the agent as another user, or in a cgroup
	// (Credential, UseCgroupFD); the notification socket is then made
	// writable by every user.
	SysProcAttr *syscall.SysProcAttr
}

// Daemon is one `orphand serve` process a test started.
type Daemon struct {
	Cmd *exec.Cmd
	Log *testutil.SyncBuffer // its stdout and stderr

	keepNotify bool
	notify     *net.UnixConn
	ready      chan struct{} // closed at READY=1
	drained    chan struct{} // closed when the notify reader has ended
	done       chan struct{} // closed once the process is reaped
	err        error         // cmd.Wait's, once done is closed
}

// Start starts the agent: `orphand serve` with the host's socket, cgroup
// root, configuration and state directory, logging at debug level, and
// NOTIFY_SOCKET pointing at a datagram socket of the test's. It fails the
// test if the process cannot start; WaitReady then waits until it serves.
// Stopping it is the caller's (Stop, in a cleanup registered after Start
// returns); should the caller not, the cleanup Start registers kills it.
func (h *Host) Start(t testing.TB, s Serve) *Daemon {
	t.Helper()
	notifyPath := filepath.Join(h.Dir, "notify.sock")
	_ = os.Remove(notifyPath) // a previous agent's, on a restart
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{
		Log: &testutil.SyncBuffer{}, keepNotify: s.KeepNotify, notify: notify,
		ready: make(chan struct{}), drained: make(chan struct{}), done: make(chan struct{}),
	}
	go d.readNotify()
	args := []string{
		"--socket", h.Socket, "--backend", s.Backend, "--cgroup-root", h.Root,
		"--config", h.config, "--state-dir", h.StateDir, "--log-level", "debug",
	}
	if s.Args != nil {
		args = s.Args
	}
	if s.SysProcAttr != nil {
		if err := os.Chmod(notifyPath, 0o666); err != nil {
			d.closeNotify()
			t.Fatal(err)
		}
	}
	d.Cmd = exec.Command(s.Bin, append(append([]string{"serve"}, args...), s.Extra...)...)
	d.Cmd.SysProcAttr = s.SysProcAttr
	d.Cmd.Env = append(append(os.Environ(), "NOTIFY_SOCKET="+notifyPath, "GOTRACEBACK=all"), s.Env...)
	d.Cmd.Stdout, d.Cmd.Stderr = d.Log, d.Log
	if err := d.Cmd.Start(); err != nil {
		d.closeNotify()
		t.Fatal(err)
	}
	go func() { d.err = d.Cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.Cmd.Process.Kill()
			<-d.done
		}
	})
	t.Cleanup(d.closeNotify)
	return d
}

// readNotify reads sd_notify datagrams until the socket is closed, and
// closes ready at the first READY=1 line.
func (d *Daemon) readNotify() {
	defer close(d.drained)
	buf := make([]byte, 64<<10)
	ready := false
	for {
		n, err := d.notify.Read(buf)
		if err != nil {
			return
		}
		for _, l := range strings.Split(string(buf[:n]), "\n") {
			if l == "READY=1" && !ready {
				ready = true
				close(d.ready)
			}
		}
	}
}

// closeNotify closes the notification socket and waits for its reader.
func (d *Daemon) closeNotify() {
	_ = d.notify.Close()
	<-d.drained
}

// WaitReady waits until the agent says READY=1, which it does once it
// serves. It fails if the agent exits first or timeout passes.
func (d *Daemon) WaitReady(timeout time.Duration) error {
	select {
	case <-d.ready:
		if !d.keepNotify {
			d.closeNotify()
		}
		return nil
	case <-d.done:
		if d.err == nil {
			return errors.New("orphand exited at start, with status 0")
		}
		return fmt.Errorf("orphand exited at start: %w", d.err)
	case <-time.After(timeout):
		if d.dumpGoroutines() {
			return fmt.Errorf("orphand did not say READY=1 within %v (what each of its goroutines was doing is at the end of its log: SIGQUIT)", timeout)
		}
		return fmt.Errorf("orphand did not say READY=1 within %v", timeout)
	}
}

// dumpGoroutines makes a wedged agent print every goroutine's stack to its
// log and exit (SIGQUIT; GOTRACEBACK=all is in its environment), so that a
// test that gives up on it says where it was stuck. It reports whether the
// agent exited.
func (d *Daemon) dumpGoroutines() bool {
	_ = d.Cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-d.done:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

// Pid is the agent's pid.
func (d *Daemon) Pid() int { return d.Cmd.Process.Pid }

// Done is closed once the agent has exited and been reaped.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Stop ends the agent as a service manager does: SIGTERM, then SIGKILL if
// it has not exited within timeout. It returns how it ended: nil for a
// clean exit, else an error that says so.
func (d *Daemon) Stop(timeout time.Duration) error {
	_ = d.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return d.err
	case <-time.After(timeout):
		_ = d.Cmd.Process.Kill()
		<-d.done
		return fmt.Errorf("did not stop within %v of SIGTERM: %w", timeout, d.err)
	}
}

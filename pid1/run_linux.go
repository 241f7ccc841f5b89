package pid1

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/proctree"
)

// supervisor is one run of Run. Everything runs on Run's goroutine except
// the kill phases at the end, which run on one goroutine of their own while
// Run's goroutine keeps handling signals; Run waits for it.
type supervisor struct {
	cfg   Config
	log   *slog.Logger
	debug bool // log each reap and forward (checked once: they are hot)
	self  int
	role  role
	sigc  chan os.Signal
	reg   *registration
	esc   escalation
	cg    *cmdCgroup
	cgRel string // CMD's cgroup, kept for the result after removal

	ignored     map[syscall.Signal]bool // ignored when init started: CMD inherits them ignored
	restoreCHLD func() error            // puts SIGCHLD's handler back; nil: reap on SIGCHLD

	cmdPid int
	// mu guards cmdExited and cmdStatus while the waiter goroutine reaps
	// (waiter_linux.go), and is held from the check that CMD has not been
	// reaped to the signal sent to it.
	mu        sync.Mutex
	cmdExited bool
	cmdStatus syscall.WaitStatus
	escalated bool
	abandoned bool // stop waiting for descendants (a SIGINT while killing)
	remaining int  // descendants the first kill phase signalled
}

// Run runs Config.Args as the one child of an init: it reaps every orphan
// that lands on the calling process, forwards signals to CMD, and when CMD
// has exited, ends every remaining descendant (Config.KillSignal, then
// SIGKILL after Config.Grace), reaps them all, and returns the code init
// should exit with. See the package documentation for the details.
//
// Run owns wait(2) for the whole process while it runs: do not start other
// children (os/exec) concurrently, since Run would reap them. A Go program
// that is PID 1 and runs its own children should use [Start] instead. While
// CMD runs, SIGCHLD's disposition is SIG_DFL (Run puts Go's handler back
// afterwards), so no os/signal channel receives SIGCHLD meanwhile. Once CMD
// has started in Config.Dir, Run moves the process to / (see leaveDir).
//
// When ctx is done, Run kills CMD and every descendant with SIGKILL at once,
// reaps them and returns. On failure the error is an [*Error] and
// Result.Code is ExitInitFailed, ExitCannotExec or ExitNotFound.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{Code: ExitInitFailed}, &Error{Code: ExitInitFailed, Err: err}
	}
	s := &supervisor{
		cfg:  cfg,
		log:  cfg.logger(),
		self: os.Getpid(),
		sigc: make(chan os.Signal, 64),
		esc:  escalation{window: cfg.grace()},
	}
	s.debug = s.log.Enabled(ctx, slog.LevelDebug)
	res, err := s.run(ctx)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Code: ExitInitFailed, Err: err}
		}
		res.Code = e.Code
		return res, e
	}
	return res, nil
}

func (s *supervisor) run(ctx context.Context) (Result, error) {
	// What init inherited ignored, before anything asks for a signal; then
	// asking for the signals, the longest step of the start-up, runs while
	// the rest is prepared (register_linux.go).
	s.ignored = inheritedIgnored()
	s.reg = startRegistration(s.sigc, s.ignored)
	defer s.reg.stop()
	if s.debug {
		s.reg.onDone = func() { s.log.Debug("orphand init: every signal is forwarded from now on") }
	}
	sp, closeAfterStart, err := s.prepare()
	if err != nil {
		return Result{}, err
	}
	if err := s.launch(sp); err != nil {
		return Result{}, err
	}
	s.reg.registerLater()
	leaveDir(s.log)
	for _, fd := range closeAfterStart {
		unix.Close(fd) // CMD has its own copies; init has no use for them
	}
	s.cgRel = s.cgroupRel()
	if s.debug {
		s.log.Debug("orphand init: started CMD", "pid", s.cmdPid, "role", s.role.String(), "cgroup", s.cgroupPath())
	}
	s.supervise(ctx)
	s.finish(ctx)
	return Result{
		Code:      exitCode(s.cmdStatus, s.cfg.ExpectedCodes),
		Pid:       s.cmdPid,
		Status:    s.cmdStatus,
		Remaining: s.remaining,
		Escalated: s.escalated,
		Cgroup:    s.cgRel,
	}, nil
}

// prepare does everything CMD's start needs but the signals: it checks
// /proc, plans the spawn, becomes a reaper, sorts the inherited
// descriptors (returning those to close once CMD has started), and makes
// CMD's cgroup when one is used.
func (s *supervisor) prepare() (*spawn, []int, error) {
	if err := checkProc(s.self); err != nil {
		return nil, nil, err
	}
	nListen, err := listenFDs(os.Environ(), s.self)
	if err != nil {
		return nil, nil, err
	}
	sp, err := s.planSpawn(nListen)
	if err != nil {
		return nil, nil, err
	}
	if err := s.becomeReaper(s.cfg.Subreaper); err != nil {
		return nil, nil, err
	}
	closeAfterStart := s.prepareFDs(nListen)
	s.cg = s.openCgroup()
	return sp, closeAfterStart, nil
}

// launch starts CMD once the signals are asked for: a signal sent to init
// from the moment CMD may run is forwarded.
func (s *supervisor) launch(sp *spawn) error {
	s.restoreCHLD = s.takeSIGCHLD()
	s.reg.waitFirst()
	err := s.armParentDeath()
	if err == nil {
		err = s.start(sp)
	}
	if err != nil {
		s.dropCgroup()
		s.putBackSIGCHLD()
	}
	return err
}

// armParentDeath sets Config.ParentDeathSignal, after the signal is asked
// for: a parent that is already gone raises it at once, and it is then
// forwarded like any other.
func (s *supervisor) armParentDeath() error {
	sig := s.cfg.ParentDeathSignal
	if sig == 0 {
		return nil
	}
	if err := proctree.SetParentDeathSignal(sig); err != nil {
		return fmt.Errorf("set the parent-death signal: %w", err)
	}
	return nil
}

// leaveDir moves init to /, once CMD has started in its own working
// directory: a long-lived init must not keep the directory it was started
// in (and the mount it is on) busy. dumb-init does the same.
func leaveDir(log *slog.Logger) {
	if err := os.Chdir("/"); err != nil {
		log.Warn("orphand init: cannot move to /; the directory init was started in stays in use", "err", err)
	}
}

// supervise forwards signals and reaps until CMD has been reaped. The
// waiter goroutine reaps (waiter_linux.go); when it cannot be started, or
// stops before CMD has been reaped, this goroutine reaps on SIGCHLD.
func (s *supervisor) supervise(ctx context.Context) {
	w := s.startWaiter()
	done := ctx.Done()
	for {
		select {
		case <-done:
			done = nil
			s.escalate("context done")
		case <-w.doneChan():
			w.stop(s)
			w = nil
			if s.reapLocked() { // and what exited unannounced meanwhile
				return
			}
		case sig := <-s.sigc:
			switch {
			case sig != syscall.SIGCHLD:
				s.handle(sig.(syscall.Signal))
			case w != nil:
				// Queued before SIGCHLD was set to SIG_DFL: the waiter reaps.
			case s.reapLocked():
				return
			}
		}
	}
}

// handle acts on one signal other than SIGCHLD received while CMD runs:
// it forwards what --rewrite makes of it, and the escalation rule looks at
// that, not at what init received.
func (s *supervisor) handle(sig syscall.Signal) {
	switch sig {
	case syscall.SIGPIPE, syscall.SIGTTIN, syscall.SIGTTOU:
		return // init's own; see notForwarded
	}
	to := rewritten(s.cfg.Rewrite, sig)
	if to == 0 {
		if s.debug {
			s.log.Debug("orphand init: dropped a signal (--rewrite)", "signal", SignalName(sig))
		}
		return
	}
	if !s.cfg.NoEscalate && s.esc.observe(to, time.Now()) {
		s.escalate("second SIGINT")
		return
	}
	s.forward(to)
}

// forward sends sig to CMD, or to its process group. CMD's pid cannot have
// been reused: it is signalled only under mu, after checking that CMD has
// not been reaped.
func (s *supervisor) forward(sig syscall.Signal) {
	target := s.cmdPid
	if s.cfg.SignalGroup {
		target = -s.cmdPid // CMD leads its own group (Setpgid or Setsid)
	}
	s.mu.Lock()
	var err error = unix.ESRCH
	if !s.cmdExited {
		err = unix.Kill(target, sig)
	}
	s.mu.Unlock()
	if s.debug || (err != nil && !errors.Is(err, unix.ESRCH)) {
		s.log.Debug("orphand init: forwarded a signal", "signal", SignalName(sig), "to", target, "err", err)
	}
}

// escalate stops waiting for anyone: CMD (and its group) get SIGKILL now,
// and once CMD is reaped every other descendant gets SIGKILL without grace.
func (s *supervisor) escalate(why string) {
	if s.escalated {
		return
	}
	s.escalated = true
	s.log.Warn("orphand init: killing CMD and every descendant with SIGKILL now", "reason", why)
	s.mu.Lock()
	if !s.cmdExited { // else finish kills the rest, without grace
		_ = unix.Kill(s.cmdPid, unix.SIGKILL)
		_ = unix.Kill(-s.cmdPid, unix.SIGKILL)
	}
	s.mu.Unlock()
	if s.cg != nil {
		_ = s.cg.killNow() // without waiting: finish waits (and a failure shows there)
	}
}

// reapLocked reaps every child that has exited, holding mu, and reports
// whether CMD has been reaped.
func (s *supervisor) reapLocked() (cmdExited bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reapWaiting()
	return s.cmdExited
}

// reapWaiting reaps every child that has exited, like tini: wait4(-1,
// WNOHANG) until none is waiting. It reports whether init has no child left
// at all. While the waiter goroutine runs, call it through reapLocked.
func (s *supervisor) reapWaiting() (none bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := wait4NoHang(&ws)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.ECHILD):
			return true
		case err != nil:
			s.log.Error("orphand init: wait4", "err", err)
			return false
		case pid <= 0:
			return false
		}
		switch {
		case pid == s.cmdPid && !s.cmdExited:
			s.cmdExited, s.cmdStatus = true, ws
			if s.debug {
				s.log.Debug("orphand init: CMD exited", "pid", pid, "status", describe(ws))
			}
		case s.cfg.WarnOnReap:
			s.log.Warn("orphand init: reaped a zombie process", "pid", pid, "status", describe(ws))
		case s.debug:
			s.log.Debug("orphand init: reaped", "pid", pid, "status", describe(ws))
		}
	}
}

func (s *supervisor) dropCgroup() {
	if s.cg == nil {
		return
	}
	if err := s.cg.remove(); err != nil {
		s.log.Warn("orphand init: cannot remove CMD's cgroup", "cgroup", s.cg.path, "err", err)
	}
	s.cg = nil
}

func (s *supervisor) cgroupPath() string {
	if s.cg == nil {
		return ""
	}
	return s.cg.path
}

func (s *supervisor) cgroupRel() string {
	if s.cg == nil {
		return ""
	}
	return s.cg.rel
}

// wait4NoHang is wait4(-1, ws, WNOHANG, nil). It never blocks, so it is a
// raw system call: the runtime's bookkeeping around a blocking one would
// wake its monitor thread at every reap.
func wait4NoHang(ws *syscall.WaitStatus) (int, error) {
	pid, _, errno := unix.RawSyscall6(unix.SYS_WAIT4, ^uintptr(0), uintptr(unsafe.Pointer(ws)), unix.WNOHANG, 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(pid), nil
}

func describe(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit %d", ws.ExitStatus())
	case ws.Signaled():
		return "killed by " + SignalName(ws.Signal())
	}
	return fmt.Sprintf("status %#x", uint32(ws))
}

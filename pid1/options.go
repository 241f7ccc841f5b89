package pid1

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/orphand/orphand/proctree"
)

// Exit codes of an init that could not run CMD to completion. They follow
// the convention of docker run, env(1) and timeout(1), so that a container's
// exit code still tells who failed.
const (
	// ExitInitFailed: init itself failed (bad usage, or it could not set
	// itself up: subreaper required but refused, no /proc, ...).
	ExitInitFailed = 125
	// ExitCannotExec: CMD was found but could not be executed (permission
	// denied, not an executable, ...).
	ExitCannotExec = 126
	// ExitNotFound: CMD was not found.
	ExitNotFound = 127
)

// DefaultGrace is how long remaining descendants get between the polite
// signal and SIGKILL, when Config.Grace is not set.
const DefaultGrace = 2 * time.Second

// CgroupMode says whether Run puts CMD in a cgroup of its own.
type CgroupMode int

const (
	// CgroupAuto uses a child cgroup only when init is neither PID 1 nor a
	// child subreaper: a reaper finds every descendant in its own process
	// tree, since orphans are re-parented to it; anything else loses what
	// is re-parented away, and only a cgroup still holds it. When init
	// cannot create one it goes on without (logged at Info).
	CgroupAuto CgroupMode = iota
	// CgroupOff never uses a cgroup: remaining descendants are found by
	// walking the process tree, which only sees what was reparented to init.
	CgroupOff
	// CgroupOn uses a child cgroup whenever init can create one (under its
	// own cgroup v2), reaper or not: leftovers are then also killed with
	// cgroup.kill.
	CgroupOn
)

// Config is what [Run] runs and how. The zero value of every field but Args
// is a sensible default.
type Config struct {
	// Args is CMD and its arguments. Args[0] is looked up in $PATH (of Env)
	// when it contains no slash.
	Args []string
	// Env is CMD's environment; nil means init's own.
	Env []string
	// Dir is CMD's working directory; "" means init's.
	Dir string
	// Stdin, Stdout and Stderr are CMD's standard files; nil means init's.
	Stdin, Stdout, Stderr *os.File

	// Subreaper requires init to be a child subreaper, and fails (exit
	// code ExitInitFailed) when it cannot be one. Without it, an init that
	// is not PID 1 still tries to become one, and only warns when it
	// cannot.
	Subreaper bool
	// Setsid starts CMD in a session of its own (and hands it the terminal
	// when init can, see the package documentation); otherwise CMD gets a
	// process group of its own in init's session.
	Setsid bool
	// SignalGroup forwards signals to CMD's whole process group rather than
	// to CMD alone.
	SignalGroup bool
	// Rewrite maps a received signal to the one forwarded; a mapping to 0
	// drops the signal.
	Rewrite map[syscall.Signal]syscall.Signal
	// NoEscalate turns the escalation rule off: a second SIGINT is
	// forwarded like the first (tini's and dumb-init's behaviour), and a
	// SIGINT while init waits for what CMD left behind does not cut the
	// wait short.
	NoEscalate bool
	// KillSignal is the polite signal sent to the descendants that remain
	// when CMD has exited; 0 means SIGTERM.
	KillSignal syscall.Signal
	// Grace is how long they get before SIGKILL; 0 means DefaultGrace, a
	// negative value means no grace (SIGKILL at once).
	Grace time.Duration
	// NoKillRemaining exits as soon as CMD has exited and the zombies then
	// waiting are reaped, leaving any other descendant running (tini's
	// behaviour; as PID 1 the kernel then kills them with the namespace).
	NoKillRemaining bool
	// ExpectedCodes are exit codes of CMD (after the 128+signal mapping)
	// that init reports as 0.
	ExpectedCodes []int
	// KeepFDs passes every file descriptor init inherited on to CMD. By
	// default only 0, 1, 2 and socket activation's LISTEN_FDS reach CMD.
	KeepFDs bool
	// ParentDeathSignal, if not 0, is armed as init's own parent-death
	// signal before CMD starts.
	ParentDeathSignal syscall.Signal
	// Cgroup chooses whether CMD runs in a child cgroup.
	Cgroup CgroupMode
	// WarnOnReap logs every orphan init reaps (not CMD) at Warn level, as
	// tini -w does: a zombie reaped by init is a process whose parent did
	// not wait for it.
	WarnOnReap bool
	// ListenPIDHelper is the command line of a program that sets LISTEN_PID
	// to its own pid and then executes its arguments (the path of CMD, then
	// CMD's argv). Run starts CMD through it when init received socket
	// activation (LISTEN_PID is init's pid), since CMD's pid is not known
	// before it is forked. `orphand init` passes itself; nil leaves
	// LISTEN_PID as it is (it then names init, and CMD ignores the
	// sockets), with a warning.
	ListenPIDHelper []string
	// Logger receives init's messages: warnings the user must see at Warn,
	// what init does at Debug. nil means slog.Default().
	Logger *slog.Logger
}

// Result is how CMD ended and what init should exit with.
type Result struct {
	// Code is the exit code init should exit with: CMD's exit code, or
	// 128+N if a signal N killed it, or 0 if that code is expected; when
	// Run fails, ExitInitFailed, ExitCannotExec or ExitNotFound.
	Code int
	// Pid is CMD's pid (0 if it never started).
	Pid int
	// Status is CMD's wait status.
	Status syscall.WaitStatus
	// Remaining counts the descendants that were still running when CMD
	// had exited, as the first kill phase found them.
	Remaining int
	// Escalated is true when a second SIGINT (or ctx) cut the grace short.
	Escalated bool
	// Cgroup is CMD's cgroup as /proc/<pid>/cgroup shows it, or "" when
	// CMD ran without one.
	Cgroup string
}

// Error is a failure of Run before or while starting CMD; Code is the exit
// code init should exit with.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ErrNoCommand is returned by Run when Config.Args is empty.
var ErrNoCommand = errors.New("no command given: pass CMD after the flags, e.g. orphand init -- /app/server --port 8080")

// exitCode maps CMD's wait status to init's exit code.
func exitCode(ws syscall.WaitStatus, expected []int) int {
	code := ws.ExitStatus()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	for _, e := range expected {
		if e == code {
			return 0
		}
	}
	return code
}

func (c *Config) grace() time.Duration       { return effectiveGrace(c.Grace) }
func (c *Config) killSignal() syscall.Signal { return orTERM(c.KillSignal) }
func (c *Config) logger() *slog.Logger       { return orDefault(c.Logger) }

// Options tune [Start].
type Options struct {
	// Subreaper makes Start fail when the process is not PID 1 and cannot
	// become a child subreaper; without it that is a warning.
	Subreaper bool
	// KillSignal is what [Init.Shutdown] sends first to the descendants
	// still running; 0 means SIGTERM.
	KillSignal syscall.Signal
	// Grace is how long they get before SIGKILL; 0 means DefaultGrace, a
	// negative value means SIGKILL at once.
	Grace time.Duration
	// StatusChannel, if not nil, receives the status of every orphan the
	// reaper reaps (see proctree.ReaperConfig.StatusChannel).
	StatusChannel chan proctree.ReapStatus
	// Logger receives the reaper's and Start's messages; nil means
	// slog.Default().
	Logger *slog.Logger
}

func (o *Options) grace() time.Duration       { return effectiveGrace(o.Grace) }
func (o *Options) killSignal() syscall.Signal { return orTERM(o.KillSignal) }
func (o *Options) logger() *slog.Logger       { return orDefault(o.Logger) }

// effectiveGrace reads 0 as the default and a negative value as none.
func effectiveGrace(g time.Duration) time.Duration {
	switch {
	case g == 0:
		return DefaultGrace
	case g < 0:
		return 0
	}
	return g
}

func orTERM(s syscall.Signal) syscall.Signal {
	if s == 0 {
		return syscall.SIGTERM
	}
	return s
}

func orDefault(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}

// Validate checks what can be checked before anything is done; Run starts
// with it.
func (c *Config) Validate() error {
	if len(c.Args) == 0 || c.Args[0] == "" {
		return ErrNoCommand
	}
	for from, to := range c.Rewrite {
		if !validSignal(from) || (to != 0 && !validSignal(to)) {
			return fmt.Errorf("rewrite %d:%d: signals must be 1..64 (0 as the target drops the signal)", int(from), int(to))
		}
	}
	if c.KillSignal != 0 && !validSignal(c.KillSignal) {
		return fmt.Errorf("kill signal %d: must be 1..64", int(c.KillSignal))
	}
	if c.ParentDeathSignal != 0 && !validSignal(c.ParentDeathSignal) {
		return fmt.Errorf("parent-death signal %d: must be 1..64", int(c.ParentDeathSignal))
	}
	for _, e := range c.ExpectedCodes {
		if e < 0 || e > 255 {
			return fmt.Errorf("expected exit code %d: must be 0..255", e)
		}
	}
	return nil
}

func validSignal(s syscall.Signal) bool { return s >= 1 && s <= 64 }

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/ipc"
)

// Environment variables run sets for CMD.
const (
	groupEnv  = "ORPHAND_GROUP"   // the id of CMD's group
	connFdEnv = "ORPHAND_CONN_FD" // --on disconnect: the connection's fd number in CMD
)

// registerTimeout bounds dialling and registering before CMD runs: an agent
// that does not answer by then is broken, and CMD should not wait forever.
const registerTimeout = 30 * time.Second

var runCmd = &command{
	name:        "run",
	synopsis:    "[--name N] [--grace D] [--signal S] [--on exit|disconnect] [--allow-unprotected] -- CMD [ARG...]",
	summary:     "run a command that nothing it starts can outlive",
	keepSignals: true,
	help: `Registers itself with the agent, then executes CMD in its place: CMD keeps
orphanctl's pid, stdio, environment, signal dispositions and inherited file
descriptors, and the exit status is CMD's own. When CMD exits — normally, by
crash or by kill -9 — the agent kills everything CMD started: children,
grandchildren, double-forked setsid daemons.

CMD gets $ORPHAND_GROUP, its group's id. No descriptor of orphanctl's own
reaches CMD, except with --on disconnect: then the group is killed when its
connection to the agent closes, and that connection is handed to CMD on
purpose as descriptor $ORPHAND_CONN_FD (blocking mode). Every process CMD
starts inherits it too unless CMD closes it first (or sets close-on-exec on
it); the group dies when the last copy is closed, so CMD can end its group
early by closing it, and a child that keeps it keeps the group alive.

If the agent cannot be reached, run refuses to start CMD (exit status 125)
unless --allow-unprotected says to run it anyway, with a warning.

Exit status: CMD's, once it runs; else 125 (orphanctl failed: usage, agent
unreachable or refused), 126 (CMD not executable), 127 (CMD not found).

Examples:
  orphanctl run -- make -j8 test
  orphanctl run --name worker --grace 10s --signal INT -- ./worker --queue jobs
  orphanctl run --allow-unprotected -- ./nightly-job.sh   # still runs if orphand is down`,
	run: runRun,
}

type runOptions struct {
	kill             killFlags
	on               onFlag
	parent           string
	allowUnprotected bool
}

func runRun(ctx context.Context, c *cli, args []string) error {
	fs := c.newFlagSet()
	o := runOptions{on: "exit"}
	o.kill.define(fs)
	fs.Var(&o.on, "on", "the trigger: `exit` (CMD exits; the default) or disconnect (the connection handed to CMD closes)")
	fs.StringVar(&o.parent, "parent", "", "nest the new group under `GROUP` (default: the group orphanctl is already in, if any)")
	fs.BoolVar(&o.allowUnprotected, "allow-unprotected", false, "run CMD even if the agent cannot be reached (with a warning)")
	argv, err := c.parse(fs, args)
	if err != nil {
		if errors.Is(err, errHelp) {
			return err
		}
		return &exitError{code: exitRunFailed, err: fmt.Errorf("%w\nRun 'orphanctl run --help' for usage", err)}
	}
	if len(argv) == 0 {
		return &exitError{code: exitRunFailed, err: errors.New("missing CMD (orphanctl run [flags] -- CMD [ARG...])")}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		code := exitCannotExec
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) || errors.Is(err, exec.ErrDot) {
			code = exitNotFound
		}
		return &exitError{code: code, err: err}
	}
	if o.kill.name == "" {
		o.kill.name = filepath.Base(argv[0])
	}

	env, conn, err := c.protect(ctx, o)
	if err != nil {
		return err
	}
	err = syscall.Exec(path, argv, env)
	// Only on failure: a GC finalizer must not close the connection handed
	// to CMD before the exec, so it stays reachable until here.
	runtime.KeepAlive(conn)
	return &exitError{code: exitCannotExec, err: fmt.Errorf("cannot execute %s: %w", path, err)}
}

// protect registers orphanctl (soon CMD: exec keeps the pid) and returns
// CMD's environment. With --on disconnect it returns the connection, left
// open and inheritable; otherwise it closes it.
func (c *cli) protect(ctx context.Context, o runOptions) ([]string, *ipc.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	env := os.Environ()
	cl, err := c.dial(ctx)
	if err != nil {
		if o.allowUnprotected && errors.Is(err, ipc.ErrUnreachable) {
			_, _ = fmt.Fprintf(c.stderr, "orphanctl run: WARNING: running CMD UNPROTECTED (--allow-unprotected): %v\n", err)
			return env, nil, nil
		}
		return nil, nil, &exitError{code: exitRunFailed, err: err}
	}
	g, err := cl.Register(ctx, ipc.RegisterOptions{
		Name: o.kill.name, Grace: o.kill.grace.duration(), Signal: o.kill.signal,
		On: string(o.on), Parent: o.parent,
	})
	if err != nil {
		_ = cl.Close()
		return nil, nil, &exitError{code: exitRunFailed, err: fmt.Errorf("cannot register with orphand: %w", err)}
	}
	env = withEnv(env, groupEnv, g.ID)
	if o.on != ipc.OnDisconnect {
		_ = cl.Close()
		return env, nil, nil
	}
	fd, err := inheritable(cl)
	if err != nil {
		_ = cl.Close()
		return nil, nil, &exitError{code: exitRunFailed, err: err}
	}
	return withEnv(env, connFdEnv, strconv.Itoa(fd)), cl, nil
}

// inheritable makes the client's socket survive exec: it clears
// close-on-exec (Go sets it on every descriptor it opens) and non-blocking
// mode (CMD expects an ordinary descriptor), and returns its number.
func inheritable(cl *ipc.Client) (int, error) {
	rc, err := cl.SyscallConn()
	if err != nil {
		return 0, err
	}
	n, ferr := -1, error(nil)
	err = rc.Control(func(fd uintptr) {
		n = int(fd)
		if _, e := unix.FcntlInt(fd, unix.F_SETFD, 0); e != nil {
			ferr = fmt.Errorf("clear close-on-exec on the agent connection: %w", e)
			return
		}
		if e := unix.SetNonblock(n, false); e != nil {
			ferr = fmt.Errorf("make the agent connection blocking: %w", e)
		}
	})
	if err == nil {
		err = ferr
	}
	runtime.KeepAlive(cl)
	return n, err
}

// withEnv returns env with key set to value (replacing any earlier value).
func withEnv(env []string, key, value string) []string {
	return append(withoutEnv(env, key), key+"="+value)
}

func withoutEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

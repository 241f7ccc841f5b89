package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"syscall"

	"github.com/orphand/orphand/internal/signame"
	"github.com/orphand/orphand/pid1"
)

// listenPIDHelperArg is the hidden first argument that makes `orphand init`
// the LISTEN_PID helper of socket activation (pid1.ExecWithListenPID).
const listenPIDHelperArg = "--exec-with-listen-pid"

const initHelp = `Usage: orphand init [flags] [--] CMD [ARGS...]

Runs CMD as the one child of an init: as PID 1 of a container's pid
namespace, or anywhere else as a child subreaper. It reaps every orphaned
zombie as soon as it exits, forwards signals to CMD, and when CMD exits it
ends every process CMD left behind — setsid'ed daemons included — before it
exits itself with CMD's exit code.

Flags (one per argument: -s -g, not -sg):
  -s, --subreaper        require being a child subreaper; fail if the kernel
                         refuses (without -s, a refusal is only a warning)
  -g, --signal-group     forward signals to CMD's process group, not CMD alone
      --setsid           run CMD in a session of its own (it then takes the
                         terminal when init can give it up)
  -r, --rewrite FROM:TO  forward signal FROM as TO; TO=0 drops FROM
                         (repeatable; names or numbers: TERM:QUIT, 15:3, INT:0)
      --kill-signal SIG  signal for what remains when CMD exits (default TERM)
      --grace DURATION   time they get before SIGKILL (default 2s; 0: none)
      --no-kill-remaining  exit when CMD exits, leaving the rest running
                         (tini's behaviour)
  -e, --expect-exit CODE report CMD's exit code CODE as 0 (repeatable;
                         128+N for death by signal N, e.g. 143 for SIGTERM)
      --keep-fds         pass every inherited file descriptor to CMD (by
                         default only 0-2 and socket activation's LISTEN_FDS)
  -p, --pdeathsig SIG    signal init receives when its parent dies (it is
                         forwarded to CMD like any other)
      --no-cgroup        do not run CMD in a cgroup of its own
  -v, --verbose          log what init does (to stderr)
  -h, --help             show this help

Signals: every catchable signal init receives is forwarded to CMD, except
SIGCHLD, SIGURG, SIGPIPE, SIGTTIN and SIGTTOU (init's own). A second SIGINT
within the grace period after a SIGINT or SIGTERM kills CMD and every
descendant with SIGKILL at once; init then reaps them and exits with CMD's
code (137 for SIGKILL).

Exit status: CMD's exit code, or 128+N if signal N killed it (or 0 for an
expected code); 125 if orphand init itself failed, 126 if CMD cannot be
executed, 127 if CMD was not found.

See docs/init.md for the full behaviour and a comparison with tini,
dumb-init and catatonit.
`

func runInit(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == listenPIDHelperArg {
		err := pid1.ExecWithListenPID(args[1:])
		_, _ = fmt.Fprintln(stderr, "orphand init:", err)
		return pid1.ExitCannotExec
	}
	cfg, verbose, err := parseInit(args)
	if errors.Is(err, flag.ErrHelp) {
		_, _ = fmt.Fprint(stdout, initHelp)
		return exitOK
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "orphand init: %v (run orphand init --help)\n", err)
		return pid1.ExitInitFailed
	}
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level, ReplaceAttr: dropTime}))
	cfg.ListenPIDHelper = []string{"/proc/self/exe", "init", listenPIDHelperArg}
	res, err := pid1.Run(context.Background(), cfg)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "orphand init:", err)
	}
	return res.Code
}

// dropTime leaves the time out of init's log lines: container runtimes and
// journald stamp them already.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// parseInit turns the command line into pid1's configuration.
func parseInit(args []string) (pid1.Config, bool, error) {
	var (
		cfg       pid1.Config
		verbose   bool
		noCgroup  bool
		grace     = pid1.DefaultGrace
		rewrites  = map[syscall.Signal]syscall.Signal{}
		fs        = flag.NewFlagSet("orphand init", flag.ContinueOnError)
		sigFlag   = func(dst *syscall.Signal) func(string) error { return signalFlag(dst) }
		boolFlags = []struct {
			p     *bool
			names []string
		}{
			{&cfg.Subreaper, []string{"s", "subreaper"}},
			{&cfg.SignalGroup, []string{"g", "signal-group"}},
			{&cfg.Setsid, []string{"setsid"}},
			{&cfg.NoKillRemaining, []string{"no-kill-remaining"}},
			{&cfg.KeepFDs, []string{"keep-fds"}},
			{&noCgroup, []string{"no-cgroup"}},
			{&verbose, []string{"v", "verbose"}},
		}
	)
	fs.SetOutput(io.Discard) // errors are reported by the caller, help by initHelp
	for _, b := range boolFlags {
		for _, n := range b.names {
			fs.BoolVar(b.p, n, false, "")
		}
	}
	rewrite := func(v string) error {
		from, to, err := pid1.ParseRewrite(v)
		rewrites[from] = to
		return err
	}
	expect := func(v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > 255 {
			return fmt.Errorf("exit code %q: want a number 0..255", v)
		}
		cfg.ExpectedCodes = append(cfg.ExpectedCodes, n)
		return nil
	}
	for _, n := range []string{"r", "rewrite"} {
		fs.Func(n, "", rewrite)
	}
	for _, n := range []string{"e", "expect-exit"} {
		fs.Func(n, "", expect)
	}
	for _, n := range []string{"p", "pdeathsig"} {
		fs.Func(n, "", sigFlag(&cfg.ParentDeathSignal))
	}
	fs.Func("kill-signal", "", sigFlag(&cfg.KillSignal))
	fs.DurationVar(&grace, "grace", grace, "")
	if err := fs.Parse(args); err != nil {
		return cfg, false, err
	}
	if grace < 0 {
		return cfg, false, fmt.Errorf("--grace %v: must not be negative", grace)
	}
	cfg.Grace = grace
	if grace == 0 {
		cfg.Grace = -1 // no grace at all (pid1 reads 0 as "default")
	}
	if len(rewrites) > 0 {
		cfg.Rewrite = rewrites
	}
	if noCgroup {
		cfg.Cgroup = pid1.CgroupOff
	}
	cfg.Args = fs.Args()
	if len(cfg.Args) == 0 {
		return cfg, false, pid1.ErrNoCommand
	}
	return cfg, verbose, nil
}

func signalFlag(dst *syscall.Signal) func(string) error {
	return func(v string) error {
		sig, err := signame.Parse(v)
		if err != nil {
			return err
		}
		*dst = sig
		return nil
	}
}

// Command testhelper is built by pid1's tests (never shipped):
//
//	testhelper nosubreaper CMD ARGS…
//	testhelper init CMD ARGS…
//	testhelper init-sigchld CMD ARGS…
//	testhelper exec-reaper CMD ARGS…
//	testhelper sigstate [ignore=SIG,…] [block=SIG,…] CMD ARGS…
//	testhelper catch
//
// nosubreaper runs CMD under a seccomp filter that makes
// prctl(PR_SET_CHILD_SUBREAPER) fail with EINVAL, as a restrictive container
// profile (or a kernel before 3.4) would: the way to put `orphand init` in
// the "neither PID 1 nor a subreaper" situation for real.
//
// init is pid1.Run with its defaults, as orphand-init runs it but without
// its command line; init-sigchld is the same with Run's fallback forced, for
// the benchmarks: reaping on SIGCHLD through os/signal rather than on its
// waiter goroutine (testknobs.ReapOnSIGCHLD).
//
// exec-reaper is the other way an init could be built, also for the
// benchmarks: proctree.StartReaper reaping orphans while os/exec runs CMD
// and waits for it (pid1.Start's design, the library way).
//
// sigstate executes CMD with the signals named ignored (SIG_IGN) and
// blocked, as nohup, a shell's background job or a careless parent leave
// them: the state an init must pass on.
//
// catch is a CMD that reports every signal it receives: it prints "ready"
// once it catches them all, then "got N" for each signal N, and exits 0
// after SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"syscall"

	"github.com/orphand/orphand/pid1"
	"github.com/orphand/orphand/pid1/internal/testknobs"
	"github.com/orphand/orphand/proctree"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "catch" {
		catch()
	}
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: testhelper nosubreaper|init|init-sigchld|exec-reaper CMD ARGS…")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "nosubreaper":
		if err := noSubreaper(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "testhelper:", err)
			os.Exit(1)
		}
	case "exec-reaper":
		os.Exit(execReaper(os.Args[2:]))
	case "sigstate":
		if err := sigState(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "testhelper:", err)
			os.Exit(1)
		}
	case "init-sigchld":
		testknobs.ReapOnSIGCHLD = true
		fallthrough
	case "init":
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		res, err := pid1.Run(context.Background(), pid1.Config{Args: os.Args[2:], Logger: log})
		if err != nil {
			fmt.Fprintln(os.Stderr, "testhelper init:", err)
		}
		os.Exit(res.Code)
	}
	fmt.Fprintf(os.Stderr, "testhelper: unknown mode %q\n", os.Args[1])
	os.Exit(2)
}

// execReaper runs argv with os/exec next to proctree's reaper and returns
// the exit code an init would exit with.
func execReaper(argv []string) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := proctree.StartReaper(ctx, proctree.ReaperConfig{Pid: -1, EnableChildSubreaper: os.Getpid() != 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "testhelper exec-reaper:", err)
		return 125
	}
	defer r.Wait()
	defer cancel()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	fmt.Fprintln(os.Stderr, "testhelper exec-reaper:", err)
	return 125
}

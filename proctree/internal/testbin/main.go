// Command testbin is a helper for proctree's tests and benchmarks, built
// by them with `go build` (CGO_ENABLED=0, unlike a -race test binary):
//
//	testbin pdeath [late]   arm SIGUSR1 as the parent-death signal and report on fd 3
//	testbin init CMD ARGS…  a minimal PID 1: run the reaper, run CMD, exit with its status
//	testbin closed-status   a PID 1 whose status reader closes StatusChannel (go-reaper's examples)
//	testbin go-reap         go-reaper's idiom `go proctree.Reap()` where it cannot reap
//
// pdeath writes "ready PID" once armed (after "started PID" and waiting for
// the parent to die first when late is given), then "fired" when SIGUSR1
// arrives.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/orphand/orphand/proctree"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testbin pdeath [late] | init CMD ARGS…")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "pdeath":
		err = pdeath(len(os.Args) > 2 && os.Args[2] == "late")
	case "closed-status":
		err = closedStatus()
	case "go-reap":
		err = goReap()
	case "init":
		var code int
		code, err = initMain(os.Args[2:])
		if err == nil {
			os.Exit(code)
		}
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testbin:", err)
		os.Exit(1)
	}
}

func pdeath(late bool) error {
	report := os.NewFile(3, "report")
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGUSR1)
	if late {
		if _, err := fmt.Fprintf(report, "started %d\n", os.Getpid()); err != nil {
			return err
		}
		for os.Getppid() == proctree.ParentAtStart() {
			time.Sleep(time.Millisecond)
		}
	}
	if err := proctree.SetParentDeathSignal(syscall.SIGUSR1); err != nil {
		return err
	}
	if err := checkReadBack(syscall.SIGUSR1); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(report, "ready %d\n", os.Getpid()); err != nil {
		return err
	}
	select {
	case <-sigc:
		_, err := fmt.Fprintln(report, "fired")
		return err
	case <-time.After(time.Minute):
		return errors.New("no parent-death signal within a minute")
	}
}

// checkReadBack reads the signal back, also after new threads were created
// (they start with no parent-death signal).
func checkReadBack(want syscall.Signal) error {
	if got, err := proctree.ParentDeathSignal(); err != nil || got != want {
		return fmt.Errorf("ParentDeathSignal = %v, %w; want %v", got, err, want)
	}
	done := make(chan struct{})
	for range 4 {
		go func() {
			runtime.LockOSThread() // a new thread, ended with the goroutine
			done <- struct{}{}
		}()
	}
	for range 4 {
		<-done
	}
	if got, err := proctree.ParentDeathSignal(); err != nil || got != want {
		return fmt.Errorf("ParentDeathSignal after new threads = %v, %w; want %v", got, err, want)
	}
	return nil
}

func initMain(argv []string) (int, error) {
	if len(argv) == 0 {
		return 0, errors.New("init: no command")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := proctree.StartReaper(ctx, proctree.ReaperConfig{Pid: -1})
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	cancel()
	r.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil // as a shell (and tini) reports it
		}
		return ee.ExitCode(), nil
	}
	return 0, err
}

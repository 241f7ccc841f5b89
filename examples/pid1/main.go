// Command pid1 is an example of a Go program that is the init (PID 1) of
// its own container and still runs children with os/exec — go-reaper's use
// case without its "Into the Woods" re-exec dance.
//
// One call, pid1.Start, does what such a program needs: it starts
// proctree's reaper, which reaps every orphan that lands on PID 1 but never
// a child that os/exec will wait for (so exec.Cmd reports the right exit
// status), and it turns SIGTERM and SIGINT (which the kernel ignores for a
// PID 1 without handlers) into a context. Shutdown ends whatever is left.
//
// Try it as PID 1 of a new pid namespace:
//
//	go build -o /tmp/pid1-example ./examples/pid1
//	sudo unshare --pid --fork --mount-proc /tmp/pid1-example -jobs 50
//
// It runs the jobs (each one leaves an orphan behind, as shell scripts
// often do), checks every exit status, starts a daemon that escapes by
// double forking, and waits for SIGTERM (or ^C); then it stops the daemon
// and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"github.com/orphand/orphand/pid1"
	"github.com/orphand/orphand/proctree"
)

func main() {
	jobs := flag.Int("jobs", 20, "how many jobs to run with os/exec")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	in, err := pid1.Start(context.Background(), pid1.Options{Logger: log, Grace: 2 * time.Second})
	if err != nil {
		log.Error("cannot act as init", "err", err)
		os.Exit(1)
	}
	fmt.Printf("pid %d: reaper started\n", os.Getpid())

	wrong := runJobs(*jobs)
	fmt.Printf("jobs: %d run, %d with a wrong exit status\n", *jobs, wrong)

	// A daemon that escapes by double forking lands on PID 1 when its
	// parent exits; Shutdown ends it.
	if err := exec.Command("/bin/sh", "-c", "(setsid sleep 1000 &)").Run(); err != nil {
		log.Error("start daemon", "err", err)
	}
	fmt.Println("ready: waiting for SIGTERM")
	<-in.Context().Done()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.Shutdown(ctx); err != nil {
		log.Error("shutdown", "err", err)
		os.Exit(1)
	}
	left, _ := proctree.Descendants(os.Getpid())
	fmt.Printf("stopped: %d processes reaped by the reaper, %d descendants left\n", in.Reaper().Reaped(), len(left))
}

// runJobs runs n shell jobs with os/exec while the reaper runs. Each exits
// with a code of its own and leaves a short-lived orphan behind, which the
// reaper takes; it returns how many statuses were wrong (none, unless the
// reaper stole one).
func runJobs(n int) (wrong int) {
	for i := range n {
		want := i % 7
		err := exec.Command("/bin/sh", "-c", fmt.Sprintf("(sleep 0.01 &); exit %d", want)).Run()
		got := 0
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			got = ee.ExitCode()
		case err != nil:
			got = -1 // e.g. "wait: no child processes": a stolen status
		}
		if got != want {
			fmt.Printf("job %d: exit status %d, want %d (%v)\n", i, got, want, err)
			wrong++
		}
	}
	return wrong
}

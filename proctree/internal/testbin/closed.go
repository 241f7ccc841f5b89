package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/orphand/orphand/proctree"
)

// closedStatus is a PID 1 whose status reader closes StatusChannel, as
// go-reaper's examples do to stop listening: once while statuses wait in
// the reaper's queue (an unbuffered channel nobody reads), once while the
// channel is empty. The reaper must neither panic nor stop reaping. It
// prints "ok" and the count of reaped orphans. Built without -race: closing
// a channel another goroutine sends on is the misuse being tested.
func closedStatus() error {
	if os.Getpid() != 1 {
		return errors.New("closed-status: run me as PID 1 of a pid namespace")
	}
	for _, buffered := range []bool{false, true} {
		if err := closeWhileReaping(buffered); err != nil {
			return err
		}
	}
	fmt.Println("ok")
	return nil
}

func closeWhileReaping(buffered bool) error {
	statuses := make(chan proctree.ReapStatus)
	if buffered {
		statuses = make(chan proctree.ReapStatus, 1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := proctree.StartReaper(ctx, proctree.ReaperConfig{Pid: -1, StatusChannel: statuses})
	if err != nil {
		return err
	}
	defer r.Wait()
	defer cancel()
	if buffered {
		// Read one status, then close, as go-reaper's reader loop does.
		if err := orphans(r, 1); err != nil {
			return err
		}
		<-statuses
	} else if err := orphans(r, 3); err != nil { // queued: nobody reads
		return err
	}
	close(statuses)
	if err := orphans(r, r.Reaped()+5); err != nil {
		return fmt.Errorf("after the status channel was closed (buffered %v): %w", buffered, err)
	}
	fmt.Printf("reaped %d (buffered %v)\n", r.Reaped(), buffered)
	return nil
}

// orphans makes orphans until the reaper has reaped total processes.
func orphans(r *proctree.Reaper, total uint64) error {
	for r.Reaped() < total {
		// A child that exits at once after forking a grandchild that
		// exits too: both land on PID 1 to be reaped.
		_, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", "/bin/true & exit 0"}, &syscall.ProcAttr{})
		if err != nil {
			return err
		}
		deadline := time.Now().Add(30 * time.Second)
		for n := r.Reaped(); r.Reaped() == n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				// Say where the reaper is: this was seen once under load.
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				return fmt.Errorf("nothing reaped within 30 s (%d so far); goroutines:\n%s", n, buf)
			}
		}
	}
	return nil
}

// goReap runs go-reaper's idiom in a process that is neither PID 1 nor a
// subreaper: the error it discards must still reach the log. It prints the
// line logged.
func goReap() error {
	var mu sync.Mutex
	var logs bytes.Buffer
	slog.SetDefault(slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil)))
	//lint:ignore SA1019 go-reaper's idiom is what is tested
	go proctree.Reap() //nolint:errcheck,staticcheck // the idiom under test
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		mu.Lock()
		out := logs.String()
		mu.Unlock()
		if strings.Contains(out, "level=ERROR") {
			fmt.Print(out)
			return nil
		}
	}
	return errors.New("go proctree.Reap(): nothing logged within 30 s")
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Command family shows package family at work, both ways, across languages: a
// Go master starts two Go workers and one Perl worker (worker.pl, core
// modules only) and talks with each.
//
// Every worker says hello, makes a master of its own (its inbox) and sends
// the inbox's connection info up. The master answers through that inbox
// with a task, a list of numbers; the worker pushes progress reports and
// sends the sum as its result, then exits. The master prints what each
// worker reported and checks the sums.
//
//	go run ./examples/family
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/orphand/orphand/family"
)

// workerEnv, set to a worker's name, makes this program a Go worker.
const workerEnv = "FAMILY_EXAMPLE_WORKER"

// Task is what the master sends a worker; Result and Progress what it
// sends back. All travel as JSON, which Perl's JSON::PP speaks too.
type Task struct {
	Numbers []int `json:"numbers"`
}

type Result struct {
	Worker string `json:"worker"`
	Lang   string `json:"lang"`
	PID    int    `json:"pid"`
	Sum    int    `json:"sum"`
}

type Progress struct {
	Done int `json:"done"`
	Of   int `json:"of"`
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	if name := os.Getenv(workerEnv); name != "" {
		err = work(ctx, name)
	} else {
		err = run(ctx, os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "family example:", err)
		os.Exit(1)
	}
}

// work is a Go worker: a child of the example's master, and a master of
// its own for the reply.
func work(ctx context.Context, name string) error {
	up, err := family.InitChild(name)
	if err != nil {
		return err
	}
	defer func() { _ = up.Close() }() // on error paths; Close is idempotent
	inbox, err := family.New(family.Options{})
	if err != nil {
		return err
	}
	defer func() { _ = inbox.Close() }()
	if err := up.ToMaster("inbox", []byte(inbox.ConnectionInfo())); err != nil {
		return err
	}

	var task Task
	for {
		if _, err := inbox.ProcessChildData(ctx, family.BlockUntilData); err != nil {
			return fmt.Errorf("waiting for a task: %w", err)
		}
		t, ok, err := family.GetByName[Task](inbox, "master", "task")
		if err != nil {
			return err
		}
		if ok {
			task = t
			break
		}
	}

	sum := 0
	for i, n := range task.Numbers {
		sum += n
		if (i+1)%50 == 0 || i == len(task.Numbers)-1 {
			if err := family.Push(up, "progress", Progress{Done: i + 1, Of: len(task.Numbers)}); err != nil {
				return err
			}
		}
	}
	if err := family.Send(up, "result", Result{Worker: name, Lang: "go", PID: os.Getpid(), Sum: sum}); err != nil {
		return err
	}
	return up.Close()
}

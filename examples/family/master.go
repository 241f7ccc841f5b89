package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"

	"github.com/orphand/orphand/family"
)

//go:embed worker.pl
var perlWorker []byte

// run is the master: it starts the workers, answers each one's inbox with
// a task, and reports their results.
func run(ctx context.Context, stdout, stderr io.Writer) (err error) {
	// Only this process's descendants, under its own uid, may report.
	m, err := family.New(family.Options{DescendantsOnly: true})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, m.Close()) }()

	cmds, err := startWorkers(m, stderr)
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}()

	// Blocking mode: each return is a value or a disconnection. Answer
	// every new inbox, until every worker has finished.
	expected := map[string]int{} // worker name → the sum it must find
	for len(m.FinishedChildren()) < len(cmds) {
		if _, err := m.ProcessChildData(ctx, family.BlockUntilData); err != nil {
			return err
		}
		for cid, name := range m.RunningChildrenNames() {
			if _, done := expected[name]; done {
				continue
			}
			info, ok := m.FromCID(cid, "inbox")
			if !ok {
				continue
			}
			task := Task{Numbers: numbers(100 * (cid + 1))}
			if err := answer(ctx, string(info), task); err != nil {
				return fmt.Errorf("answering %s: %w", name, err)
			}
			expected[name] = sum(task.Numbers)
		}
	}

	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			return fmt.Errorf("worker %v: %w", c.Args, err)
		}
	}
	cmds = nil
	return report(m, expected, stdout)
}

// startWorkers starts two Go workers (this program again) and, when perl
// is installed, the Perl one. Each finds the master in $ORPHAND_FAMILY.
func startWorkers(m *family.Master, stderr io.Writer) ([]*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var cmds []*exec.Cmd
	for _, name := range []string{"go-worker-1", "go-worker-2"} {
		c := exec.Command(self)
		c.Env = append(os.Environ(), m.Env(), workerEnv+"="+name)
		cmds = append(cmds, c)
	}
	if perl, err := exec.LookPath("perl"); err == nil {
		c := exec.Command(perl, "-", "perl-worker") // the script comes on stdin
		c.Stdin = bytes.NewReader(perlWorker)
		c.Env = append(os.Environ(), m.Env())
		cmds = append(cmds, c)
	} else {
		_, _ = fmt.Fprintln(stderr, "perl not found: running the Go workers only")
	}
	for i, c := range cmds {
		c.Stderr = stderr
		if err := c.Start(); err != nil {
			for _, started := range cmds[:i] {
				_ = started.Process.Kill()
				_ = started.Wait()
			}
			return nil, fmt.Errorf("starting %v: %w", c.Args, err)
		}
	}
	return cmds, nil
}

// answer connects to a worker's inbox as a child named "master" and sends
// the task: the reply half of a bi-directional family.
func answer(ctx context.Context, inbox string, task Task) error {
	c, err := family.NewChildContext(ctx, inbox, "master")
	if err != nil {
		return err
	}
	if err := family.Send(c, "task", task); err != nil {
		return errors.Join(err, c.Close())
	}
	return c.Close()
}

// report prints each worker's result and progress, and checks the sums.
func report(m *family.Master, expected map[string]int, out io.Writer) error {
	finished := m.FinishedChildrenNames()
	var errs []error
	for _, cid := range slices.Sorted(maps.Keys(finished)) {
		name := finished[cid]
		r, ok, err := family.Get[Result](m, cid, "result")
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		if !ok {
			errs = append(errs, fmt.Errorf("%s sent no result", name))
			continue
		}
		steps, err := family.PopAll[Progress](m, cid, "progress")
		if err != nil {
			errs = append(errs, err)
		}
		if _, err := fmt.Fprintf(out, "%-12s %-4s pid %-7d sum %-8d progress reports %d\n", r.Worker, r.Lang, r.PID, r.Sum, len(steps)); err != nil {
			return err
		}
		if r.Sum != expected[name] {
			errs = append(errs, fmt.Errorf("%s found %d, want %d", name, r.Sum, expected[name]))
		}
	}
	return errors.Join(errs...)
}

func numbers(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func sum(ns []int) int {
	s := 0
	for _, n := range ns {
		s += n
	}
	return s
}

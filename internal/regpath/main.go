// Command regpath counts the source files one registration passes through,
// the measure docs/ARCHITECTURE.md states: built with coverage of every
// package of the module (scripts/regpath.sh does it), it runs an agent with
// the cgroupfs backend and a state directory, connects, and clears the
// coverage counters; then it sends one register request and waits for the
// answer, and writes the counters to the directory named by its argument.
// What they count is exactly the code that ran from the request line read
// to the answer written, on an agent otherwise idle. It needs root and a
// cgroup v2 mount, and leaves nothing behind.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/coverage"
	"time"

	"github.com/orphand/orphand/agent"
	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/cgroup/cgroupfs"
	"github.com/orphand/orphand/internal/testutil"
	"github.com/orphand/orphand/ipc"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: regpath COUNTERS-DIR (run scripts/regpath.sh)")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "regpath:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := cgroup.Discover()
	if err != nil {
		return err
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	rel := "/orphand-regpath-" + hex.EncodeToString(b[:])
	if err := os.Mkdir(filepath.Join(m.Path, rel), 0o755); err != nil {
		return fmt.Errorf("make a cgroup for the run (root is needed): %w", err)
	}
	defer func() { _ = testutil.RemoveCgroupTree(filepath.Join(m.Path, rel)) }()
	tmp, err := os.MkdirTemp("", "regpath")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	log := slog.New(slog.DiscardHandler)
	backend, err := cgroupfs.Open(ctx, cgroupfs.Config{Root: rel})
	if err != nil {
		return err
	}
	defer func() { _ = backend.Close() }()
	durable, err := agent.NewDurable(agent.DurableConfig{Dir: filepath.Join(tmp, "state")})
	if err != nil {
		return err
	}
	defer func() { _ = durable.Close() }()
	ready := make(chan struct{})
	cfg := agent.DefaultConfig()
	cfg.OnReady = func() { close(ready) }
	a, err := agent.New(cfg, backend, log, agent.WithDurable(durable))
	if err != nil {
		return err
	}
	sock := filepath.Join(tmp, "orphand.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx, ln) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "regpath: the agent:", err)
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		return fmt.Errorf("the agent did not start: %w", err)
	}

	spawner := exec.Command("sleep", "300")
	if err := spawner.Start(); err != nil {
		return err
	}
	defer func() { _ = spawner.Process.Kill(); _ = spawner.Wait() }()
	nc, err := net.Dial("unix", sock)
	if err != nil {
		return err
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	// The connection is accepted and served once before the count starts.
	if err := request(nc, r, ipc.Request{Op: ipc.OpHello}); err != nil {
		return err
	}
	if err := coverage.WriteMetaDir(out); err != nil {
		return err
	}
	if err := coverage.ClearCounters(); err != nil {
		return err
	}
	if err := request(nc, r, ipc.Request{Op: ipc.OpRegister, Pid: spawner.Process.Pid}); err != nil {
		return err
	}
	return coverage.WriteCountersDir(out)
}

// request sends req as one line and reads the answer, which must be ok.
func request(nc net.Conn, r *bufio.Reader, req ipc.Request) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := nc.Write(append(b, '\n')); err != nil {
		return err
	}
	line, err := r.ReadBytes('\n')
	if err != nil {
		return err
	}
	var resp ipc.Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return err
	}
	if resp.Error != nil {
		return errors.New(resp.Error.Error())
	}
	return nil
}

package cgtest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	helperEnv = "ORPHAND_CGTEST_HELPER"
	readyEnv  = "ORPHAND_CGTEST_READY_FD"
	// Sleepers is how many `sleep` processes the forker leaves behind
	// before it settles into its fork loop.
	Sleepers = 40
	// Threads is how many OS threads the threaded member locks.
	Threads = 8
	// MinTree is the least number of processes the workload has once
	// StartTree returns, none of which exits on its own: the top process,
	// two daemons, the threaded one, the stopped sleep, the forker and its
	// Sleepers. A snapshot of cgroup.procs may hold more — the forker's
	// short-lived children, which can exit before a kill reaches them.
	MinTree = 6 + Sleepers
)

// Tree is a running hostile workload inside one cgroup.
type Tree struct {
	Cmd *exec.Cmd
}

// StartTree starts the hostile workload straight inside the cgroup rel
// (clone3 with CLONE_INTO_CGROUP) and returns once every part runs:
//
//   - two daemons that double-fork, call setsid and ignore SIGTERM/SIGHUP;
//   - a process with Threads OS threads;
//   - a `sleep` stopped with SIGSTOP;
//   - a forker that leaves Sleepers `sleep` processes and then forks
//     short-lived children in a tight loop, forever.
//
// When the test ends, whatever is left in rel is killed and the top process
// reaped.
func StartTree(t testing.TB, rel string) *Tree {
	t.Helper()
	mount, _ := Root(t)
	dir, err := os.Open(filepath.Join(mount, rel))
	if err != nil {
		t.Fatalf("open test cgroup: %v", err)
	}
	defer dir.Close()
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), helperEnv+"=tree")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start workload: %v", err)
	}
	t.Cleanup(func() {
		if err := KillAll(mount, rel); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("workload said %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			_ = cmd.Wait()
			t.Fatalf("workload did not start: %v (%v)", err, cmd.ProcessState)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("workload not ready after 60s")
	}
	return &Tree{Cmd: cmd}
}

var helpers = map[string]func() error{}

// RegisterHelper adds a mode in which the re-executed test binary runs fn
// instead of the tests (call it from TestMain, before Main). fn's error
// ends the process with status 2.
func RegisterHelper(mode string, fn func() error) { helpers[mode] = fn }

// Helper prepares a command that re-executes the test binary in mode.
func Helper(mode string) *exec.Cmd {
	c := exec.Command("/proc/self/exe")
	c.Env = append(os.Environ(), helperEnv+"="+mode)
	c.Stderr = os.Stderr
	return c
}

// runHelper is the body of the re-executed test binary.
func runHelper(mode string) {
	var err error
	switch mode {
	case "tree":
		err = helperTree()
	case "daemon":
		err = helperDaemon()
	case "daemon2":
		signal.Ignore(syscall.SIGTERM, syscall.SIGHUP)
		if err = sayReady(); err == nil {
			sleepForever()
		}
	case "threads":
		for range Threads {
			go func() {
				runtime.LockOSThread()
				sleepForever()
			}()
		}
		if err = sayReady(); err == nil {
			sleepForever()
		}
	case "forker":
		err = helperForker()
	case "sleep":
		sleepForever()
	default:
		fn, ok := helpers[mode]
		if !ok {
			err = fmt.Errorf("unknown helper mode %q", mode)
			break
		}
		err = fn()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cgtest helper %s: %v\n", mode, err)
		os.Exit(2)
	}
}

func helperTree() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	parts := []string{"daemon", "daemon", "threads", "forker"}
	for _, p := range parts {
		c := self(p, w)
		if err := c.Start(); err != nil {
			return err
		}
		go func() { _ = c.Wait() }() // reap the daemons' first fork
	}
	stopped := exec.Command("sleep", "1000")
	if err := stopped.Start(); err != nil {
		return err
	}
	if err := stopped.Process.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	w.Close()
	buf := make([]byte, len(parts))
	for got := 0; got < len(parts); {
		n, err := r.Read(buf[got:])
		if err != nil {
			return fmt.Errorf("waiting for parts: %d of %d ready: %w", got, len(parts), err)
		}
		got += n
	}
	fmt.Println("ready")
	sleepForever()
	return nil
}

// helperDaemon is the first fork of a classic daemon: start the second,
// in a new session, and exit so that it is reparented.
func helperDaemon() error {
	w := os.NewFile(3, "ready")
	c := self("daemon2", w)
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return c.Start()
}

func helperForker() error {
	for range Sleepers {
		if err := exec.Command("sleep", "1000").Start(); err != nil {
			return err
		}
	}
	if err := sayReady(); err != nil {
		return err
	}
	for {
		_ = exec.Command("true").Run()
	}
}

// self prepares a re-execution of the test binary in mode, with the ready
// pipe as fd 3.
func self(mode string, ready *os.File) *exec.Cmd {
	c := exec.Command("/proc/self/exe")
	c.Env = append(os.Environ(), helperEnv+"="+mode, readyEnv+"=3")
	c.Stderr = os.Stderr
	c.ExtraFiles = []*os.File{ready}
	return c
}

func sayReady() error {
	fd, err := strconv.Atoi(os.Getenv(readyEnv))
	if err != nil {
		return errors.New("no ready fd")
	}
	f := os.NewFile(uintptr(fd), "ready")
	_, err = f.Write([]byte{1})
	f.Close()
	return err
}

func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

// KillAll SIGKILLs everything in the cgroup rel (and below) with
// cgroup.kill and waits until it is empty; a missing cgroup is fine.
func KillAll(mount, rel string) error {
	dir := filepath.Join(mount, rel)
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("kill %s: %w", rel, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
		if errors.Is(err, os.ErrNotExist) || strings.Contains(string(b), "populated 0") {
			return nil
		}
		if err != nil {
			return fmt.Errorf("kill %s: %w", rel, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still populated 30s after cgroup.kill", rel)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Destroy kills everything in the cgroup rel and removes it and everything
// below it, deepest first.
func Destroy(mount, rel string) error {
	if err := KillAll(mount, rel); err != nil {
		return err
	}
	var dirs []string
	_ = filepath.WalkDir(filepath.Join(mount, rel), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		var err error
		for try := 0; try < 200; try++ {
			if err = os.Remove(dirs[i]); err == nil || errors.Is(err, os.ErrNotExist) {
				err = nil
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("remove %s: %w", dirs[i], err)
		}
	}
	return nil
}

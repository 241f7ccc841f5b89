// Command signals is the floor of a Go init that forwards signals, for
// pid1's benchmarks: it registers with os/signal every signal that
// `orphand init` catches (1-64 but SIGKILL, SIGSTOP, SIGURG, 32 and 33),
// starts its arguments as a child, forwards to it every signal but SIGCHLD,
// and exits with its code once it has reaped it (orphans are reaped too).
// Nothing else: no cgroup, no descriptors, no logging. Never shipped.
//
//	signals CMD ARGS…
package main

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(argv []string) int {
	if len(argv) == 0 {
		return 125
	}
	c := make(chan os.Signal, 64)
	var sigs []os.Signal
	for s := syscall.Signal(1); s <= 64; s++ {
		switch s {
		case syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGURG, 32, 33:
			continue
		}
		sigs = append(sigs, s)
	}
	signal.Notify(c, sigs...)
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return 127
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		return 126
	}
	for sig := range c {
		if sig != syscall.SIGCHLD {
			_ = syscall.Kill(pid, sig.(syscall.Signal))
			continue
		}
		for {
			var ws syscall.WaitStatus
			p, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil || p <= 0 {
				break
			}
			if p == pid {
				if ws.Signaled() {
					return 128 + int(ws.Signal())
				}
				return ws.ExitStatus()
			}
		}
	}
	return 125
}

// Command spawn is the floor of a Go init for pid1's benchmarks: it starts
// its arguments as a child, waits for it and exits with its code, doing
// nothing else — no signal handling, no reaping of orphans. Never shipped.
//
//	spawn CMD ARGS…
package main

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(argv []string) int {
	if len(argv) == 0 {
		return 125
	}
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
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

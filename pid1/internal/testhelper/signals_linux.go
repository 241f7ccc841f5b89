package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/pid1"
)

// sigState executes argv (after the ignore= and block= words) with those
// signals ignored and blocked.
func sigState(args []string) error {
	var ignore, block []syscall.Signal
	for len(args) > 0 {
		k, v, ok := strings.Cut(args[0], "=")
		if !ok || (k != "ignore" && k != "block") {
			break
		}
		for _, name := range strings.Split(v, ",") {
			sig, err := pid1.ParseSignal(name)
			if err != nil {
				return err
			}
			if k == "ignore" {
				ignore = append(ignore, sig)
			} else {
				block = append(block, sig)
			}
		}
		args = args[1:]
	}
	if len(args) == 0 {
		return errors.New("sigstate: no command")
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		return err
	}
	for _, sig := range ignore {
		signal.Ignore(sig) // SIG_IGN survives execve
	}
	// The mask is per thread, and execve keeps the calling thread's: block
	// on this thread, and exec from it.
	runtime.LockOSThread()
	var set unix.Sigset_t
	for _, sig := range block {
		set.Val[(sig-1)/64] |= 1 << ((uint(sig) - 1) % 64)
	}
	if _, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_BLOCK, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0); errno != 0 {
		return fmt.Errorf("sigprocmask: %w", errno)
	}
	return syscall.Exec(path, args, os.Environ())
}

// catch reports every signal it receives until SIGTERM.
func catch() {
	c := make(chan os.Signal, 64)
	signal.Notify(c)
	fmt.Println("ready")
	for s := range c {
		sig := s.(syscall.Signal)
		if sig == syscall.SIGURG || sig == syscall.SIGCHLD {
			continue // the runtime's own preemption; children of ours
		}
		fmt.Printf("got %d\n", int(sig))
		if sig == syscall.SIGTERM {
			os.Exit(0)
		}
	}
}

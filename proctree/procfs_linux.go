package proctree

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func readStat(pid int) (Stat, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	defer f.Close()
	return ParseStat(f)
}

// ReadStat reads and parses /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	st, err := readStat(pid)
	if errors.Is(err, os.ErrNotExist) {
		return Stat{}, fmt.Errorf("proctree: stat pid %d: %w", pid, os.ErrProcessDone)
	}
	return st, err
}

// ReadStatus reads and parses /proc/<pid>/status (pid 0: this process's,
// /proc/self/status). A process that no longer exists gives an error
// wrapping [os.ErrProcessDone]. The lines a caller relies on are checked
// with [Status.Need].
func ReadStatus(pid int) (Status, error) {
	name := "/proc/self/status"
	if pid != 0 {
		name = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return Status{}, fmt.Errorf("proctree: status of pid %d: %w", pid, os.ErrProcessDone)
	}
	if err != nil {
		return Status{}, fmt.Errorf("proctree: status of pid %d: %w", pid, err)
	}
	defer f.Close()
	st, err := ParseStatus(f)
	if err != nil {
		return Status{}, fmt.Errorf("proctree: status of pid %d: %w", pid, err)
	}
	return st, nil
}

// PidNamespace returns the pid namespace of pid as the link
// /proc/<pid>/ns/pid reads (pid 0: this process's), such as
// "pid:[4026531836]". Reading another process's link needs ptrace access
// to it (CAP_SYS_PTRACE for a process of another uid).
func PidNamespace(pid int) (string, error) {
	name := "/proc/self/ns/pid"
	if pid != 0 {
		name = "/proc/" + strconv.Itoa(pid) + "/ns/pid"
	}
	return os.Readlink(name)
}

// BootTicks is the time since boot in clock ticks (CLOCK_BOOTTIME; USER_HZ
// is 100 on Linux): the unit of [Identity.StartTime]. A process that
// started after BootTicks returned has a larger start time, unless it
// started within the same tick. It returns 0 if the clock cannot be read.
func BootTicks() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return uint64(ts.Sec)*100 + uint64(ts.Nsec)/10_000_000
}

// BootID is the kernel's random boot id (/proc/sys/kernel/random/boot_id),
// or "" where it cannot be read. After a reboot pids and start times (even
// pidfs inodes) start over, so an [Identity] recorded with another boot's
// id names no process of this one.
func BootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// ReadCmdline reads pid's command line as ParseCmdline writes it, cut to
// max bytes; "" for a process without one (a kernel thread, a zombie). A
// process that no longer exists gives an error wrapping [os.ErrProcessDone].
func ReadCmdline(pid, max int) (string, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("proctree: cmdline of pid %d: %w", pid, os.ErrProcessDone)
	}
	if err != nil {
		return "", err
	}
	return ParseCmdline(raw, max), nil
}

// ReadWchan reads the kernel function pid waits in (/proc/<pid>/wchan):
// "__refrigerator" for a task frozen by the cgroup v1 freezer, for
// example; "" when it is running or the kernel does not say.
func ReadWchan(pid int) (string, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/wchan")
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("proctree: wchan of pid %d: %w", pid, os.ErrProcessDone)
	}
	if err != nil {
		return "", err
	}
	if s := strings.TrimSpace(string(raw)); s != "0" {
		return s, nil
	}
	return "", nil
}

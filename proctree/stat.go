package proctree

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Stat holds the fields of /proc/<pid>/stat that orphand uses. Field numbers
// in comments are those of proc_pid_stat(5).
type Stat struct {
	Pid        int    // (1)
	Comm       string // (2) without the parentheses; may hold spaces and ')'
	State      byte   // (3) R, S, D, Z, T, t, X, I, ...
	PPid       int    // (4)
	Pgrp       int    // (5)
	Session    int    // (6)
	Flags      uint64 // (9) PF_* flags of the task
	NumThreads int    // (20)
	StartTime  uint64 // (22) clock ticks after boot
}

// pfKthread is PF_KTHREAD from include/linux/sched.h.
const pfKthread = 0x00200000

// IsKernelThread reports whether the stat describes a kernel thread.
func (s Stat) IsKernelThread() bool { return s.Flags&pfKthread != 0 }

// IsZombie reports whether the process has exited but not been reaped.
func (s Stat) IsZombie() bool { return s.State == 'Z' }

// maxStatLen bounds what ParseStat reads: a real stat line is well under 1 KiB
// (comm is at most 64 bytes for kernel threads, 16 otherwise).
const maxStatLen = 4096

// ErrBadStat is wrapped by every error ParseStat returns for malformed input.
var ErrBadStat = errors.New("malformed /proc/<pid>/stat")

// ParseStat parses the contents of /proc/<pid>/stat.
//
// The comm field is delimited by the first '(' and the *last* ')' of the
// line, since a process may name itself anything, ") S 1 (" included.
func ParseStat(r io.Reader) (Stat, error) {
	buf, err := io.ReadAll(io.LimitReader(r, maxStatLen+1))
	if err != nil {
		return Stat{}, err
	}
	if len(buf) > maxStatLen {
		return Stat{}, fmt.Errorf("%w: longer than %d bytes", ErrBadStat, maxStatLen)
	}
	open := bytes.IndexByte(buf, '(')
	closing := bytes.LastIndexByte(buf, ')')
	if open < 0 || closing < open {
		return Stat{}, fmt.Errorf("%w: no (comm)", ErrBadStat)
	}
	var s Stat
	pid, err := strconv.Atoi(string(bytes.TrimSpace(buf[:open])))
	if err != nil {
		return Stat{}, fmt.Errorf("%w: pid: %w", ErrBadStat, err)
	}
	s.Pid = pid
	s.Comm = string(buf[open+1 : closing])
	// fields[0] is field (3), the state.
	fields := bytes.Fields(buf[closing+1:])
	const need = 22 - 2 // fields (3) .. (22)
	if len(fields) < need {
		return Stat{}, fmt.Errorf("%w: %d fields after comm, want at least %d", ErrBadStat, len(fields), need)
	}
	if len(fields[0]) != 1 {
		return Stat{}, fmt.Errorf("%w: state %q", ErrBadStat, fields[0])
	}
	s.State = fields[0][0]
	field := func(n int) []byte { return fields[n-3] }
	ints := []struct {
		n   int
		dst *int
	}{{4, &s.PPid}, {5, &s.Pgrp}, {6, &s.Session}, {20, &s.NumThreads}}
	for _, f := range ints {
		v, err := strconv.Atoi(string(field(f.n)))
		if err != nil {
			return Stat{}, fmt.Errorf("%w: field %d: %w", ErrBadStat, f.n, err)
		}
		*f.dst = v
	}
	uints := []struct {
		n   int
		dst *uint64
	}{{9, &s.Flags}, {22, &s.StartTime}}
	for _, f := range uints {
		v, err := strconv.ParseUint(string(field(f.n)), 10, 64)
		if err != nil {
			return Stat{}, fmt.Errorf("%w: field %d: %w", ErrBadStat, f.n, err)
		}
		*f.dst = v
	}
	return s, nil
}

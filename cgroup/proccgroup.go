package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrNoUnified means a /proc/<pid>/cgroup file has no cgroup v2 ("0::")
// line: the process is not in a cgroup2 hierarchy.
var ErrNoUnified = errors.New("cgroup: no cgroup v2 entry (0::) in /proc/<pid>/cgroup")

// ParseProcCgroup reads a /proc/<pid>/cgroup file (cgroups(7)) and returns
// the path of the "0::" line: the process's cgroup v2, relative to the
// reader's cgroup namespace. A path the kernel marks " (deleted)" (a
// zombie whose cgroup was removed) gives an error wrapping [ErrNotFound].
func ParseProcCgroup(r io.Reader) (string, error) {
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		path, ok := bytes.CutPrefix(sc.Bytes(), []byte("0::"))
		if !ok {
			continue
		}
		if len(path) == 0 || path[0] != '/' {
			return "", fmt.Errorf("cgroup: malformed cgroup v2 line %q", truncate(sc.Text()))
		}
		if p, dead := bytes.CutSuffix(path, []byte(" (deleted)")); dead {
			return "", fmt.Errorf("%w: cgroup %q was removed", ErrNotFound, truncate(string(p)))
		}
		return string(path), nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("cgroup: read /proc/<pid>/cgroup: %w", err)
	}
	return "", ErrNoUnified
}

// ParseProcCgroupV1 reads a /proc/<pid>/cgroup file and returns the path of
// the process in the cgroup v1 hierarchy that controller is bound to (the
// line "N:a,b,controller:/path"), or "" when no v1 hierarchy has it.
func ParseProcCgroupV1(r io.Reader, controller string) (string, error) {
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		_, rest, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		ctrls, path, ok := bytes.Cut(rest, []byte(":"))
		if !ok || len(ctrls) == 0 {
			continue // cgroup v2's "0::" line
		}
		for c := range bytes.SplitSeq(ctrls, []byte(",")) {
			if string(c) != controller {
				continue
			}
			if len(path) == 0 || path[0] != '/' {
				return "", fmt.Errorf("cgroup: malformed cgroup v1 line %q", truncate(sc.Text()))
			}
			return string(path), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("cgroup: read /proc/<pid>/cgroup: %w", err)
	}
	return "", nil
}

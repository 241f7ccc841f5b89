package cgroup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Mkdir creates the cgroup rel; its parent must exist. An existing cgroup
// gives an error wrapping os.ErrExist.
func (fs *FS) Mkdir(rel string) error {
	parent, name, err := splitLast(rel)
	if err != nil {
		return err
	}
	dir, err := fs.openDir(parent)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	if err := mkdirAt(dir, name); err != nil {
		return fmt.Errorf("cgroup: create %s: %w", rel, err)
	}
	return nil
}

// MkdirAll creates rel and any missing parents.
func (fs *FS) MkdirAll(rel string) error {
	parts, err := SplitPath(rel)
	if err != nil {
		return err
	}
	cur := "/"
	for _, p := range parts {
		cur = JoinPath(cur, p)
		if err := fs.Mkdir(cur); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	return nil
}

func mkdirAt(dirfd int, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	_, err := retryEINTR(func() (int, error) { return 0, unix.Mkdirat(dirfd, name, 0o755) })
	if err != nil {
		return os.NewSyscallError("mkdirat", err)
	}
	return nil
}

func splitLast(rel string) (parent, name string, err error) {
	parts, err := SplitPath(rel)
	if err != nil {
		return "", "", err
	}
	if len(parts) == 0 {
		return "", "", fmt.Errorf("cgroup: the root cgroup cannot be created or removed")
	}
	parent = "/"
	for _, p := range parts[:len(parts)-1] {
		parent = JoinPath(parent, p)
	}
	return parent, parts[len(parts)-1], nil
}

// Children lists the names of the cgroups directly below rel.
func (fs *FS) Children(rel string) ([]string, error) {
	dir, err := fs.openDir(rel)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	names, err := childrenAt(dir)
	if err != nil {
		return nil, fmt.Errorf("cgroup: list %s: %w", rel, err)
	}
	return names, nil
}

// childrenAt lists subdirectories of dirfd (which it leaves open).
func childrenAt(dirfd int) ([]string, error) {
	fd, err := retryEINTR(func() (int, error) {
		return unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, os.NewSyscallError("openat", err)
	}
	f := os.NewFile(uintptr(fd), ".")
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Procs lists the pids in the cgroup rel and, if recursive, in every cgroup
// below it. Cgroups that vanish during the walk are skipped: that is a
// normal race, not an error.
func (fs *FS) Procs(rel string, recursive bool) ([]int, error) {
	dir, err := fs.openDir(rel)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	var t tree
	if err := t.walk(dir, recursive); err != nil {
		return nil, fmt.Errorf("cgroup: list processes of %s: %w", rel, err)
	}
	return t.pids, nil
}

// tree collects the processes of a cgroup subtree and the ids (inode
// numbers) of its cgroups, which tell whether a pidfd's process is inside.
type tree struct {
	pids []int
	ids  map[uint64]bool
}

func (t *tree) walk(dirfd int, recursive bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(dirfd, &st); err != nil {
		return os.NewSyscallError("fstat", err)
	}
	if t.ids == nil {
		t.ids = map[uint64]bool{}
	}
	t.ids[st.Ino] = true
	b, err := readAt(dirfd, "cgroup.procs")
	if err != nil {
		return err
	}
	t.pids, err = appendPids(t.pids, b)
	if err != nil || !recursive {
		return err
	}
	names, err := childrenAt(dirfd)
	if err != nil {
		return err
	}
	for _, n := range names {
		fd, err := retryEINTR(func() (int, error) {
			return unix.Openat(dirfd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		})
		if errors.Is(err, unix.ENOENT) {
			continue // removed meanwhile
		}
		if err != nil {
			return os.NewSyscallError("openat", err)
		}
		err = t.walk(fd, true)
		unix.Close(fd)
		if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) {
			return err
		}
	}
	return nil
}

// appendPids parses a cgroup.procs file: one decimal pid per line.
func appendPids(dst []int, b []byte) ([]int, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		pid, err := strconv.Atoi(string(sc.Bytes()))
		if err != nil {
			return dst, fmt.Errorf("cgroup.procs: %w", err)
		}
		dst = append(dst, pid)
	}
	return dst, sc.Err()
}

// ProcessCgroup returns pid's cgroup v2 path as /proc/<pid>/cgroup shows
// it: relative to the reader's cgroup namespace ([FS.CgroupOf] makes it
// relative to the mount). This is the one place orphand reads that file. A
// process that no longer exists gives an error wrapping os.ErrProcessDone;
// a zombie whose cgroup was removed one wrapping [ErrNotFound].
func ProcessCgroup(pid int) (string, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("cgroup: cgroup of pid %d: %w", pid, os.ErrProcessDone)
	}
	if err != nil {
		return "", fmt.Errorf("cgroup: cgroup of pid %d: %w", pid, err)
	}
	defer f.Close()
	p, err := ParseProcCgroup(f)
	if err != nil {
		return "", fmt.Errorf("cgroup: cgroup of pid %d: %w", pid, err)
	}
	return p, nil
}

// CgroupOf returns the cgroup of pid, relative to the mount, from
// /proc/<pid>/cgroup. A process that no longer exists gives an error
// wrapping os.ErrProcessDone.
func (fs *FS) CgroupOf(pid int) (string, error) {
	p, err := ProcessCgroup(pid)
	if err != nil {
		return "", err
	}
	return fs.mount.Rel(p)
}

// Remove deletes the cgroup rel and every cgroup below it, deepest first.
// The kernel refuses (EBUSY) while a cgroup has processes, and for a short
// while after the last one died; Remove retries EBUSY with a backoff of up
// to about two seconds, or until ctx ends. A cgroup already gone is fine.
func (fs *FS) Remove(ctx context.Context, rel string) error {
	parent, name, err := splitLast(rel)
	if err != nil {
		return err
	}
	delay := time.Millisecond
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := fs.removeOnce(parent, name)
		if err == nil || errors.Is(err, ErrNotFound) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			if errors.Is(err, unix.EBUSY) {
				return fmt.Errorf("cgroup: remove %s: it still has processes (kill the group first): %w", rel, err)
			}
			return fmt.Errorf("cgroup: remove %s: %w", rel, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("cgroup: remove %s: %w (last error: %w)", rel, ctx.Err(), err)
		case <-t.C:
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// removeOnce removes parent/name and its subtree, children first.
func (fs *FS) removeOnce(parent, name string) error {
	dir, err := fs.openDir(parent)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	return rmTreeAt(dir, name)
}

func rmTreeAt(dirfd int, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	fd, err := retryEINTR(func() (int, error) {
		return unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return os.NewSyscallError("openat", err)
	}
	names, err := childrenAt(fd)
	if err == nil {
		for _, n := range names {
			if err = rmTreeAt(fd, n); err != nil && !errors.Is(err, ErrNotFound) {
				break
			}
			err = nil
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	_, err = retryEINTR(func() (int, error) { return 0, unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR) })
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return os.NewSyscallError("rmdir", err)
	}
	return nil
}

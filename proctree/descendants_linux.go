package proctree

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// Descendants returns the pids of every descendant of pid (children,
// grandchildren, ...), breadth first, each once, pid itself excluded.
//
// It reads /proc/<pid>/task/*/children, the kernel's list of the children
// of each thread. The result is a snapshot of a moving tree: processes that
// exit or are reaped during the walk are skipped (that is normal, not an
// error), a process forked after its parent was read is missed, and a
// process reparented during the walk may be missed. Callers that must catch
// everything (such as [KillDescendants]) walk again until a walk is empty.
// The pids are those of the pid namespace /proc was mounted for. It fails
// with an error wrapping [os.ErrProcessDone] only when pid itself is gone.
func Descendants(pid int) ([]int, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("proctree: descendants of pid %d: %w", pid, syscall.EINVAL)
	}
	seen := map[int]bool{pid: true}
	var out []int
	add := func(c int) {
		if !seen[c] { // a pid reused during the walk could otherwise loop
			seen[c] = true
			out = append(out, c)
		}
	}
	if err := readChildren(pid, add); err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return nil, fmt.Errorf("proctree: descendants of pid %d: %w", pid, os.ErrProcessDone)
		}
		return nil, fmt.Errorf("proctree: descendants of pid %d: %w", pid, err)
	}
	for i := 0; i < len(out); i++ {
		if err := readChildren(out[i], add); err != nil && !vanished(err) {
			return out, fmt.Errorf("proctree: descendants of pid %d: %w", pid, err)
		}
	}
	return out, nil
}

// Children returns the pids of pid's direct children (those of all its
// threads), read like [Descendants] and, like it, a snapshot: a child that
// exits meanwhile may be listed or not. It fails with an error wrapping
// [os.ErrProcessDone] when pid itself is gone; with another error it also
// returns the children read before it.
func Children(pid int) ([]int, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("proctree: children of pid %d: %w", pid, syscall.EINVAL)
	}
	var out []int
	if err := readChildren(pid, func(c int) { out = append(out, c) }); err != nil {
		if vanished(err) {
			return nil, fmt.Errorf("proctree: children of pid %d: %w", pid, os.ErrProcessDone)
		}
		return out, fmt.Errorf("proctree: children of pid %d: %w", pid, err)
	}
	return out, nil
}

// vanished reports whether err means the process or thread went away.
func vanished(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// readChildren calls add for each child of each thread of pid.
func readChildren(pid int, add func(int)) error {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	tids, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, tid := range tids {
		buf, err := readWhole(dir + "/" + tid + "/children")
		if err != nil {
			if vanished(err) {
				continue // the thread exited
			}
			return err
		}
		err = parseChildren(bytes.NewReader(buf), add)
		putBuf(buf)
		if err != nil {
			return err
		}
	}
	return nil
}

// The kernel generates a children file entry by entry, finding each from
// the previous one, or by its position when the previous one has left the
// list meanwhile (reaped, reparented): then an entry can be skipped. Reading
// the file in one read(2), rather than in small chunks, keeps that window
// to the microseconds of one system call.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// readWhole reads a /proc file with as few read(2) calls as possible into
// a pooled buffer; putBuf returns it.
func readWhole(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bp := bufPool.Get().(*[]byte)
	buf := (*bp)[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return buf, nil
		}
		if err != nil {
			putBuf(buf)
			return nil, err
		}
	}
}

func putBuf(b []byte) {
	if cap(b) <= 1<<20 { // do not keep a huge one around
		b = b[:0]
		bufPool.Put(&b)
	}
}

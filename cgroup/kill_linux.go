package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/proctree"
)

// Kill methods reported in KillResult.Method.
const (
	MethodSignal        = "signal"
	MethodCgroupKill    = "cgroup.kill"
	MethodFreezeSIGKILL = "freeze+sigkill"
	MethodSIGKILL       = "sigkill"
)

// Kill empties the cgroup rel and every cgroup below it, and returns only
// when they are empty (or ctx ends). It is the kill pipeline both cgroup
// backends share:
//
//  1. an inotify watch on rel's cgroup.events is armed before anything is
//     done, so no change goes unseen (the file is re-read after every
//     wake-up: notifications are rate-limited hints);
//  2. if opts.Grace > 0, opts.Signal (default SIGTERM) and then SIGCONT go
//     to every member through a pidfd, and Kill waits up to Grace for
//     "populated 0";
//  3. SIGKILL through cgroup.kill, which also catches processes forked
//     meanwhile;
//  4. where cgroup.kill is missing (kernel < 5.14), refused (threaded
//     cgroups) or disabled ([Options].NoKill): freeze the subtree, wait for
//     "frozen 1", SIGKILL each member by pidfd, thaw, and repeat until empty;
//  5. wait for "populated 0".
//
// Members are signalled by pidfd only after the pidfd's process is checked
// to be inside the subtree (its cgroup id from PIDFD_GET_INFO, or
// /proc/<pid>/cgroup on kernels before 6.13), so a pid reused meanwhile by
// a process elsewhere is never hit. Kill never waits for (reaps) anything:
// "populated 0" arrives while the killed processes may still be zombies,
// which are their parents' to reap.
func (fs *FS) Kill(ctx context.Context, rel string, opts KillOptions) (KillResult, error) {
	start := time.Now()
	res, err := fs.kill(ctx, rel, opts)
	res.Duration = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("cgroup: kill %s: %w", rel, err)
	}
	return res, nil
}

func (fs *FS) kill(ctx context.Context, rel string, opts KillOptions) (KillResult, error) {
	dir, err := fs.openDir(rel)
	if err != nil {
		return KillResult{}, err
	}
	defer unix.Close(dir)
	return fs.killDir(ctx, dir, rel, opts)
}

// killDir is kill on the cgroup directory dir has open.
func (fs *FS) killDir(ctx context.Context, dir int, rel string, opts KillOptions) (KillResult, error) {
	var res KillResult
	w, err := fs.watchEvents(dir)
	if err != nil {
		if gone(err) {
			// Removed since openDir (systemd stopping a scope, say): a
			// cgroup can only be removed once it is empty.
			return res, nil
		}
		return res, err
	}
	defer w.Close()

	var t tree
	if err := t.walk(dir, true); err != nil {
		if gone(err) {
			return res, nil
		}
		return res, err
	}
	res.Killed = len(t.pids)
	if ev, err := w.read(); err != nil || !ev.Populated {
		return res, err
	}

	if opts.Grace > 0 {
		sig := opts.Signal
		if sig == 0 {
			sig = syscall.SIGTERM
		}
		if _, err := fs.signalMembers(&t, sig, nil); err != nil {
			return res, err
		}
		if sig != syscall.SIGKILL && sig != syscall.SIGCONT {
			// A stopped process cannot act on the polite signal until it runs.
			if _, err := fs.signalMembers(&t, syscall.SIGCONT, nil); err != nil {
				return res, err
			}
		}
		gctx, cancel := context.WithTimeout(ctx, opts.Grace)
		ev, err := w.wait(gctx, empty)
		cancel()
		if err == nil && !ev.Populated {
			res.Method = MethodSignal
			return res, nil
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return res, err
		}
	}

	if !fs.noKill && !fs.killMissing.Load() {
		err := writeAt(dir, "cgroup.kill", []byte("1"))
		if err == nil {
			res.Method = MethodCgroupKill
			_, err = w.wait(ctx, empty)
			return res, err
		}
		if ev, rerr := w.read(); rerr == nil && !ev.Populated {
			return res, nil // emptied (or removed) meanwhile
		}
		fs.noteKillFailed(rel, err)
	}
	return fs.fallbackKill(ctx, dir, w, &t, res)
}

// gone reports whether err says the cgroup was removed under us (ENODEV
// from a file of a removed cgroup, ENOENT from a lookup in it).
func gone(err error) bool {
	return errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}

// noteKillFailed logs a failed cgroup.kill write (once per FS at warning
// level) and remembers a missing file so the next kill skips it.
func (fs *FS) noteKillFailed(rel string, err error) {
	if errors.Is(err, unix.ENOENT) {
		fs.killMissing.Store(true)
	}
	if fs.warnedKill.CompareAndSwap(false, true) {
		fs.log.Warn("cgroup.kill failed; using the freeze + SIGKILL fallback", "cgroup", rel, "err", err)
		return
	}
	fs.log.Debug("cgroup.kill failed; using the freeze + SIGKILL fallback", "cgroup", rel, "err", err)
}

// fallbackKill freezes the subtree so nothing can fork, SIGKILLs every
// member by pidfd, thaws, and repeats until the subtree is empty. A fatal
// signal ends a frozen process (cgroup v2), so the thaw is for survivors
// only. Without a freezer (kernel < 5.2) it loops signal-all until empty.
func (fs *FS) fallbackKill(ctx context.Context, dir int, w *eventsWatch, first *tree, res KillResult) (KillResult, error) {
	seen := map[proctree.Identity]bool{}
	initial := make(map[int]bool, len(first.pids))
	for _, pid := range first.pids {
		initial[pid] = true
	}
	res.Method = MethodSIGKILL
	for round := 0; ; round++ {
		froze := fs.freeze(ctx, dir, w)
		if froze {
			res.Method = MethodFreezeSIGKILL
		}
		var t tree
		err := t.walk(dir, true)
		if gone(err) {
			return res, nil // removed meanwhile: nothing left in it
		}
		if err == nil {
			var found []proctree.Identity
			found, err = fs.signalMembers(&t, syscall.SIGKILL, seen)
			for _, id := range found {
				if !initial[id.Pid] {
					res.Killed++
				}
			}
		}
		if froze {
			if terr := writeAt(dir, "cgroup.freeze", []byte("0")); terr != nil && err == nil {
				err = fmt.Errorf("thaw: %w", terr)
			}
		}
		if err != nil {
			return res, err
		}
		// Give the kills time to land; come back sooner on early rounds.
		rctx, cancel := context.WithTimeout(ctx, min(time.Duration(round+1)*20*time.Millisecond, 500*time.Millisecond))
		ev, err := w.wait(rctx, empty)
		cancel()
		if err == nil && !ev.Populated {
			return res, nil
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return res, err
		}
	}
}

// freeze freezes the subtree and waits (up to a second: a task in
// uninterruptible sleep can hold it up) for "frozen 1". It reports whether
// the freezer is in effect; without one the caller signals unfrozen.
func (fs *FS) freeze(ctx context.Context, dir int, w *eventsWatch) bool {
	if fs.freezeMissing.Load() {
		return false
	}
	if err := writeAt(dir, "cgroup.freeze", []byte("1")); err != nil {
		if errors.Is(err, unix.ENOENT) {
			fs.freezeMissing.Store(true)
		}
		fs.log.Debug("cgroup.freeze failed; signalling without freezing", "err", err)
		return false
	}
	fctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, _ = w.wait(fctx, frozenOrEmpty) // a timeout still leaves the freeze requested
	return true
}

// signalMembers sends sig to every process of t through a pidfd, after
// checking that the pidfd's process is inside the subtree. Processes gone
// meanwhile are skipped. If seen is not nil, it returns the identities
// signalled that were not in seen and adds them.
func (fs *FS) signalMembers(t *tree, sig syscall.Signal, seen map[proctree.Identity]bool) ([]proctree.Identity, error) {
	var found []proctree.Identity
	for _, pid := range t.pids {
		p, err := proctree.Open(pid)
		if errors.Is(err, os.ErrProcessDone) {
			continue
		}
		if err != nil {
			return found, err
		}
		in, err := fs.inside(p, t)
		if err == nil && in {
			err = p.Signal(sig)
			if err == nil && seen != nil && !seen[p.Identity()] {
				seen[p.Identity()] = true
				found = append(found, p.Identity())
			}
		}
		p.Close()
		if err != nil && !errors.Is(err, os.ErrProcessDone) {
			return found, err
		}
	}
	return found, nil
}

// inside reports whether p is in one of t's cgroups. The pidfd pins the
// process, so the answer is about p even if its pid is reused later.
func (fs *FS) inside(p *proctree.Process, t *tree) (bool, error) {
	if !fs.noPidfdInfo {
		info := unix.PidfdInfo{Mask: unix.PIDFD_INFO_CGROUPID}
		err := p.WithPidfd(func(fd int) error { return unix.IoctlPidfdInfo(fd, &info) })
		switch {
		case err == nil && info.Mask&unix.PIDFD_INFO_CGROUPID != 0:
			// The cgroup id is the kernfs node id, which is the inode number
			// of the cgroup's directory on 64-bit systems.
			return t.ids[info.Cgroupid], nil
		case errors.Is(err, unix.ESRCH):
			return false, os.ErrProcessDone
		}
	}
	// Kernels before 6.13: read /proc/<pid>/cgroup, then check the pidfd's
	// process still exists, so the file was that process's.
	rel, err := fs.CgroupOf(p.Pid())
	if err != nil {
		return false, err
	}
	if err := p.Signal(0); err != nil {
		return false, err
	}
	return fs.underAny(rel, t), nil
}

// underAny reports whether the cgroup rel is one of t's (by inode).
func (fs *FS) underAny(rel string, t *tree) bool {
	if strings.HasSuffix(rel, " (deleted)") {
		return false
	}
	dir, err := fs.openDir(rel)
	if err != nil {
		return false
	}
	defer unix.Close(dir)
	var st unix.Stat_t
	if err := unix.Fstat(dir, &st); err != nil {
		return false
	}
	return t.ids[st.Ino]
}

package cgroup

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Options tune how an [FS] reaches the kernel. The zero value is right for
// production: the switches exist to force fallbacks in tests and on
// kernels where a feature misbehaves.
type Options struct {
	// NoOpenat2 resolves paths one component at a time with openat(2),
	// O_NOFOLLOW and a device check at each step, as on kernels before 5.6
	// that have no openat2(2).
	NoOpenat2 bool
	// NoKill never writes cgroup.kill: every kill takes the freeze +
	// SIGKILL-by-pidfd fallback that kernels before 5.14 need.
	NoKill bool
	// Logger receives the fallbacks taken; nil discards.
	Logger *slog.Logger
}

// FS is an opened cgroup2 hierarchy. Every file is opened relative to a
// descriptor of the mount point and beneath it: with openat2(2) and
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV|RESOLVE_NO_MAGICLINKS
// where the kernel has it, else one component at a time with O_NOFOLLOW and
// a check that each directory is on the mount's device. Paths are also
// refused up front when they are not clean (see [SplitPath]), so a hostile
// group name can neither walk out of the hierarchy nor into another file
// system mounted inside it.
//
// Paths ("rel") are relative to the mount and "/"-rooted, as in [Ref].
// An FS is safe for concurrent use.
type FS struct {
	mount   Mount
	rootFD  int
	rootDev uint64
	openat2 bool
	noKill  bool
	log     *slog.Logger

	// noPidfdInfo makes membership checks read /proc/<pid>/cgroup as on
	// kernels before 6.13 (set by tests).
	noPidfdInfo bool
	// noInotify makes waits poll cgroup.events, as when the inotify limits
	// are exhausted (set by tests).
	noInotify bool

	// Probed features; until Probe runs they read as present and the kill
	// pipeline falls back when a write fails.
	killMissing   atomic.Bool
	freezeMissing atomic.Bool
	warnedKill    atomic.Bool
	warnedPoll    atomic.Bool

	notifyMu sync.Mutex // guards notify and closed
	notify   *notifier  // shared inotify for kills; started on first use
	closed   bool

	closeOnce sync.Once
	closeErr  error
}

// OpenFS opens the hierarchy at m.Path, checks that it is a cgroup2 file
// system, and finds out whether openat2(2) works.
func OpenFS(m Mount, opts Options) (*FS, error) {
	if m.Path == "" {
		return nil, fmt.Errorf("%w: no cgroup2 mount (layout %q)", ErrUnavailable, m.Layout)
	}
	fd, err := retryEINTR(func() (int, error) {
		return unix.Open(m.Path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, fmt.Errorf("cgroup: open mount %s: %w", m.Path, os.NewSyscallError("open", err))
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cgroup: statfs %s: %w", m.Path, os.NewSyscallError("fstatfs", err))
	}
	if sfs.Type != unix.CGROUP2_SUPER_MAGIC {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: %s is not a cgroup2 file system (magic %#x)", ErrUnavailable, m.Path, sfs.Type)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cgroup: stat %s: %w", m.Path, os.NewSyscallError("fstat", err))
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fs := &FS{mount: m, rootFD: fd, rootDev: st.Dev, noKill: opts.NoKill, log: log}
	if !opts.NoOpenat2 {
		fs.openat2 = probeOpenat2(fd)
	}
	return fs, nil
}

// probeOpenat2 reports whether openat2(2) with the resolve flags we use
// works here (ENOSYS before 5.6; seccomp filters may also refuse it).
func probeOpenat2(rootFD int) bool {
	fd, err := openBeneath(rootFD, ".")
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// Mount returns the mount the FS was opened on.
func (fs *FS) Mount() Mount { return fs.mount }

// Openat2 reports whether paths are resolved with openat2(2).
func (fs *FS) Openat2() bool { return fs.openat2 }

// Close stops the goroutine that reads inotify events (started by the
// first Kill) and releases the mount descriptor. Kills still running end
// with their wake-ups degraded to polling; do not use the FS afterwards.
func (fs *FS) Close() error {
	fs.closeOnce.Do(func() {
		fs.closeNotifier()
		fs.closeErr = unix.Close(fs.rootFD)
	})
	return fs.closeErr
}

// Path returns the absolute file system path of rel, for messages and for
// tools that need a path (the descriptor-based methods are safer).
func (fs *FS) Path(rel string) string {
	if rel == "/" {
		return fs.mount.Path
	}
	return strings.TrimSuffix(fs.mount.Path, "/") + rel
}

const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_MAGICLINKS

func openBeneath(dirfd int, path string) (int, error) {
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolveFlags}
	for {
		fd, err := unix.Openat2(dirfd, path, &how)
		// EAGAIN: a concurrent rename somewhere in the hierarchy; retry.
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		return fd, err
	}
}

// openDir opens the directory of rel for reading, beneath the mount. The
// caller closes the descriptor.
func (fs *FS) openDir(rel string) (int, error) {
	parts, err := SplitPath(rel)
	if err != nil {
		return -1, err
	}
	var fd int
	if fs.openat2 {
		p := "."
		if len(parts) > 0 {
			p = strings.Join(parts, "/")
		}
		fd, err = openBeneath(fs.rootFD, p)
		if err != nil {
			err = os.NewSyscallError("openat2", err)
		}
	} else {
		fd, err = fs.walkDir(parts)
	}
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return -1, fmt.Errorf("cgroup: open %s: %w (%w)", rel, ErrNotFound, err)
		}
		return -1, fmt.Errorf("cgroup: open %s: %w", rel, err)
	}
	return fd, nil
}

// walkDir is the fallback for kernels without openat2: one component at a
// time, never following a symlink (O_NOFOLLOW on each step), and refusing
// a directory on another device (what RESOLVE_NO_XDEV would do). ".." and
// "/" cannot appear: SplitPath refused them.
func (fs *FS) walkDir(parts []string) (int, error) {
	fd, err := retryEINTR(func() (int, error) {
		return unix.Openat(fs.rootFD, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return -1, os.NewSyscallError("openat", err)
	}
	for _, p := range parts {
		next, err := retryEINTR(func() (int, error) {
			return unix.Openat(fd, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		})
		unix.Close(fd)
		if err != nil {
			return -1, os.NewSyscallError("openat", err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(next, &st); err != nil {
			unix.Close(next)
			return -1, os.NewSyscallError("fstat", err)
		}
		if st.Dev != fs.rootDev {
			unix.Close(next)
			return -1, os.NewSyscallError("openat", unix.EXDEV)
		}
		fd = next
	}
	return fd, nil
}

// checkName refuses file names that are not a single plain component.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("cgroup: invalid file name %q", truncate(name))
	}
	return nil
}

// openAt opens the file name inside the directory dirfd, never following a
// symlink.
func openAt(dirfd int, name string, flags int) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	fd, err := retryEINTR(func() (int, error) {
		return unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, os.NewSyscallError("openat", err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// OpenDir opens the directory of rel (O_RDONLY|O_DIRECTORY), for example
// to spawn a process straight into the group with
// syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}.
func (fs *FS) OpenDir(rel string) (*os.File, error) {
	fd, err := fs.openDir(rel)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), fs.Path(rel)), nil
}

// ReadFile reads the file name of the cgroup rel.
func (fs *FS) ReadFile(rel, name string) ([]byte, error) {
	dir, err := fs.openDir(rel)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dir)
	b, err := readAt(dir, name)
	if err != nil {
		return nil, fmt.Errorf("cgroup: read %s/%s: %w", rel, name, err)
	}
	return b, nil
}

func readAt(dirfd int, name string) ([]byte, error) {
	f, err := openAt(dirfd, name, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// WriteFile writes data to the file name of the cgroup rel in one write(2),
// as cgroup interface files require.
func (fs *FS) WriteFile(rel, name string, data []byte) error {
	dir, err := fs.openDir(rel)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	if err := writeAt(dir, name, data); err != nil {
		return fmt.Errorf("cgroup: write %s/%s: %w", rel, name, err)
	}
	return nil
}

func writeAt(dirfd int, name string, data []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	fd, err := retryEINTR(func() (int, error) {
		return unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return os.NewSyscallError("openat", err)
	}
	defer unix.Close(fd)
	_, err = retryEINTR(func() (int, error) { return unix.Write(fd, data) })
	if err != nil {
		return os.NewSyscallError("write", err)
	}
	return nil
}

// Attach moves the process pid (all its threads) into the cgroup rel. A
// process that no longer exists gives an error wrapping os.ErrProcessDone.
func (fs *FS) Attach(rel string, pid int) error {
	if pid <= 0 {
		return fmt.Errorf("cgroup: attach pid %d: %w", pid, syscall.EINVAL)
	}
	err := fs.WriteFile(rel, "cgroup.procs", []byte(strconv.Itoa(pid)))
	if errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("cgroup: attach pid %d to %s: %w", pid, rel, os.ErrProcessDone)
	}
	return err
}

// Events reads the cgroup.events file of rel.
func (fs *FS) Events(rel string) (Events, error) {
	b, err := fs.ReadFile(rel, "cgroup.events")
	if err != nil {
		return Events{}, err
	}
	return ParseEvents(strings.NewReader(string(b)))
}

func retryEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if !errors.Is(err, unix.EINTR) {
			return n, err
		}
	}
}

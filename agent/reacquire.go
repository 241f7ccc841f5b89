package agent

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/proctree"
)

// handedFDs are the pidfds systemd's fd store passed back at start, by the
// name they were stored under, until restore claims them.
type handedFDs struct {
	procs map[string][]*proctree.Process // live (or zombie) processes, unclaimed
	gone  map[string]int                 // pidfds whose process was already reaped
	names map[string]bool                // every name passed back
}

// openHanded wraps the passed-back files as processes. The files are
// consumed (closed); a pidfd that no longer names a process is counted.
func (a *Agent) openHanded(files []*os.File) *handedFDs {
	h := &handedFDs{procs: map[string][]*proctree.Process{}, gone: map[string]int{}, names: map[string]bool{}}
	for _, f := range files {
		name := f.Name()
		h.names[name] = true
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		f.Close()
		if err != nil {
			a.log.Warn("cannot use a pidfd passed back by the fd store", "name", name, "err", err)
			h.gone[name]++
			continue
		}
		p, err := proctree.FromPidfd(fd) // takes fd, even on error
		if err != nil {
			if !errors.Is(err, os.ErrProcessDone) {
				a.log.Warn("a descriptor passed back by the fd store is not a usable pidfd", "name", name, "err", err)
			}
			h.gone[name]++
			continue
		}
		h.procs[name] = append(h.procs[name], p)
	}
	return h
}

// claim removes and returns the passed-back process stored under name that
// is the process id names, if there is one.
func (h *handedFDs) claim(name string, id proctree.Identity) *proctree.Process {
	ps := h.procs[name]
	for i, p := range ps {
		if p.Identity().Same(id) {
			h.procs[name] = append(ps[:i:i], ps[i+1:]...)
			return p
		}
	}
	return nil
}

// closeUnclaimed closes what restore did not claim.
func (h *handedFDs) closeUnclaimed() {
	for _, ps := range h.procs {
		for _, p := range ps {
			p.Close()
		}
	}
	h.procs = nil
}

// clean reports whether every pidfd passed back under name was claimed.
func (h *handedFDs) clean(name string) bool {
	return h.names[name] && h.gone[name] == 0 && len(h.procs[name]) == 0
}

// How a recorded process was found again.
const (
	foundFDStore  = "fdstore"  // a pidfd passed back by systemd: certain
	foundIdentity = "identity" // pid, start time and pidfs inode matched
	foundExited   = "exited"   // it exited (seen through its pidfd, or its pid is free)
	foundReused   = "reused"   // its pid now names another process, never touched
)

// reacquire finds the process id names again: through a pidfd the fd store
// passed back under name when one is that process, else by pid and start
// time (and pidfs inode). It returns nil, with why, when the process has
// exited — a zombie counts — or its pid now names another process.
func (a *Agent) reacquire(h *handedFDs, name string, id proctree.Identity) (*proctree.Process, string) {
	if p := h.claim(name, id); p != nil {
		if p.Exited() {
			p.Close()
			return nil, foundExited
		}
		return p, foundFDStore
	}
	p, err := proctree.OpenIdentity(id)
	switch {
	case errors.Is(err, proctree.ErrIdentityMismatch):
		return nil, foundReused
	case err != nil:
		if !errors.Is(err, os.ErrProcessDone) {
			a.log.Warn("cannot open a recorded process; taking it as exited", "process", id.String(), "err", err)
		}
		return nil, foundExited
	case p.Exited():
		p.Close()
		return nil, foundExited
	}
	return p, foundIdentity
}

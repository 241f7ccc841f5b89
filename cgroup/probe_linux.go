package cgroup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Probe is what [FS.Probe] found.
type Probe struct {
	Kill     bool // writing cgroup.kill works
	Freeze   bool // writing cgroup.freeze works and "frozen 1" follows
	Writable bool // cgroups can be created under the probed parent
}

// Probe finds out once what the kernel offers under the cgroup parent. It
// creates a scratch cgroup there, named ".probe-<random>" (no group id can
// take a name that starts with a dot), writes cgroup.kill and cgroup.freeze
// on it while it is empty, and removes it. When parent is not writable it
// only looks for the files in parent. The kill pipeline then skips what is
// missing instead of failing over on every kill.
func (fs *FS) Probe(ctx context.Context, parent string) (Probe, error) {
	var p Probe
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	scratch := JoinPath(parent, ".probe-"+hex.EncodeToString(rnd[:]))
	if err := fs.Mkdir(scratch); err != nil {
		if !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EROFS) {
			return p, fmt.Errorf("cgroup: probe: %w", err)
		}
		p.Kill = fs.HasFile(parent, "cgroup.kill")
		p.Freeze = fs.HasFile(parent, "cgroup.freeze")
	} else {
		p.Writable = true
		p.Kill = fs.WriteFile(scratch, "cgroup.kill", []byte("1")) == nil
		p.Freeze = fs.probeFreeze(scratch)
		if err := fs.Remove(ctx, scratch); err != nil {
			return p, fmt.Errorf("cgroup: probe: %w", err)
		}
	}
	fs.SetFeatures(p.Kill, p.Freeze)
	return p, nil
}

// probeFreeze freezes and thaws an empty cgroup, checking that the kernel
// reports "frozen 1" in between (an empty cgroup freezes at once).
func (fs *FS) probeFreeze(rel string) bool {
	if fs.WriteFile(rel, "cgroup.freeze", []byte("1")) != nil {
		return false
	}
	ev, err := fs.Events(rel)
	ok := err == nil && ev.Frozen
	return fs.WriteFile(rel, "cgroup.freeze", []byte("0")) == nil && ok
}

// SetFeatures tells the kill pipeline which of cgroup.kill and
// cgroup.freeze to use (a backend that probed elsewhere calls it).
func (fs *FS) SetFeatures(kill, freeze bool) {
	fs.killMissing.Store(!kill)
	fs.freezeMissing.Store(!freeze)
}

// HasFile reports whether the cgroup rel has the interface file name.
func (fs *FS) HasFile(rel, name string) bool {
	dir, err := fs.openDir(rel)
	if err != nil {
		return false
	}
	defer unix.Close(dir)
	if checkName(name) != nil {
		return false
	}
	return unix.Faccessat(dir, name, unix.F_OK, unix.AT_SYMLINK_NOFOLLOW) == nil
}

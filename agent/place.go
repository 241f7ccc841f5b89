package agent

import (
	"context"

	"github.com/orphand/orphand/cgroup"
	"github.com/orphand/orphand/proctree"
)

// Where a process is. With a cgroup backend it is the process's cgroup
// path; a group's cgroup holds it, and nested groups are subdirectories.
// The proc backend has no cgroups: it says instead which of its groups
// holds the process, as the path of their ids ("/outer/inner", "" when
// none), and the registry keys its groups by that place. Everything that
// nests a registration, or tells a member of another group from a
// process to take, works on places.

// placer is implemented by backends whose groups are not cgroups.
type placer interface {
	// PlaceOf returns pid's place as the backend knows it now.
	PlaceOf(pid int) string
	// Follow catches up with forks not followed yet that may have made
	// pid a member (queued events; a walk from a tracked ancestor).
	Follow(ctx context.Context, pid int)
}

// placed is implemented by such a backend's groups.
type placed interface{ Place() string }

// placeOf returns where pid is now: its cgroup path, or its place.
func (a *Agent) placeOf(pid int) (string, error) {
	p, ok := a.backend.(placer)
	if !ok {
		return cgroup.ProcessCgroup(pid)
	}
	if _, err := proctree.ReadStat(pid); err != nil {
		return "", err
	}
	return p.PlaceOf(pid), nil
}

// originOf is placeOf for the process a request names (a spawner, an
// attach target): a process forked inside a proc group moments ago is
// seen there, not as a stranger.
func (a *Agent) originOf(ctx context.Context, pid int) (string, error) {
	if p, ok := a.backend.(placer); ok {
		p.Follow(ctx, pid)
	}
	return a.placeOf(pid)
}

// placeKey is g's key in byPath: its cgroup path, or its place.
func placeKey(g *group) string {
	if p, ok := g.cg.(placed); ok {
		return p.Place()
	}
	return g.Ref.Path
}

// tracker is implemented by a backend that follows forks itself (the proc
// backend): hello and status show how, and status what it cannot promise.
type tracker interface {
	Tracking() string
	Limitations() []string
}

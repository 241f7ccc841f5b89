package agent

import (
	"strings"

	"github.com/orphand/orphand/ipc"
	"github.com/orphand/orphand/proctree"
)

// FDStore is systemd's file descriptor store, as the agent uses it
// (internal/sdfdstore's Notifier implements it): Store hands systemd
// duplicates of fds to keep under name across a restart, Remove drops
// every fd kept under name.
type FDStore interface {
	Store(name string, fds ...int) error
	Remove(name string) error
}

// Stored pidfds are named after their group and role: a group's spawner
// (on=exit groups, while active) and its watch targets (watch groups; all
// under one name, told apart by their identity when they come back).
const fdNamePrefix = "pidfd."

func spawnerFDName(id string) string { return fdNamePrefix + id + ".spawner" }
func targetsFDName(id string) string { return fdNamePrefix + id + ".targets" }

// IsStoredFDName reports whether a descriptor name, as systemd passes it
// back in $LISTEN_FDNAMES, is one of the agent's stored pidfds (the rest,
// such as the socket unit's listener, are not the agent's to take).
func IsStoredFDName(name string) bool {
	_, _, ok := parseFDName(name)
	return ok
}

// parseFDName splits a stored pidfd's name into group id and role.
func parseFDName(name string) (id, role string, ok bool) {
	rest, ok := strings.CutPrefix(name, fdNamePrefix)
	if !ok {
		return "", "", false
	}
	id, role, ok = strings.Cut(rest, ".")
	if !ok || id == "" || (role != "spawner" && role != "targets") {
		return "", "", false
	}
	return id, role, true
}

// storeFDs hands the pidfds of ps to the fd store under name. Without an fd
// store it does nothing. Failures are logged: the records on disk are the
// truth, and a pidfd missing from the store only means the process is found
// again by pid and start time.
func (a *Agent) storeFDs(name string, ps ...*proctree.Process) {
	if a.durable == nil || a.durable.fds == nil {
		return
	}
	for _, p := range ps {
		if p == nil {
			continue
		}
		err := p.WithPidfd(func(fd int) error { return a.durable.fds.Store(name, fd) })
		if err != nil {
			a.fdStoreFailed("store", name, err)
			return
		}
	}
}

// unstoreFDs drops name from the fd store.
func (a *Agent) unstoreFDs(names ...string) {
	if a.durable == nil || a.durable.fds == nil {
		return
	}
	for _, name := range names {
		if err := a.durable.fds.Remove(name); err != nil {
			a.fdStoreFailed("remove", name, err)
		}
	}
}

// fdStoreFailed logs the first failure at warn level and the rest at debug
// level: a store that fails once (systemd busy, a full store) tends to fail
// for every group.
func (a *Agent) fdStoreFailed(what, name string, err error) {
	if a.durable.failures.Add(1) == 1 {
		a.log.Warn("the systemd fd store refused a pidfd; groups are still recorded on disk and found again by pid and start time after a restart",
			"op", what, "name", name, "err", err)
		return
	}
	a.log.Debug("fd store", "op", what, "name", name, "err", err)
}

// unstoreGroupFDs drops every pidfd of g from the fd store, once g has
// ended (or failed to register).
func (a *Agent) unstoreGroupFDs(g *group) {
	var names []string
	if g.On == ipc.OnExit {
		names = append(names, spawnerFDName(g.ID))
	}
	if g.Kind == ipc.KindWatch {
		names = append(names, targetsFDName(g.ID))
	}
	a.unstoreFDs(names...)
}

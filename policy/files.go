package policy

import (
	"cmp"
	"slices"
)

// Descriptors held per unit of each total: a group's spawner pidfd (the
// watcher's), a watch target's pidfd, a connection's socket and its peer's
// pidfd.
const (
	filesPerGroup  = 1
	filesPerTarget = 1
	filesPerConn   = 2
)

// FilesNeeded is how many file descriptors the totals let callers make the
// agent hold, and false when a total is unlimited (no bound exists).
func (l Limits) FilesNeeded() (int, bool) {
	if l.GroupsTotal <= 0 || l.TargetsTotal <= 0 || l.ConnsTotal <= 0 {
		return 0, false
	}
	return filesPerGroup*l.GroupsTotal + filesPerTarget*l.TargetsTotal + filesPerConn*l.ConnsTotal, true
}

// FitFiles lowers the totals so that what they let callers hold fits in
// budget descriptors, and reports whether it changed anything. Without it,
// callers could exhaust RLIMIT_NOFILE, and then nobody — root included —
// could connect or register: the totals are what keeps one user's load
// from becoming everyone's outage. The descriptors are shared out evenly
// between groups, targets and connections, except that a total needing
// less than its share keeps its value and leaves the rest to the others.
// Limits with an unlimited total are returned unchanged (the caller should
// warn).
func (l Limits) FitFiles(budget int) (Limits, bool) {
	need, ok := l.FilesNeeded()
	if !ok || need <= budget {
		return l, false
	}
	budget = max(budget, filesPerGroup+filesPerTarget+filesPerConn)
	kinds := []fileUse{{&l.GroupsTotal, filesPerGroup}, {&l.TargetsTotal, filesPerTarget}, {&l.ConnsTotal, filesPerConn}}
	slices.SortStableFunc(kinds, func(a, b fileUse) int { return cmp.Compare(*a.total*a.per, *b.total*b.per) })
	left := budget
	for i, k := range kinds {
		share := left / (len(kinds) - i)
		if *k.total*k.per > share {
			*k.total = max(share/k.per, 1)
		}
		left -= *k.total * k.per
	}
	if l.ConnsRootReserve >= l.ConnsTotal {
		l.ConnsRootReserve = l.ConnsTotal / 2
	}
	return l, true
}

// fileUse is a total and the descriptors each unit of it holds.
type fileUse struct {
	total *int
	per   int
}

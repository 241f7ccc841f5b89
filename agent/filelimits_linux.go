package agent

import (
	"log/slog"

	"golang.org/x/sys/unix"

	"github.com/orphand/orphand/policy"
)

// filesReserved are descriptors the agent needs beyond what callers make
// it hold: the listener, epoll, inotify, the cgroup root, D-Bus, state
// files, and a cgroup directory per kill running.
const filesReserved = 256

// fitFileLimits returns cfg's limits lowered, if need be, so that callers
// filling every total cannot exhaust RLIMIT_NOFILE (Go raises the soft
// limit to the hard one at start): at EMFILE nobody, root included, could
// connect or register any more. It logs what it changed, and warns when an
// unlimited total leaves the descriptors unbounded.
func fitFileLimits(cfg Config, log *slog.Logger) policy.Limits {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return cfg.Limits
	}
	budget := int(min(rl.Cur, 1<<30)) - filesReserved - cfg.ParallelKills
	return fitFiles(cfg.Limits, budget, int(min(rl.Cur, 1<<30)), log)
}

func fitFiles(l policy.Limits, budget, nofile int, log *slog.Logger) policy.Limits {
	need, bounded := l.FilesNeeded()
	if !bounded {
		log.Warn("a total limit is unlimited (0): callers can make the agent hold file descriptors without bound, and at the descriptor limit nobody could connect; set groups_total, targets_total and connections_total",
			"nofile", nofile)
		return l
	}
	fitted, changed := l.FitFiles(budget)
	if changed {
		log.Warn("the configured totals need more file descriptors than the limit allows; lowering them to fit (raise LimitNOFILE= to keep them)",
			"nofile", nofile, "needed", need+nofile-budget,
			"groups_total", fitted.GroupsTotal, "targets_total", fitted.TargetsTotal,
			"connections_total", fitted.ConnsTotal, "connections_root_reserve", fitted.ConnsRootReserve)
	}
	return fitted
}

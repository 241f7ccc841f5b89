// Package proctree holds processes by pidfd and controls the process tree
// beneath the calling process.
//
// It provides:
//
//   - [Process]: a process held through a pidfd (pidfd_open(2)), with the
//     identity (pid + start time from /proc/<pid>/stat) verified at open
//     time. Signals go through the pidfd (pidfd_send_signal(2)), so a
//     *Process never signals a newcomer that reused its pid. [Process.Wait]
//     waits for exit by pidfd readiness on Go's netpoller: no polling, and no
//     OS thread per waiter.
//   - [Descendants]: a walk of /proc/<pid>/task/*/children that tolerates
//     processes vanishing mid-walk.
//   - [ParseStat]: a /proc/<pid>/stat parser that copes with any comm.
//
// Linux only; on other systems the functions return [ErrUnsupported].
package proctree

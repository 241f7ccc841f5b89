// Package policy decides who may ask the orphand agent for what.
//
// It holds decisions only: the agent gathers the facts (the caller's
// credentials from SO_PEERCRED / SO_PEERPIDFD, a target's uids from
// /proc/<pid>/status read through a verified pidfd, the agent's own
// ancestry) and asks this package. Keeping it free of I/O makes every rule
// a table test.
//
// The rules:
//
//   - The agent never does what the caller could not do itself. A caller may
//     register, watch, attach or kill a process only if it could send that
//     process a signal with kill(2): it is root (uid 0), or its uid equals
//     the target's real or saved set-user-ID (the kernel's rule for
//     unprivileged senders; the agent uses the caller's effective uid as
//     reported by SO_PEERCRED, so it is never more permissive than kill(2)).
//     Capabilities such as CAP_KILL held by a non-root caller are not
//     honoured: the check errs on the side of refusing.
//   - Some processes are never acted on, whoever asks: PID 1, the agent
//     itself, the agent's ancestors, and kernel threads.
//   - A caller sees and controls only the groups it owns; root sees and
//     controls all.
//   - A per-user agent (one run by a user for that user's processes)
//     serves its user only: any other caller, root included, is refused
//     when it connects ([MayConnect]).
//   - Quotas per uid (groups, connections, watch targets) and totals bound
//     what one user can make the agent hold. Root is exempt from the per-uid
//     quotas but not from the totals, except that the last few connections
//     of the total are kept for root: however many users flood the agent,
//     an admin can still connect to see and kill. The totals must fit in
//     the agent's file descriptor limit ([Limits.FitFiles]), or filling
//     them would lock everyone out.
//
// A refusal is a [*Denied] (the agent answers permission_denied with its
// message) and an exceeded quota a [*LimitError] (limit_exceeded).
package policy

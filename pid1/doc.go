// Package pid1 is orphand's container init: the logic of `orphand init`
// ([Run]) and a one-call helper for Go programs that are PID 1 themselves
// ([Start]).
//
// # Run: an init for one command
//
// [Run] starts CMD and supervises it the way tini, dumb-init and catatonit
// do, plus what their users keep asking for: nothing CMD started outlives
// it.
//
//   - Orphans land on init: as PID 1 of a pid namespace they always do;
//     anywhere else Run makes the process a child subreaper
//     (PR_SET_CHILD_SUBREAPER). When that is refused, Config.Subreaper makes
//     it an error, and otherwise Run warns and goes on (as tini does).
//   - Reaping is event-driven, with no timer: every exit drains all waiting
//     zombies with wait4(-1, WNOHANG), as tini does. While CMD runs, one
//     goroutine locked to its thread sleeps in waitid(2) and reaps when it
//     wakes (SIGCHLD's disposition is SIG_DFL meanwhile, so no signal is
//     sent); afterwards Run reaps on SIGCHLD. CMD's own status comes out of
//     the same loop, so Run is the only owner of wait(2) in the process and
//     never needs to tell CMD from an orphan by handle.
//   - CMD runs in a process group of its own (Config.Setsid: a session of its
//     own). Every catchable signal init receives is forwarded to CMD (or its
//     process group with Config.SignalGroup), after Config.Rewrite, except
//     the ones listed at [Forwarded]. A second SIGINT (as forwarded, after
//     the rewrite) within the grace period after a SIGINT or SIGTERM
//     escalates: CMD and every descendant get SIGKILL at once
//     (Config.NoEscalate turns this off).
//   - What init inherited is passed on as far as the Go runtime lets a
//     program see it: signals ignored when init started (nohup's SIGHUP, a
//     background job's SIGINT, SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU) stay
//     ignored in CMD, and so does the blocked mask, but for the signals the
//     runtime unblocks on every thread. CMD starts in Config.Dir (init's
//     directory by default); init then moves to /.
//   - When CMD has exited: Config.KillSignal (SIGTERM) to every remaining
//     descendant, up to Config.Grace (2 s) for them to exit, SIGKILL for
//     what is left, and reaping until no child remains; only then does Run
//     return CMD's exit code (128+N for death by signal N). The descendants
//     are found with proctree.KillDescendants (procctl's PROC_REAP_KILL
//     loop), which sees everything as long as init is PID 1 or a subreaper.
//     When it is neither (Config.Cgroup: or always), CMD runs in a cgroup v2
//     of its own below init's, spawned straight into it (clone3 with
//     CLONE_INTO_CGROUP) and emptied with cgroup.kill, which also catches
//     processes that left the process tree; a cgroup left by an init that was
//     SIGKILLed is removed by the next one. Config.NoKillRemaining skips all
//     this (tini's behaviour).
//   - Only fds 0-2 reach CMD, plus the sockets of socket activation
//     (LISTEN_FDS) when LISTEN_PID names init; Config.KeepFDs passes
//     every inherited descriptor. LISTEN_PID is rewritten to CMD's pid (see
//     [ExecWithListenPID]).
//
// The command line of `orphand init` and orphand-init, with tini's and
// dumb-init's flags and environment variables, is package pid1/cli.
//
// # Start: a Go program as PID 1
//
// A Go program that is the init of its container itself needs a reaper
// that does not take exit statuses from os/exec (go-reaper's documented
// clash), and handlers for SIGTERM and SIGINT, which the kernel otherwise
// ignores for PID 1. [Start] sets up both with proctree's reaper, and
// [Init.Shutdown] ends what is left at exit. Run is not for such programs:
// it owns wait(2) and would reap their os/exec children.
//
// # Terminals
//
// Without Setsid, when init's process group owns the terminal on stdin,
// CMD's group is made the foreground group, so that CMD reads the terminal
// and gets ^C and ^Z from it directly (as tini does). With Setsid, CMD
// becomes a session leader and takes the terminal as its controlling
// terminal when no session holds it; when init leads the session that holds
// it (PID 1 of `docker run -t`), init first gives it up (TIOCNOTTY), as
// dumb-init does. A terminal that belongs to another session (the shell
// that started init) is never taken: CMD then runs without a controlling
// terminal.
//
// Linux only; on other systems Run and Start fail.
package pid1

package cli

// help is the --help text; NAME stands for the program's name.
const help = `Usage: NAME [flags] [--] CMD [ARGS...]

Runs CMD as the one child of an init: as PID 1 of a container's pid
namespace, or anywhere else as a child subreaper. It reaps every orphaned
zombie as soon as it exits, forwards signals to CMD, and when CMD exits it
ends every process CMD left behind - setsid'ed daemons included - before it
exits itself with CMD's exit code.

Flags (tini's and dumb-init's mean what they mean there; -sg groups -s -g):
  -s, --subreaper        require being a child subreaper; fail if the kernel
                         refuses (without -s, a refusal is only a warning)
  -g, --signal-group     forward signals to CMD's process group, not CMD alone
  -c, --single-child     signals to CMD alone, no session of its own (dumb-init)
      --setsid           run CMD in a session of its own (it then takes the
                         terminal when init can give it up)
  -r, --rewrite FROM:TO  forward signal FROM as TO; TO=0 drops FROM
                         (repeatable; names or numbers: TERM:QUIT, 15:3, INT:0)
  -p, --pdeathsig SIG    signal init receives when its parent dies (it is
                         forwarded to CMD like any other)
  -e, --expect-exit CODE report CMD's exit code CODE as 0 (repeatable;
                         128+N for death by signal N, e.g. 143 for SIGTERM)
      --kill-signal SIG  signal for what remains when CMD exits (default TERM)
      --grace DURATION   time they get before SIGKILL (default 2s; 0: none)
      --no-kill-remaining  exit when CMD exits, leaving the rest running
                         (tini's and dumb-init's behaviour)
      --no-escalate      a second SIGINT is forwarded like the first (tini's
                         and dumb-init's behaviour)
      --keep-fds         pass every inherited file descriptor to CMD (by
                         default only 0-2 and socket activation's LISTEN_FDS)
      --cgroup           run CMD in a cgroup of its own even as PID 1 or a
                         subreaper (by default only when init is neither)
      --no-cgroup        never run CMD in a cgroup of its own
  -w, --warn-on-reap     log every orphaned zombie init reaps
  -v, --verbose          log what init does (to stderr)
  -V, --version          print the version and exit
  -l, --license          print the license and exit
  -h, --help             show this help

Environment (the command line wins):
  TINI_SUBREAPER           set: as -s
  TINI_KILL_PROCESS_GROUP  set: as -g
  TINI_VERBOSITY           0 errors only, 1 warnings (default), 2 info, 3 debug
  DUMB_INIT_SETSID         1: dumb-init's setsid mode (--setsid -g); 0: as -c

Signals: every catchable signal init receives is forwarded to CMD, except
SIGCHLD, SIGURG, SIGPIPE, SIGTTIN, SIGTTOU (init's own), SIGPROF (the Go
runtime's) and 32-34 (the C library's). A second SIGINT within the grace
period after a SIGINT or SIGTERM (as forwarded, after --rewrite) kills CMD
and every descendant with SIGKILL at once; init then reaps them and exits
with CMD's code (137 for SIGKILL).

Exit status: CMD's exit code, or 128+N if signal N killed it (or 0 for an
expected code); 125 if init itself failed, 126 if CMD cannot be executed,
127 if CMD was not found.

See docs/init.md for the full behaviour and how it differs from tini,
dumb-init and catatonit.
`

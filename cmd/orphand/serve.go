package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/orphand/orphand/agent"
	"github.com/orphand/orphand/agent/config"
	"github.com/orphand/orphand/cgroup/auto"
	"github.com/orphand/orphand/internal/journald"
	"github.com/orphand/orphand/internal/version"
)

const serveHelp = `Usage: orphand [serve] [flags]

Runs the orphand agent. It serves the socket systemd passes (socket
activation) or else listens on --socket itself (mode 0666: callers are
authorised by their peer credentials, not by file permissions).

Run by any user but root (or with --user), it is that user's per-user
agent: it serves that user only, listens on
$XDG_RUNTIME_DIR/orphand/orphand.sock (its directory mode 0700, the socket
0600), keeps its state in $XDG_STATE_HOME/orphand (~/.local/state/orphand),
reads $XDG_CONFIG_HOME/orphand/orphand.toml (~/.config/orphand/orphand.toml),
and picks a backend the user may use: systemd's user manager, a cgroup
delegated to the user, or the proc backend (which without root cannot see
every double fork: the start-up log says so). systemctl --user enable --now
orphand.socket starts it on the first connection.

With --compat-socket (or a socket passed under FileDescriptorName=compat,
as orphand-compat.socket does) it also speaks the original orphand's
12-byte protocol, for its clients (orphand-forkwait.so, the Perl client):
see docs/compat.md.

On SIGTERM or SIGINT it stops accepting, lets requests in flight finish,
and exits WITHOUT killing registered groups: their spawners are alive, and
their records stay in --state-dir. The next start takes them over before it
serves: it watches live spawners again and kills, at once, the groups whose
spawner died while it was down (under systemd, with FileDescriptorStoreMax=,
the spawners' pidfds are also kept in systemd's fd store).

Flags (they override the configuration file):
`

const configHelp = `
Configuration file (TOML; every key optional, unknown keys are errors):

  backend        = "auto"         # auto | systemd | cgroupfs | proc
  socket         = "/run/orphand/orphand.sock"
  state_dir      = "/var/lib/orphand"
  cgroup_root    = ""             # cgroupfs root; "" = delegated cgroup or /orphand
  log_level      = "info"         # debug | info | warn | error
  log_format     = "auto"         # auto (journal if stderr is the journal, else text) | text | json | journal
  default_grace  = "0s"           # polite signal -> SIGKILL, if a request names none
  default_signal = "SIGTERM"
  shutdown_grace = "5s"           # time for requests and kills in flight at stop
  stuck_after    = "10s"          # still populated this long after SIGKILL: reported stuck
  metrics_address = ""            # Prometheus metrics: "HOST:PORT" or a Unix socket path; "" = off
  compat_socket  = ""             # also serve the original orphand protocol here ("" = off)
  compat_signal  = "SIGINT"       # its groups' polite signal (then default_grace, SIGKILL)

  [limits]                        # quotas: 0 means unlimited; root is exempt per uid
  groups_per_uid      = 1000
  groups_total        = 50000     # totals are lowered at start to fit the fd limit
  connections_per_uid = 1024
  connections_total   = 16384
  connections_root_reserve = 64   # of the total, only root may use these
  targets_per_watch   = 1024
  targets_per_uid     = 10000
  targets_total       = 100000
  idle_timeout        = "5m"      # no request for this long: disconnected (0: never)
  line_timeout        = "10s"     # a request line begun must arrive whole within this
  max_request         = 65536     # bytes in a request line (4096 to 65536)
  dead_retention      = "10m"     # ended groups stay visible this long...
  dead_max            = 1000      # ...and at most this many
  subscriber_buffer   = 1024      # events queued before a slow subscriber is dropped
  parallel_kills      = 32
  write_timeout       = "10s"     # a client that does not read is disconnected

Exit status: 0 after a clean stop, 1 if the agent failed, 2 on a bad flag or
configuration.
`

// serveOptions is the configuration after flags override the file.
type serveOptions struct {
	file config.File
	user bool // a per-user agent (--user, or not run by root)
}

func runServe(args []string, stdout, stderr io.Writer) int {
	opts, code, ok := parseServe(args, stdout, stderr)
	if !ok {
		return code
	}
	log, closeLog, err := newLogger(stderr, opts.file.LogLevel, opts.file.LogFormat)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "orphand:", err)
		return exitUsage
	}
	defer closeLog()
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, opts, log); err != nil {
		log.Error("orphand failed", "err", err)
		return exitFailure
	}
	return exitOK
}

// parseServe reads the flags and the configuration file. ok is false when
// the command must exit with code (help, version, or a usage error).
func parseServe(args []string, stdout, stderr io.Writer) (serveOptions, int, bool) {
	fs := flag.NewFlagSet("orphand serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	def := config.Default()
	var (
		socket      = fs.String("socket", def.Socket, "listen on the Unix socket `PATH` when systemd passes none (per-user agent: $XDG_RUNTIME_DIR/orphand/orphand.sock)")
		backend     = fs.String("backend", def.Backend, "cgroup `BACKEND`: "+strings.Join(auto.Names, ", "))
		cgroupRoot  = fs.String("cgroup-root", def.CgroupRoot, "cgroupfs: create groups under the cgroup `PATH` (relative to the cgroup2 mount, or absolute below it)")
		stateDir    = fs.String("state-dir", def.StateDir, "`DIR` for records that survive a restart (per-user agent: $XDG_STATE_HOME/orphand)")
		configPath  = fs.String("config", config.DefaultPath, "configuration `FILE` (TOML; a missing default file means defaults; per-user agent: $XDG_CONFIG_HOME/orphand/orphand.toml)")
		logLevel    = fs.String("log-level", def.LogLevel, "log `LEVEL`: debug, info, warn or error")
		logFormat   = fs.String("log-format", def.LogFormat, "log `FORMAT`: auto (the journal's native protocol when stderr is the journal, else text), text, json or journal")
		metricsAddr = fs.String("metrics-address", def.MetricsAddress, "serve Prometheus metrics at http://`ADDR`/metrics: HOST:PORT, or a Unix socket path (default: none)")
		compatSock  = fs.String("compat-socket", def.CompatSocket, "also serve the original orphand's 12-byte protocol on the Unix socket `PATH` (off by default; see docs/compat.md)")
		compatSig   = fs.String("compat-signal", def.CompatSignal, "polite `SIGNAL` to the compatibility socket's groups, before the default grace and SIGKILL")
		showVersion = fs.Bool("version", false, "print the version and exit")
		user        = fs.Bool("user", false, "run as the per-user agent of the user running it: the default for every user but root (see above)")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, _ = fmt.Fprint(stdout, serveHelp)
			printFlags(stdout, fs)
			_, _ = fmt.Fprint(stdout, configHelp)
			return serveOptions{}, exitOK, false
		}
		_, _ = fmt.Fprintf(stderr, "orphand: %v (run orphand serve --help)\n", err)
		return serveOptions{}, exitUsage, false
	}
	if *showVersion {
		_, _ = fmt.Fprintln(stdout, version.String())
		return serveOptions{}, exitOK, false
	}
	if fs.NArg() > 0 {
		_, _ = fmt.Fprintf(stderr, "orphand: unexpected argument %q (run orphand serve --help)\n", fs.Arg(0))
		return serveOptions{}, exitUsage, false
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	userAgent := userMode(*user)
	file, err := loadConfig(*configPath, set["config"], userAgent)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "orphand: %v\n", err)
		return serveOptions{}, exitUsage, false
	}
	overrides := []struct {
		flag     string
		from, to *string
	}{
		{"socket", socket, &file.Socket},
		{"backend", backend, &file.Backend},
		{"cgroup-root", cgroupRoot, &file.CgroupRoot},
		{"state-dir", stateDir, &file.StateDir},
		{"log-level", logLevel, &file.LogLevel},
		{"log-format", logFormat, &file.LogFormat},
		{"metrics-address", metricsAddr, &file.MetricsAddress},
		{"compat-socket", compatSock, &file.CompatSocket},
		{"compat-signal", compatSig, &file.CompatSignal},
	}
	for _, o := range overrides {
		if set[o.flag] {
			*o.to = *o.from
		}
	}
	if err := file.Validate(); err != nil {
		_, _ = fmt.Fprintf(stderr, "orphand: %v\n", err)
		return serveOptions{}, exitUsage, false
	}
	return serveOptions{file: file, user: userAgent}, 0, true
}

// newLogger makes the agent's structured logger: on stderr in text or
// JSON, or — log format "journal", or "auto" with stderr connected to the
// journal (a systemd service) — to journald over its native protocol, with
// a field per attribute (ORPHAND_GROUP=…). closeLog releases the journal
// socket once nothing logs any more.
func newLogger(w io.Writer, level, format string) (log *slog.Logger, closeLog func(), err error) {
	lvl, err := config.ParseLevel(level)
	if err != nil {
		return nil, nil, err
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch {
	case format == config.LogJSON:
		return slog.New(slog.NewJSONHandler(w, opts)), func() {}, nil
	case format == config.LogJournal, format == config.LogAuto && journald.StderrIsJournal():
		c, err := journald.Dial(journald.SocketPath)
		if err != nil {
			return nil, nil, fmt.Errorf("log to the journal: %w (use --log-format text)", err)
		}
		h := journald.NewHandler(c, journald.Options{Level: lvl, Prefix: "ORPHAND_", Identifier: "orphand", Fallback: w})
		return slog.New(h), func() { _ = c.Close() }, nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), func() {}, nil
}

// serve runs the agent until ctx ends: the steps of a start, in order.
func serve(ctx context.Context, opts serveOptions, log *slog.Logger) error {
	f := opts.file
	log.Info("orphand starting", "version", version.String(), "pid", os.Getpid())
	if opts.user {
		logUserAgent(log, f)
	}
	// First: the pidfds systemd kept are taken out of the passed
	// descriptors before socket activation reads them.
	durable, err := agent.OpenDurable(ctx, f.StateDir, log)
	if err != nil {
		return err
	}
	defer func() { _ = durable.Close() }()

	backend, err := auto.Open(ctx, auto.Config{Backend: f.Backend, CgroupRoot: f.CgroupRoot, User: opts.user, Logger: log})
	if err != nil {
		return fmt.Errorf("open the cgroup backend: %w", err)
	}
	defer func() { _ = backend.Close() }()

	lns, err := listen(f.Socket, f.CompatSocket, opts.user, log)
	if err != nil {
		return err
	}
	defer lns.Close()
	ln := lns.main
	var agentOpts []agent.Option
	if f.MetricsAddress != "" {
		mln, err := listenMetrics(f.MetricsAddress)
		if err != nil {
			return err
		}
		defer mln.Close()
		agentOpts = append(agentOpts, agent.WithMetrics(mln))
	}
	if lns.compat != nil {
		agentOpts = append(agentOpts, agent.WithCompat(agent.CompatConfig{Listener: lns.compat, Signal: f.CompatSignalNum()}))
	}

	cfg, err := f.Agent()
	if err != nil {
		return err
	}
	n := newNotifier(log)
	cfg.Subreaper = true
	cfg.User = opts.user
	cfg.OnReady = func() {
		n.notify("READY=1\nSTATUS=serving on " + ln.Addr().String() + " with the " + backend.Name() + " backend")
	}
	a, err := agent.New(cfg, backend, log, append(agentOpts, agent.WithDurable(durable))...)
	if err != nil {
		return err
	}
	stopWatchdog := n.startWatchdog(a)
	defer stopWatchdog()
	stopping := context.AfterFunc(ctx, func() { n.notify("STOPPING=1\nSTATUS=stopping") })
	defer stopping()
	return a.Run(ctx, ln)
}

// printFlags lists the flags the way users type them (--name).
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + strings.ToUpper(name)
		}
		if f.DefValue != "" && f.DefValue != "false" {
			usage += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		_, _ = fmt.Fprintf(w, "%s\n      %s\n", line, usage)
	})
}

// agentGCPercent is the agent's default GOGC. The agent's heap is almost
// all long-lived group state and it allocates little per request, so a
// tighter heap goal costs next to no CPU and keeps its resident set near
// its live data (docs/benchmarks/agent.md measures both). GOGC in the
// environment still wins.
const agentGCPercent = 50

func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(agentGCPercent)
	}
}

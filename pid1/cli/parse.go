package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/orphand/orphand/pid1"
)

// action is what the command line asks for besides running CMD.
type action int

const (
	actRun action = iota
	actHelp
	actVersion
	actLicense
)

// options is the parsed command line.
type options struct {
	cfg    pid1.Config
	level  slog.Level
	action action
}

// flag is one option: its short and long names (either may be empty),
// whether it takes a value, and what it does.
type flag struct {
	short byte
	long  string
	value bool
	set   func(o *parser, v string) error
}

// flags are tini's (-s -p -v -w -g -e -l --version), dumb-init's (-c -r -v
// -V), and orphand's own. A letter means the same as in the peer that has it.
var flags = []flag{
	{'s', "subreaper", false, func(p *parser, _ string) error { p.o.cfg.Subreaper = true; return nil }},
	{'g', "signal-group", false, func(p *parser, _ string) error { p.o.cfg.SignalGroup = true; return nil }},
	{'c', "single-child", false, func(p *parser, _ string) error { p.singleChild = true; return nil }},
	{0, "setsid", false, func(p *parser, _ string) error { p.o.cfg.Setsid = true; return nil }},
	{'r', "rewrite", true, (*parser).rewrite},
	{0, "kill-signal", true, func(p *parser, v string) error { return signalFlag(&p.o.cfg.KillSignal, v) }},
	{0, "grace", true, (*parser).grace},
	{0, "no-kill-remaining", false, func(p *parser, _ string) error { p.o.cfg.NoKillRemaining = true; return nil }},
	{0, "no-escalate", false, func(p *parser, _ string) error { p.o.cfg.NoEscalate = true; return nil }},
	{'e', "expect-exit", true, (*parser).expect},
	{0, "keep-fds", false, func(p *parser, _ string) error { p.o.cfg.KeepFDs = true; return nil }},
	{'p', "pdeathsig", true, func(p *parser, v string) error { return signalFlag(&p.o.cfg.ParentDeathSignal, v) }},
	{0, "no-cgroup", false, func(p *parser, _ string) error { p.o.cfg.Cgroup = pid1.CgroupOff; return nil }},
	{0, "cgroup", false, func(p *parser, _ string) error { p.o.cfg.Cgroup = pid1.CgroupOn; return nil }},
	{'w', "warn-on-reap", false, func(p *parser, _ string) error { p.o.cfg.WarnOnReap = true; return nil }},
	{'v', "verbose", false, func(p *parser, _ string) error { p.verbose++; return nil }},
	{'V', "version", false, func(p *parser, _ string) error { p.o.action = actVersion; return nil }},
	{'l', "license", false, func(p *parser, _ string) error { p.o.action = actLicense; return nil }},
	{'h', "help", false, func(p *parser, _ string) error { p.o.action = actHelp; return nil }},
}

// parser holds what the flags and the environment set while parsing.
type parser struct {
	o           options
	verbose     int
	singleChild bool
	rewrites    map[syscall.Signal]syscall.Signal
	graceTime   time.Duration
}

// parse reads the environment variables of tini and dumb-init, then the
// command line (which wins), the way getopt does: short flags may be
// grouped (-sg, -vvv) and take their value attached or as the next
// argument (-e143, -e 143); long ones take it after = or as the next
// argument. Parsing stops at -- or at the first argument that is not a
// flag, which starts CMD.
func parse(args, env []string) (options, error) {
	p := &parser{rewrites: map[syscall.Signal]syscall.Signal{}, graceTime: pid1.DefaultGrace}
	p.o.level = slog.LevelWarn
	p.environment(env)
	i := 0
	for i < len(args) {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		n, err := p.flag(args[i:])
		if err != nil {
			return p.o, err
		}
		i += n
	}
	if p.o.action != actRun {
		return p.o, nil
	}
	p.o.cfg.Args = args[i:]
	if len(p.o.cfg.Args) == 0 {
		return p.o, pid1.ErrNoCommand
	}
	return p.finish()
}

// flag parses the flag (or group of short flags) at args[0], taking its
// value from args[1] if it needs one, and returns how many arguments it
// used.
func (p *parser) flag(args []string) (int, error) {
	a := args[0]
	if name, ok := strings.CutPrefix(a, "--"); ok {
		name, val, hasVal := strings.Cut(name, "=")
		f := lookupLong(name)
		switch {
		case f == nil:
			return 0, fmt.Errorf("unknown flag --%s", name)
		case !f.value && hasVal:
			return 0, fmt.Errorf("flag --%s takes no value", name)
		case f.value && !hasVal:
			if len(args) < 2 {
				return 0, fmt.Errorf("flag --%s needs a value", name)
			}
			return 2, f.set(p, args[1])
		}
		return 1, f.set(p, val)
	}
	for j := 1; j < len(a); j++ {
		f := lookupShort(a[j])
		if f == nil {
			return 0, fmt.Errorf("unknown flag -%c", a[j])
		}
		if !f.value {
			if err := f.set(p, ""); err != nil {
				return 0, err
			}
			continue
		}
		if j+1 < len(a) {
			return 1, f.set(p, a[j+1:])
		}
		if len(args) < 2 {
			return 0, fmt.Errorf("flag -%c needs a value", a[j])
		}
		return 2, f.set(p, args[1])
	}
	return 1, nil
}

func lookupLong(name string) *flag {
	for i := range flags {
		if flags[i].long == name {
			return &flags[i]
		}
	}
	return nil
}

func lookupShort(c byte) *flag {
	for i := range flags {
		if flags[i].short == c {
			return &flags[i]
		}
	}
	return nil
}

// The environment variables of tini and dumb-init, with their meaning.
const (
	envTiniSubreaper  = "TINI_SUBREAPER"          // set: -s
	envTiniKillGroup  = "TINI_KILL_PROCESS_GROUP" // set: -g
	envTiniVerbosity  = "TINI_VERBOSITY"          // 0 errors, 1 warnings (default), 2 info, 3 debug
	envDumbInitSetsid = "DUMB_INIT_SETSID"        // 0: -c; anything else: dumb-init's setsid mode
)

// environment applies tini's and dumb-init's environment variables. Like
// theirs, a variable is on when it is set at all (tini), and a verbosity
// that is not a number is taken as 0 (tini's atoi).
func (p *parser) environment(env []string) {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case envTiniSubreaper:
			p.o.cfg.Subreaper = true
		case envTiniKillGroup:
			p.o.cfg.SignalGroup = true
		case envTiniVerbosity:
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			p.o.level = tiniLevel(n)
		case envDumbInitSetsid:
			// dumb-init's default, setsid mode: CMD leads a session of its
			// own and signals go to its process group. Only "0" turns it
			// off, which is orphand's default (and -c).
			if strings.TrimSpace(v) != "0" {
				p.o.cfg.Setsid, p.o.cfg.SignalGroup = true, true
			}
		}
	}
}

// tiniLevel maps TINI_VERBOSITY to a log level.
func tiniLevel(n int) slog.Level {
	switch {
	case n <= 0:
		return slog.LevelError
	case n == 1:
		return slog.LevelWarn
	case n == 2:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// finish turns what was parsed into the configuration.
func (p *parser) finish() (options, error) {
	if p.verbose > 0 {
		p.o.level = slog.LevelDebug // dumb-init's -v; tini's -v (once or more)
	}
	if p.singleChild {
		// dumb-init -c: signals reach CMD alone, and CMD does not lead a
		// session of its own. (It gets a process group of its own: see the
		// differences in docs/init.md.)
		p.o.cfg.Setsid, p.o.cfg.SignalGroup = false, false
	}
	p.o.cfg.Grace = p.graceTime
	if p.graceTime == 0 {
		p.o.cfg.Grace = -1 // no grace at all (pid1 reads 0 as "default")
	}
	if len(p.rewrites) > 0 {
		p.o.cfg.Rewrite = p.rewrites
	}
	return p.o, nil
}

func (p *parser) rewrite(v string) error {
	from, to, err := pid1.ParseRewrite(v)
	if err != nil {
		return err
	}
	p.rewrites[from] = to
	return nil
}

func (p *parser) expect(v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 || n > 255 {
		return fmt.Errorf("exit code %q: want a number 0..255", v)
	}
	p.o.cfg.ExpectedCodes = append(p.o.cfg.ExpectedCodes, n)
	return nil
}

func (p *parser) grace(v string) error {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return fmt.Errorf("--grace %q: want a duration such as 2s or 500ms", v)
	}
	if d < 0 {
		return errors.New("--grace: must not be negative")
	}
	p.graceTime = d
	return nil
}

func signalFlag(dst *syscall.Signal, v string) error {
	sig, err := pid1.ParseSignal(v)
	if err != nil {
		return err
	}
	*dst = sig
	return nil
}

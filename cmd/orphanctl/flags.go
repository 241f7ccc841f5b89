package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments ("kill GROUP --grace 5s"), as users type them. An
// argument "--" ends the flags: everything after it is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// graceFlag is an optional duration: "5s", "250ms", or a plain number of
// seconds ("5", "0.5"). Unset means "the agent's (or group's) default".
type graceFlag struct {
	d   time.Duration
	set bool
}

func (g *graceFlag) String() string {
	if !g.set {
		return ""
	}
	return g.d.String()
}

// duration is the grace to ask for: nil when unset (the default applies).
func (g graceFlag) duration() *time.Duration {
	if !g.set {
		return nil
	}
	d := g.d
	return &d
}

func (g *graceFlag) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	g.d, g.set = d, true
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || f > float64(time.Duration(1<<62)/time.Second) {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 5s, 250ms, or a number of seconds)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return d, nil
}

// pidList collects pids given as "P,P,…", possibly repeated.
type pidList []int

func (l *pidList) String() string {
	s := make([]string, len(*l))
	for i, p := range *l {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

func (l *pidList) Set(v string) error {
	for f := range strings.SplitSeq(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := parsePid(f)
		if err != nil {
			return err
		}
		*l = append(*l, p)
	}
	return nil
}

func parsePid(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p <= 0 {
		return 0, fmt.Errorf("invalid pid %q (want a positive number)", s)
	}
	return p, nil
}

// pidFlag is a pid given with a flag; 0 when unset.
type pidFlag int

func (p *pidFlag) String() string { return strconv.Itoa(int(*p)) }

func (p *pidFlag) Set(s string) error {
	v, err := parsePid(s)
	*p = pidFlag(v)
	return err
}

// onFlag is the trigger of a run: exit (default) or disconnect.
type onFlag string

func (o *onFlag) String() string { return string(*o) }

func (o *onFlag) Set(s string) error {
	switch s {
	case "exit", "disconnect":
		*o = onFlag(s)
		return nil
	}
	return errors.New(`must be "exit" or "disconnect"`)
}

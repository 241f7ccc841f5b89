package pid1

import (
	"errors"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestExitCode(t *testing.T) {
	exited := func(c int) syscall.WaitStatus { return syscall.WaitStatus(c << 8) }
	signaled := func(s syscall.Signal) syscall.WaitStatus { return syscall.WaitStatus(s) }
	for _, tc := range []struct {
		ws       syscall.WaitStatus
		expected []int
		want     int
	}{
		{exited(0), nil, 0},
		{exited(3), nil, 3},
		{exited(3), []int{3}, 0},
		{exited(3), []int{4, 5}, 3},
		{signaled(syscall.SIGTERM), nil, 143},
		{signaled(syscall.SIGKILL), nil, 137},
		{signaled(syscall.SIGTERM), []int{143}, 0},
	} {
		if got := exitCode(tc.ws, tc.expected); got != tc.want {
			t.Errorf("exitCode(%#x, %v) = %d, want %d", uint32(tc.ws), tc.expected, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Args: []string{"true"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for name, c := range map[string]Config{
		"no args":        {},
		"empty cmd":      {Args: []string{""}},
		"bad rewrite":    {Args: []string{"x"}, Rewrite: map[syscall.Signal]syscall.Signal{0: 1}},
		"bad target":     {Args: []string{"x"}, Rewrite: map[syscall.Signal]syscall.Signal{1: 65}},
		"bad kill sig":   {Args: []string{"x"}, KillSignal: 99},
		"bad pdeathsig":  {Args: []string{"x"}, ParentDeathSignal: -1},
		"bad exit code":  {Args: []string{"x"}, ExpectedCodes: []int{256}},
		"negative codes": {Args: []string{"x"}, ExpectedCodes: []int{-1}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := (&Config{}).Validate(); !errors.Is(err, ErrNoCommand) {
		t.Errorf("no command: %v, want ErrNoCommand", err)
	}
}

func TestGraceDefaults(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{0: DefaultGrace, -1: 0, time.Second: time.Second} {
		c := Config{Grace: in}
		if got := c.grace(); got != want {
			t.Errorf("grace(%v) = %v, want %v", in, got, want)
		}
	}
	if got := (&Config{}).killSignal(); got != syscall.SIGTERM {
		t.Errorf("default kill signal %v", got)
	}
}

func TestForwarded(t *testing.T) {
	for _, s := range []syscall.Signal{syscall.SIGCHLD, syscall.SIGURG, syscall.SIGPIPE, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGPROF, syscall.SIGKILL, syscall.SIGSTOP, 32, 33, 34, 0, 65} {
		if Forwarded(s) {
			t.Errorf("%v is forwarded", s)
		}
	}
	for _, s := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGWINCH, syscall.SIGTSTP, syscall.SIGCONT, 35, 64} {
		if !Forwarded(s) {
			t.Errorf("%v is not forwarded", s)
		}
	}
	caught := caughtSignals()
	for _, s := range []syscall.Signal{syscall.SIGCHLD, syscall.SIGPIPE, syscall.SIGTERM, syscall.SIGTTOU, 35, 64} {
		if !slices.Contains(caught, s) {
			t.Errorf("%v is not caught", s)
		}
	}
	for _, s := range []syscall.Signal{syscall.SIGURG, syscall.SIGKILL, syscall.SIGPROF, 32, 33, 34} {
		if slices.Contains(caught, s) {
			t.Errorf("%v is caught", s)
		}
	}
}

func TestParseRewrite(t *testing.T) {
	for _, tc := range []struct {
		spec     string
		from, to syscall.Signal
	}{
		{"TERM:QUIT", syscall.SIGTERM, syscall.SIGQUIT},
		{"15:3", syscall.SIGTERM, syscall.SIGQUIT},
		{"SIGINT:0", syscall.SIGINT, 0},
		{"int: 0", syscall.SIGINT, 0},
		{"TSTP:STOP", syscall.SIGTSTP, syscall.SIGSTOP},
		{"RTMIN+1:USR1", 35, syscall.SIGUSR1},
	} {
		from, to, err := ParseRewrite(tc.spec)
		if err != nil || from != tc.from || to != tc.to {
			t.Errorf("ParseRewrite(%q) = %v, %v, %v; want %v, %v", tc.spec, from, to, err, tc.from, tc.to)
		}
	}
	for _, bad := range []string{"", "TERM", "TERM:", ":TERM", "NOPE:TERM", "TERM:NOPE", "CHLD:TERM", "KILL:TERM", "0:TERM", "TERM:65", "TERM:-1"} {
		if _, _, err := ParseRewrite(bad); err == nil {
			t.Errorf("ParseRewrite(%q) accepted", bad)
		}
	}
}

func FuzzParseRewrite(f *testing.F) {
	for _, s := range []string{"TERM:QUIT", "15:0", "SIGRTMAX-2:INT", ":", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		from, to, err := ParseRewrite(spec)
		if err != nil {
			return
		}
		if !Forwarded(from) || (to != 0 && !validSignal(to)) {
			t.Fatalf("ParseRewrite(%q) = %v, %v: out of range", spec, from, to)
		}
		c := Config{Args: []string{"x"}, Rewrite: map[syscall.Signal]syscall.Signal{from: to}}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseRewrite(%q) gave a rewrite validate refuses: %v", spec, err)
		}
	})
}

func TestEscalation(t *testing.T) {
	t0 := time.Unix(1000, 0)
	e := escalation{window: 2 * time.Second}
	steps := []struct {
		sig  syscall.Signal
		at   time.Duration
		want bool
	}{
		{syscall.SIGHUP, 0, false},            // not a stop signal
		{syscall.SIGTERM, 0, false},           // the first stop
		{syscall.SIGTERM, time.Second, false}, // only SIGINT escalates
		{syscall.SIGINT, 1500 * time.Millisecond, true},
		{syscall.SIGINT, 3 * time.Second, false}, // outside the window
	}
	for i, s := range steps {
		if got := e.observe(s.sig, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d (%v at +%v): escalate = %v, want %v", i, s.sig, s.at, got, s.want)
		}
	}
	// No grace: any second SIGINT escalates.
	e = escalation{}
	e.observe(syscall.SIGINT, t0)
	if !e.observe(syscall.SIGINT, t0.Add(time.Hour)) {
		t.Error("with no grace a second SIGINT did not escalate")
	}
}

func TestListenFDs(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want int
		err  bool
	}{
		{nil, 0, false},
		{[]string{"LISTEN_FDS=2"}, 0, false},
		{[]string{"LISTEN_PID=99", "LISTEN_FDS=2"}, 0, false}, // for someone else
		{[]string{"LISTEN_PID=42", "LISTEN_FDS=2"}, 2, false},
		{[]string{"LISTEN_PID= 42 ", "LISTEN_FDS=1"}, 1, false},
		{[]string{"LISTEN_PID=1", "LISTEN_PID=42", "LISTEN_FDS=3"}, 3, false}, // the last one wins
		{[]string{"LISTEN_PID=42"}, 0, true},
		{[]string{"LISTEN_PID=42", "LISTEN_FDS=x"}, 0, true},
		{[]string{"LISTEN_PID=42", "LISTEN_FDS=-1"}, 0, true},
	} {
		got, err := listenFDs(tc.env, 42)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("listenFDs(%q) = %d, %v; want %d, error %v", tc.env, got, err, tc.want, tc.err)
		}
	}
}

func TestWithoutEnv(t *testing.T) {
	got := withoutEnv([]string{"A=1", "LISTEN_PID=3", "B=2", "LISTEN_PID=4", "LISTEN_PIDX=5"}, "LISTEN_PID")
	if want := []string{"A=1", "B=2", "LISTEN_PIDX=5"}; !slices.Equal(got, want) {
		t.Errorf("withoutEnv = %q, want %q", got, want)
	}
}

func TestExecWithListenPIDRefusesWithoutMarker(t *testing.T) {
	if _, set := os.LookupEnv(listenHelperOK); set {
		t.Skipf("%s is set in the test's environment", listenHelperOK)
	}
	if err := ExecWithListenPID([]string{"/bin/true", "true"}); err == nil {
		t.Fatal("no error") // unreachable: it would have exec'd
	}
	if err := ExecWithListenPID([]string{"/bin/true"}); err == nil {
		t.Fatal("accepted a command line without argv")
	}
}

func TestSignalNames(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscall.Signal
	}{
		{"TERM", syscall.SIGTERM},
		{"sigterm", syscall.SIGTERM},
		{" SIGKILL ", syscall.SIGKILL},
		{"15", syscall.SIGTERM},
		{"IOT", syscall.SIGABRT},
		{"CLD", syscall.SIGCHLD},
		{"POLL", syscall.SIGIO},
		{"STKFLT", 16},
		{"PWR", syscall.SIGPWR},
		{"RTMIN", 34},
		{"SIGRTMIN+3", 37},
		{"RTMAX", 64},
		{"rtmax-2", 62},
		{"64", 64},
	} {
		if got, err := ParseSignal(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0", "65", "-1", "NOPE", "RTMIN-1", "RTMAX+1", "RTMIN+31", "RTMIN+", "RTMIN*2"} {
		if got, err := ParseSignal(bad); err == nil {
			t.Errorf("ParseSignal(%q) = %v, want an error", bad, got)
		}
	}
	for sig, want := range map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", 34: "SIGRTMIN", 37: "SIGRTMIN+3", 64: "SIGRTMAX", 32: "32"} {
		if got := SignalName(sig); got != want {
			t.Errorf("SignalName(%d) = %q, want %q", int(sig), got, want)
		}
	}
	for s := syscall.Signal(1); s <= 64; s++ {
		if s == 32 || s == 33 {
			continue // unnamed
		}
		if got, err := ParseSignal(SignalName(s)); err != nil || got != s {
			t.Errorf("ParseSignal(SignalName(%d)) = %v, %v", int(s), got, err)
		}
	}
}

// TestEscalationSeesTheRewrittenSignal: the rule is fed what is forwarded.
func TestEscalationSeesTheRewrittenSignal(t *testing.T) {
	t0 := time.Unix(1000, 0)
	rw := map[syscall.Signal]syscall.Signal{syscall.SIGINT: syscall.SIGTERM, syscall.SIGUSR1: syscall.SIGINT, syscall.SIGHUP: 0}
	if rewritten(rw, syscall.SIGHUP) != 0 || rewritten(rw, syscall.SIGQUIT) != syscall.SIGQUIT {
		t.Fatal("rewritten")
	}
	e := escalation{window: time.Minute}
	for i, s := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGINT} {
		if e.observe(rewritten(rw, s), t0.Add(time.Duration(i)*time.Second)) {
			t.Errorf("-r INT:TERM: signal %d (%v) escalated", i, s)
		}
	}
	e = escalation{window: time.Minute}
	e.observe(rewritten(rw, syscall.SIGTERM), t0)
	if !e.observe(rewritten(rw, syscall.SIGUSR1), t0.Add(time.Second)) {
		t.Error("-r USR1:INT: a SIGUSR1 after SIGTERM did not escalate")
	}
}

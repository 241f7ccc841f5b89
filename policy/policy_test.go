package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/orphand/orphand/ipc"
)

func TestMayAct(t *testing.T) {
	host := Host{AgentPid: 500, Ancestors: []int{400, 300, 1}}
	root := Caller{UID: 0, Pid: 10}
	alice := Caller{UID: 1000, Pid: 11}
	user := func(pid int, real, saved uint32) Process { return Process{Pid: pid, RealUID: real, SavedUID: saved} }

	tests := []struct {
		name   string
		caller Caller
		target Process
		host   Host
		want   string // "" = allowed; else a substring of the refusal
	}{
		{"root on anyone", root, user(42, 1000, 1000), host, ""},
		{"root on root", root, user(42, 0, 0), host, ""},
		{"same real uid", alice, user(42, 1000, 1000), host, ""},
		{"same saved uid only", alice, user(42, 0, 1000), host, ""},
		{"setuid-root program started by alice (real uid alice)", alice, user(42, 1000, 0), host, ""},
		{"another user", alice, user(42, 1001, 1001), host, "runs as uid 1001"},
		{"root's process", alice, user(42, 0, 0), host, "only root or the same user"},
		{"pid 1 for root", root, user(1, 0, 0), host, "pid 1"},
		{"pid 1 for its owner", alice, user(1, 1000, 1000), host, "pid 1"},
		{"pid 1 with no host facts", root, user(1, 0, 0), Host{}, "pid 1"},
		{"the agent", root, user(500, 0, 0), host, "agent itself"},
		{"the agent's parent", root, user(400, 0, 0), host, "ancestor"},
		{"the agent's grandparent owned by caller", alice, user(300, 1000, 1000), host, "ancestor"},
		{"kernel thread", root, Process{Pid: 2, KernelThread: true}, host, "kernel thread"},
		{"kernel thread uid 0 for alice", alice, Process{Pid: 77, KernelThread: true}, host, "kernel thread"},
		{"pid 0", root, user(0, 0, 0), host, "not a process id"},
		{"negative pid", root, user(-5, 0, 0), host, "not a process id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := MayAct(tt.caller, "register", tt.target, tt.host)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var d *Denied
			if !errors.As(err, &d) {
				t.Fatalf("err = %v, want *Denied", err)
			}
			if !strings.Contains(d.Error(), tt.want) || !strings.Contains(d.Error(), "register") {
				t.Fatalf("message %q lacks %q or the verb", d.Error(), tt.want)
			}
		})
	}
}

func TestMaySeeAndControl(t *testing.T) {
	tests := []struct {
		caller Caller
		owner  uint32
		want   bool
	}{
		{Caller{UID: 0}, 0, true},
		{Caller{UID: 0}, 1000, true},
		{Caller{UID: 1000}, 1000, true},
		{Caller{UID: 1000}, 0, false},
		{Caller{UID: 1000}, 1001, false},
	}
	for _, tt := range tests {
		if got := MaySee(tt.caller, tt.owner); got != tt.want {
			t.Errorf("MaySee(uid %d, owner %d) = %v", tt.caller.UID, tt.owner, got)
		}
		err := MayControl(tt.caller, "kill", "abc", tt.owner)
		if (err == nil) != tt.want {
			t.Errorf("MayControl(uid %d, owner %d) = %v", tt.caller.UID, tt.owner, err)
		}
		var d *Denied
		if err != nil && (!errors.As(err, &d) || !strings.Contains(err.Error(), "kill group abc")) {
			t.Errorf("refusal %q", err)
		}
	}
}

func TestMayConnect(t *testing.T) {
	tests := []struct {
		caller Caller
		owner  uint32
		want   bool
	}{
		{Caller{UID: 1000}, 1000, true},
		{Caller{UID: 1001}, 1000, false},
		{Caller{UID: 0}, 1000, false}, // root too: a per-user agent cannot act on root's processes
		{Caller{UID: 0}, 0, true},     // root's own per-user agent (user@0.service)
	}
	for _, tt := range tests {
		err := MayConnect(tt.caller, tt.owner)
		if (err == nil) != tt.want {
			t.Errorf("MayConnect(uid %d, owner %d) = %v, want allowed=%v", tt.caller.UID, tt.owner, err, tt.want)
		}
		var d *Denied
		if err != nil && (!errors.As(err, &d) || !strings.Contains(err.Error(), "--system")) {
			t.Errorf("refusal %q is not a *Denied that says what to do", err)
		}
	}
}

func TestLimits(t *testing.T) {
	l := Limits{GroupsPerUID: 2, GroupsTotal: 5, ConnsPerUID: 1, ConnsTotal: 3, TargetsPerWatch: 4, TargetsPerUID: 6}
	root, alice := Caller{UID: 0}, Caller{UID: 1000}
	tests := []struct {
		name string
		err  error
		want string // "" = allowed, else the limit's name
	}{
		{"group under both", l.AllowGroup(alice, Usage{Mine: 1, Total: 1}), ""},
		{"group per uid", l.AllowGroup(alice, Usage{Mine: 2, Total: 2}), ipc.LimitGroupsPerUID},
		{"group per uid, root exempt", l.AllowGroup(root, Usage{Mine: 2, Total: 2}), ""},
		{"group total, even root", l.AllowGroup(root, Usage{Mine: 5, Total: 5}), ipc.LimitGroupsTotal},
		{"conn", l.AllowConn(alice, Usage{}), ""},
		{"conn per uid", l.AllowConn(alice, Usage{Mine: 1, Total: 1}), ipc.LimitConnsPerUID},
		{"conn total", l.AllowConn(root, Usage{Mine: 3, Total: 3}), ipc.LimitConnsTotal},
		{"targets fit", l.AllowTargets(alice, 0, 4, Usage{}), ""},
		{"targets per watch, even root", l.AllowTargets(root, 0, 5, Usage{}), ipc.LimitTargetsPerWatch},
		{"targets per watch after attach", l.AllowTargets(alice, 4, 1, Usage{Mine: 4}), ipc.LimitTargetsPerWatch},
		{"targets per uid", l.AllowTargets(alice, 0, 3, Usage{Mine: 4}), ipc.LimitTargetsPerUID},
		{"targets per uid, root exempt", l.AllowTargets(root, 0, 3, Usage{Mine: 4}), ""},
		{"no limits", Limits{}.AllowGroup(alice, Usage{Mine: 1 << 20, Total: 1 << 20}), ""},
	}
	for _, tt := range tests {
		var le *LimitError
		switch {
		case tt.want == "" && tt.err != nil:
			t.Errorf("%s: refused: %v", tt.name, tt.err)
		case tt.want != "" && !errors.As(tt.err, &le):
			t.Errorf("%s: err = %v, want *LimitError", tt.name, tt.err)
		case tt.want != "" && le.Limit != tt.want:
			t.Errorf("%s: limit %q, want %q", tt.name, le.Limit, tt.want)
		}
	}
	if d := DefaultLimits(); d.GroupsPerUID <= 0 || d.GroupsTotal < d.GroupsPerUID || d.ConnsTotal < d.ConnsPerUID {
		t.Errorf("DefaultLimits inconsistent: %+v", d)
	}
}

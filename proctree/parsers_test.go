package proctree

import (
	"errors"
	"strings"
	"testing"
)

const statusSample = `Name:	sleep
Umask:	0022
State:	S (sleeping)
Uid:	1000	1001	1002	1003
Gid:	2000	2001	2002	2003
CapInh:	0000000000000000
CapPrm:	000001ffffffffff
CapEff:	000001ffffffffff
`

func TestParseCreds(t *testing.T) {
	c, err := parseCreds(strings.NewReader(statusSample))
	if err != nil {
		t.Fatal(err)
	}
	want := credSnapshot{ok: true, euid: 1001, fsuid: 1003, egid: 2001, fsgid: 2003, capPermitted: 0x1ffffffffff}
	if c != want {
		t.Fatalf("got %+v, want %+v", c, want)
	}
	for _, tc := range []struct {
		change func(*credSnapshot)
		clears bool
	}{
		{func(*credSnapshot) {}, false},
		{func(c *credSnapshot) { c.euid = 0 }, true},
		{func(c *credSnapshot) { c.fsgid = 7 }, true},
		{func(c *credSnapshot) { c.capPermitted = 1 }, false}, // dropping capabilities keeps it
		{func(c *credSnapshot) { c.capPermitted |= 1 << 41 }, true},
		{func(c *credSnapshot) { c.ok = false }, false},
	} {
		n := c
		tc.change(&n)
		if got := n.clears(c); got != tc.clears {
			t.Errorf("%+v after %+v: clears = %v, want %v", n, c, got, tc.clears)
		}
	}
	for _, in := range []string{"", "Name: " + strings.Repeat("x", 70000) + "\n", "Uid: 1 2 3\nGid: 1 2 3 4\nCapPrm: 0\n", "Uid: 1 x 3 4\nGid: 1 2 3 4\nCapPrm: 0\n", "Uid: 1 2 3 4\nGid: 1 2 3 4\nCapPrm: zz\n", "Uid: 1 2 3 4\nGid: 1 2 3 4\n"} {
		if _, err := parseCreds(strings.NewReader(in)); !errors.Is(err, ErrBadStatus) {
			t.Errorf("parseCreds(%q) = %v, want ErrBadStatus", in, err)
		}
	}
}

func FuzzParseCreds(f *testing.F) {
	f.Add(statusSample)
	f.Add("Uid: 0 0 0 0\nGid: 0 0 0 0\nCapPrm: 0\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := parseCreds(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrBadStatus) {
				t.Fatalf("error %v does not wrap ErrBadStatus", err)
			}
			return
		}
		if !c.ok || c.clears(c) {
			t.Fatalf("snapshot %+v: not ok, or changed from itself", c)
		}
	})
}

func TestParsePidfdInfo(t *testing.T) {
	for in, want := range map[string]int{
		"pos:\t0\nflags:\t02000002\nmnt_id:\t4\nino:\t28093\nPid:\t28092\nNSpid:\t28092\n": 28092,
		"Pid:\t-1\n": -1,
		"Pid:\t0\n":  0,
	} {
		if got, err := parsePidfdInfo(strings.NewReader(in)); err != nil || got != want {
			t.Errorf("parsePidfdInfo(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "pos: 0\n", "Pid: x\n"} {
		if _, err := parsePidfdInfo(strings.NewReader(in)); err == nil {
			t.Errorf("parsePidfdInfo(%q) succeeded", in)
		}
	}
}

func FuzzParsePidfdInfo(f *testing.F) {
	f.Add("pos:\t0\nflags:\t02000002\nPid:\t28092\nNSpid:\t28092\n")
	f.Add("Pid:\t-1\n")
	f.Fuzz(func(t *testing.T, in string) {
		pid, err := parsePidfdInfo(strings.NewReader(in))
		if err == nil && !strings.Contains(in, "Pid:") {
			t.Fatalf("pid %d from input without a Pid: line", pid)
		}
	})
}

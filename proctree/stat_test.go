package proctree

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func statLine(pid int, comm string, state byte, ppid int, start uint64) string {
	// 52 fields as on a 6.x kernel; (9) flags and (22) starttime set.
	f := make([]string, 52)
	for i := range f {
		f[i] = "0"
	}
	f[0] = fmt.Sprint(pid)
	f[1] = "(" + comm + ")"
	f[2] = string([]byte{state}) // the raw byte: string(state) would UTF-8-encode states >= 0x80
	f[3] = fmt.Sprint(ppid)
	f[4] = "7"
	f[5] = "8"
	f[8] = "4194560"
	f[19] = "3"
	f[21] = fmt.Sprint(start)
	return strings.Join(f, " ") + "\n"
}

func TestParseStat(t *testing.T) {
	for _, comm := range []string{"sh", "a b", ") S 1 (", "((()))", "", "x)"} {
		s, err := ParseStat(strings.NewReader(statLine(42, comm, 'S', 1, 123456)))
		if err != nil {
			t.Fatalf("comm %q: %v", comm, err)
		}
		want := Stat{Pid: 42, Comm: comm, State: 'S', PPid: 1, Pgrp: 7, Session: 8, Flags: 4194560, NumThreads: 3, StartTime: 123456}
		if s != want {
			t.Errorf("comm %q: got %+v, want %+v", comm, s, want)
		}
	}
}

func TestParseStatErrors(t *testing.T) {
	for _, in := range []string{
		"", "42", "42 (sh", "x (sh) S 1", "42 (sh) S 1 2 3",
		"42 (sh) SS " + strings.Repeat("0 ", 30),
		strings.Repeat("9", 5000),
	} {
		if _, err := ParseStat(strings.NewReader(in)); !errors.Is(err, ErrBadStat) {
			t.Errorf("ParseStat(%.40q) = %v, want ErrBadStat", in, err)
		}
	}
}

func TestParseStatSelf(t *testing.T) {
	f, err := os.Open("/proc/self/stat")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	s, err := ParseStat(f)
	if err != nil {
		t.Fatal(err)
	}
	if s.Pid != os.Getpid() || s.PPid != os.Getppid() || s.StartTime == 0 || s.IsKernelThread() {
		t.Errorf("self stat %+v: pid/ppid/start/kthread wrong (pid %d ppid %d)", s, os.Getpid(), os.Getppid())
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add(statLine(1, "init", 'S', 0, 1))
	f.Add(statLine(2, ") R 5 (", 'Z', 1, 99))
	f.Add("1 () S")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseStat(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrBadStat) {
				t.Fatalf("error %v does not wrap ErrBadStat", err)
			}
			return
		}
		// Whatever parsed must re-parse to the same value from a canonical line.
		again, err := ParseStat(strings.NewReader(statLine(s.Pid, s.Comm, s.State, s.PPid, s.StartTime)))
		if err != nil || again.Comm != s.Comm || again.StartTime != s.StartTime || again.PPid != s.PPid {
			t.Fatalf("round trip of %+v: %+v, %v", s, again, err)
		}
	})
}

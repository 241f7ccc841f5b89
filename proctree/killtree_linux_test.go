package proctree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() {
	helpers["kill-forker"] = helperKillForker
	helpers["kill-term"] = helperKillTerm
}

// TestKillDescendantsForkingTree runs, in a child that is a subreaper (and
// inside a cgroup of its own, so that cleanup is certain), a tree that
// forks as fast as it can with setsid double forks in it, and checks that
// KillDescendants leaves nothing: no process of the cgroup but the helper,
// none in /proc whose cgroup, ancestry or session came from it.
func TestKillDescendantsForkingTree(t *testing.T) {
	t.Run("alone", func(t *testing.T) { killForkingTree(t, "") })
	t.Run("with-reaper", func(t *testing.T) { killForkingTree(t, "1") })
}

func killForkingTree(t *testing.T, withReaper string) {
	dir, fd := testCgroup(t)
	forker, err := filepath.Abs("testdata/forker.sh")
	if err != nil {
		t.Fatal(err)
	}
	var helperPid int
	out := runHelper(t, "kill-forker", 3*time.Minute, func(cmd *exec.Cmd) {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
		t.Cleanup(func() {
			if cmd.Process != nil {
				helperPid = cmd.Process.Pid
			}
		})
	}, "FORKER="+forker, "CGROUP_DIR="+dir, "WITH_REAPER="+withReaper)
	t.Log(strings.TrimSpace(out))
	if left := cgroupProcs(t, dir); len(left) > 0 {
		t.Errorf("processes left in the cgroup after the helper exited: %v", left)
	}
	// Walk /proc for anything that came from the helper's cgroup.
	name := "/" + filepath.Base(dir)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cgroup")
		if err == nil && strings.Contains(string(b), "0::"+name) {
			st, _ := readStat(pid)
			t.Errorf("pid %d (%+v) is still in the test cgroup (helper %d)", pid, st, helperPid)
		}
	}
}

func helperKillForker() error {
	if err := AcquireReaper(); err != nil {
		return err
	}
	if os.Getenv("WITH_REAPER") != "" {
		ctx, cancel := context.WithCancel(context.Background())
		r, err := StartReaper(ctx, ReaperConfig{Logger: discardLogger()})
		if err != nil {
			cancel()
			return err
		}
		defer r.Wait()
		defer cancel()
	}
	dir := os.Getenv("CGROUP_DIR")
	cmd := exec.Command("sh", os.Getenv("FORKER"), "3", "4")
	if err := cmd.Start(); err != nil {
		return err
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	// Let it grow: 4^3 leaves, all forking; about 150 processes.
	sessions := map[int]bool{}
	if err := waitForErr("the tree to grow", time.Minute, func() bool {
		d, _ := Descendants(os.Getpid())
		for _, pid := range d {
			if st, err := readStat(pid); err == nil && st.Session == pid {
				sessions[pid] = true
			}
		}
		return len(d) >= 100
	}); err != nil {
		return err
	}
	if len(sessions) == 0 {
		return errors.New("no setsid escapee seen in the tree")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := KillDescendants(ctx, syscall.SIGKILL)
	if err != nil {
		return fmt.Errorf("KillDescendants after %d signals: %w", n, err)
	}
	if err := <-waited; err == nil {
		return errors.New("the forker's root exited 0; want killed")
	}
	if d, err := Descendants(os.Getpid()); err != nil || len(d) > 0 {
		var sts []Stat
		for _, pid := range d {
			st, _ := readStat(pid)
			sts = append(sts, st)
		}
		return fmt.Errorf("descendants left: %+v, %w", sts, err)
	}
	if zs, err := zombieChildren(); err != nil || len(zs) > 0 {
		return fmt.Errorf("zombies left: %v, %w", zs, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return err
	}
	if got := strings.Fields(string(b)); len(got) != 1 || got[0] != strconv.Itoa(os.Getpid()) {
		return fmt.Errorf("cgroup holds %v, want only the helper %d", got, os.Getpid())
	}
	// Nothing in a session the tree created.
	for sid := range sessions {
		if err := noneInSession(sid); err != nil {
			return err
		}
	}
	fmt.Printf("signalled %d processes; %d setsid sessions seen\n", n, len(sessions))
	return nil
}

func noneInSession(sid int) error {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil && st.Session == sid {
			return fmt.Errorf("pid %d (%s) still in session %d", pid, st.Comm, sid)
		}
	}
	return nil
}

// TestKillDescendantsTerm: with a catchable signal, each process is
// signalled once; one that ignores it keeps KillDescendants waiting until
// its context ends, and a SIGKILL round finishes the job.
func TestKillDescendantsTerm(t *testing.T) {
	runHelper(t, "kill-term", 2*time.Minute, nil)
}

func helperKillTerm() error {
	if _, err := KillDescendants(context.Background(), syscall.SIGTERM); !errors.Is(err, ErrNotReaper) {
		return fmt.Errorf("KillDescendants in a non-subreaper = %w, want ErrNotReaper", err)
	}
	if err := AcquireReaper(); err != nil {
		return err
	}
	cmd := exec.Command("sh", "-c", "sleep 60 & sleep 60 & (trap '' TERM; while :; do sleep 1; done) & wait")
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	if err := waitForErr("the tree", 30*time.Second, func() bool {
		d, _ := Descendants(os.Getpid())
		return len(d) >= 5
	}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	n, err := KillDescendants(ctx, syscall.SIGTERM)
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("KillDescendants(SIGTERM) with a TERM-proof process = %d, %w; want a deadline error", n, err)
	}
	// The TERM-proof subshell and its current sleep remain (its sleeps come
	// and go).
	d, _ := Descendants(os.Getpid())
	if len(d) == 0 || n < 4 {
		return fmt.Errorf("after SIGTERM: %d signalled, %v left", n, d)
	}
	m, err := KillDescendants(context.Background(), syscall.SIGKILL)
	if err != nil || m < 1 {
		return fmt.Errorf("KillDescendants(SIGKILL) = %d, %w", m, err)
	}
	if d, _ := Descendants(os.Getpid()); len(d) > 0 {
		return fmt.Errorf("left after SIGKILL: %v", d)
	}
	return nil
}

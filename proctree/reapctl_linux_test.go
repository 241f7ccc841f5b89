package proctree

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func init() { helpers["procctl"] = helperProcctl }

func TestReaperControl(t *testing.T) {
	runHelper(t, "procctl", time.Minute, nil)
}

// helperProcctl checks procctl's semantics in a child of the test.
func helperProcctl() error {
	// Acquire, twice; release, twice.
	if err := AcquireReaper(); err != nil {
		return fmt.Errorf("first acquire: %w", err)
	}
	if err := AcquireReaper(); !errors.Is(err, ErrAlreadyReaper) {
		return fmt.Errorf("second acquire = %w, want ErrAlreadyReaper", err)
	}
	if s, err := ReaperStatus(); err != nil || !s.Acquired || s.Init {
		return fmt.Errorf("status after acquire = %+v, %w", s, err)
	}
	if err := ReleaseReaper(); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if err := ReleaseReaper(); !errors.Is(err, ErrNotReaper) {
		return fmt.Errorf("second release = %w, want ErrNotReaper", err)
	}
	s, err := ReaperStatus()
	if err != nil || s.Acquired || s.Descendants != 0 || s.Children != 0 || s.FirstPid != -1 {
		return fmt.Errorf("status of a released reaper with no children = %+v, %w", s, err)
	}
	if err := AcquireReaper(); err != nil {
		return fmt.Errorf("acquire again: %w", err)
	}

	// A known tree:  self ─┬─ a: sleep
	//                      └─ b: sh ─┬─ sleep
	//                                └─ sleep
	a := exec.Command("sleep", "60")
	b := exec.Command("sh", "-c", "sleep 61 & sleep 62 & wait")
	for _, c := range []*exec.Cmd{a, b} {
		if err := c.Start(); err != nil {
			return err
		}
		defer killWait(c)
	}
	defer func() { _, _ = KillDescendants(ctxBackground(), syscall.SIGKILL) }()
	if err := waitForErr("b's two children", 10*time.Second, func() bool {
		d, _ := Descendants(b.Process.Pid)
		return len(d) == 2
	}); err != nil {
		return err
	}
	want := ReaperState{Acquired: true, Children: 2, Descendants: 4, FirstPid: a.Process.Pid}
	if s, err := ReaperStatus(); err != nil || s != want {
		return fmt.Errorf("status of the tree = %+v, %w; want %+v", s, err, want)
	}

	// a dies but is not reaped yet (os/exec owns it): the first running
	// pid moves on to b, and a counts as a zombie.
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	if err := waitForErr("a to be a zombie", 10*time.Second, func() bool {
		st, err := readStat(a.Process.Pid)
		return err == nil && st.IsZombie()
	}); err != nil {
		return err
	}
	want = ReaperState{Acquired: true, Children: 2, Descendants: 4, Zombies: 1, FirstPid: b.Process.Pid}
	if s, err := ReaperStatus(); err != nil || s != want {
		return fmt.Errorf("status with a zombie = %+v, %w; want %+v", s, err, want)
	}
	_ = a.Wait()

	// b's shell dies: its two sleeps are orphaned onto us, the subreaper.
	if err := b.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	_ = b.Wait()
	if err := waitForErr("the orphans to be reparented", 10*time.Second, func() bool {
		s, err := ReaperStatus()
		return err == nil && s.Children == 2 && s.Descendants == 2
	}); err != nil {
		return err
	}
	if s, _ := ReaperStatus(); s.FirstPid <= 0 {
		return fmt.Errorf("status with two orphans = %+v; want a first pid", s)
	}
	n, err := KillDescendants(ctxBackground(), syscall.SIGKILL)
	if err != nil || n != 2 {
		return fmt.Errorf("KillDescendants = %d, %w; want 2", n, err)
	}
	want = ReaperState{Acquired: true, FirstPid: -1}
	if s, err := ReaperStatus(); err != nil || s != want {
		return fmt.Errorf("status after KillDescendants = %+v, %w; want %+v", s, err, want)
	}
	if os.Getpid() == 1 {
		return errors.New("helper unexpectedly PID 1")
	}
	return nil
}

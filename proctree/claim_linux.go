package proctree

import (
	"fmt"
	"sync"
)

// Claim marks a child as owned by code that will wait for it itself, so that
// neither the [Reaper] nor [KillDescendants] reaps it. Get one from
// [ClaimChild].
type Claim struct {
	pid  int
	once sync.Once
}

// ClaimChild protects a child that is started without a pidfd — by
// syscall.ForkExec, syscall.StartProcess, or C code — from the reaper. (A
// child started by os/exec needs no claim: os/exec's pidfd already marks it
// as owned.) start must start the child and return its pid, and nothing
// else: it runs with reaping paused, so that the child cannot be reaped
// between its birth and its claim, and it must not wait for a reaper or call
// KillDescendants. Release the claim after waiting for the child:
//
//	c, err := proctree.ClaimChild(func() (int, error) {
//		return syscall.ForkExec(path, argv, attr)
//	})
//	if err != nil { ... }
//	defer c.Release()
//	_, err = syscall.Wait4(c.Pid(), &ws, 0, nil)
//
// Limits: C code that forks and waits on its own (system(3), popen(3)) is
// safe only if the whole call runs inside start; a child that calls
// setsid/daemon and is reparented is no longer claimed by its pid in any
// useful way; a claim that is never released keeps the reaper on its
// slower path.
func ClaimChild(start func() (pid int, err error)) (*Claim, error) {
	reapMu.Lock()
	defer reapMu.Unlock()
	pid, err := start()
	if err != nil {
		return nil, err
	}
	if pid <= 0 {
		return nil, fmt.Errorf("proctree: claim child: start returned pid %d", pid)
	}
	claims.Lock()
	claims.m[pid]++
	claims.Unlock()
	return &Claim{pid: pid}, nil
}

// Pid returns the claimed child's pid.
func (c *Claim) Pid() int { return c.pid }

// Release ends the claim: if the child is still an unreaped zombie, the
// reaper reaps it. Release is idempotent.
func (c *Claim) Release() {
	c.once.Do(func() {
		claims.Lock()
		if claims.m[c.pid]--; claims.m[c.pid] <= 0 {
			delete(claims.m, c.pid)
		}
		claims.Unlock()
		if r := activeReaper.Load(); r != nil {
			select {
			case r.poke <- struct{}{}:
			default: // a look is already due
			}
		}
	})
}

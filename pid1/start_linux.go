package pid1

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/orphand/orphand/proctree"
)

// Init is the init duty of a Go program that is itself PID 1 (or a
// subreaper), started by [Start]: a reaper that never takes an exit status
// from os/exec, and SIGTERM/SIGINT turned into a context.
type Init struct {
	opts        Options
	role        role
	reaper      *proctree.Reaper
	stopReaper  context.CancelFunc
	ctx         context.Context
	stopSignals context.CancelFunc
}

// Start makes the calling program a well-behaved PID 1 in one call, for a
// Go program that is the init of its container itself and starts its own
// children with os/exec (go-reaper's use case, without its "Into the Woods"
// re-exec):
//
//   - outside PID 1 it becomes a child subreaper, so that orphans land on
//     it (required with Options.Subreaper, else a warning when refused);
//   - it starts proctree's reaper (proctree.StartReaper), which reaps every
//     orphan but never a child that os/exec will wait for, so exec.Cmd's
//     Wait, Run and Output keep working and report the right status;
//   - SIGTERM and SIGINT end [Init.Context]: the kernel does not apply their
//     default action to PID 1, so a program that does not handle them
//     cannot be stopped politely.
//
// End with [Init.Shutdown], after the program's own children are waited
// for. Run, not Start, is for an init that only runs one command.
func Start(ctx context.Context, opts Options) (*Init, error) {
	log := opts.logger()
	in := &Init{opts: opts}
	var err error
	if os.Getpid() != 1 {
		err = proctree.AcquireReaper()
	}
	switch {
	case os.Getpid() == 1:
		in.role = roleInit
	case err == nil || errors.Is(err, proctree.ErrAlreadyReaper):
		in.role = roleSubreaper
	case opts.Subreaper:
		return nil, fmt.Errorf("pid1: cannot become a child subreaper: %w", err)
	default:
		in.role = roleNone
		log.Warn("pid1: not PID 1 and not a child subreaper: orphans will not be re-parented to this process", "err", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	r, err := proctree.StartReaper(rctx, proctree.ReaperConfig{
		Pid:              -1,
		DisablePid1Check: in.role == roleNone,
		StatusChannel:    opts.StatusChannel,
		Logger:           log,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("pid1: %w", err)
	}
	in.reaper, in.stopReaper = r, cancel
	in.ctx, in.stopSignals = signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	return in, nil
}

// Context is done when the program should stop: SIGTERM or SIGINT arrived,
// or the context given to Start is done.
func (in *Init) Context() context.Context { return in.ctx }

// Reaper is the running reaper (for its counters).
func (in *Init) Reaper() *proctree.Reaper { return in.reaper }

// Shutdown ends every descendant still running — Options.KillSignal, then
// SIGKILL to what is left after Options.Grace (at once if ctx ends first) —
// waits until the reaper has reaped them, and stops the reaper and the
// signal handling. It returns an error when a descendant could not be
// ended before ctx was done. Call it once, last.
func (in *Init) Shutdown(ctx context.Context) error {
	defer in.stopSignals()
	defer func() {
		in.stopReaper()
		in.reaper.Wait()
	}()
	if in.role == roleNone {
		return nil // nothing but its own children is reachable; os/exec waits for those
	}
	if grace := in.opts.grace(); grace > 0 {
		gctx, cancel := context.WithTimeout(ctx, grace)
		_, err := proctree.KillDescendants(gctx, in.opts.killSignal())
		cancel()
		if err == nil {
			return nil
		}
	}
	if _, err := proctree.KillDescendants(ctx, syscall.SIGKILL); err != nil {
		return fmt.Errorf("pid1: shutdown: %w", err)
	}
	return nil
}

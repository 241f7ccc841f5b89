package pid1

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// spawn describes how CMD is started.
type spawn struct {
	path string   // the file executed (CMD, or the LISTEN_PID helper)
	argv []string // its argv
	attr syscall.ProcAttr
}

// planSpawn resolves CMD and builds everything but the cgroup: files,
// environment, process group or session, terminal.
func (s *supervisor) planSpawn(nListen int) (*spawn, error) {
	path, err := exec.LookPath(s.cfg.Args[0])
	if err != nil {
		return nil, &Error{Code: lookPathCode(err), Err: fmt.Errorf("cannot run %q: %w", s.cfg.Args[0], err)}
	}
	stdio := [3]*os.File{s.cfg.Stdin, s.cfg.Stdout, s.cfg.Stderr}
	for i, def := range [3]*os.File{os.Stdin, os.Stdout, os.Stderr} {
		if stdio[i] == nil {
			stdio[i] = def
		}
	}
	files := []uintptr{stdio[0].Fd(), stdio[1].Fd(), stdio[2].Fd()}
	for i := range nListen {
		files = append(files, uintptr(firstListenFD+i)) // stay at their numbers
	}
	env := s.cfg.Env
	if env == nil {
		env = os.Environ()
	}
	sp := &spawn{path: path, argv: s.cfg.Args}
	if nListen > 0 {
		if len(s.cfg.ListenPIDHelper) > 0 {
			env = append(withoutEnv(env, envListenPID), listenHelperOK+"=1")
			sp.path = s.cfg.ListenPIDHelper[0]
			sp.argv = append(append(append([]string{}, s.cfg.ListenPIDHelper...), path), s.cfg.Args...)
		} else {
			s.log.Warn("orphand init: socket activation received, but no helper to set LISTEN_PID for CMD: CMD will see LISTEN_PID naming init and ignore the sockets")
		}
	}
	sys := &syscall.SysProcAttr{Setsid: s.cfg.Setsid, Setpgid: !s.cfg.Setsid}
	s.planTerminal(sys, stdio[0])
	sp.attr = syscall.ProcAttr{Dir: s.cfg.Dir, Env: env, Files: files, Sys: sys}
	return sp, nil
}

// start starts CMD, straight into its cgroup when there is one. A start
// refused with the cgroup (clone3 missing, a cgroup that cannot take
// processes) is retried without it.
func (s *supervisor) start(sp *spawn) error {
	if s.cg != nil {
		sp.attr.Sys.UseCgroupFD, sp.attr.Sys.CgroupFD = true, s.cg.dirFD()
		pid, err := s.forkExec(sp)
		if err == nil {
			s.cmdPid = pid
			return nil
		}
		path := s.cg.path
		s.dropCgroup()
		sp.attr.Sys.UseCgroupFD, sp.attr.Sys.CgroupFD = false, 0
		pid, err2 := s.forkExec(sp)
		if err2 != nil {
			return err2 // CMD's fault, not the cgroup's
		}
		s.log.Info("orphand init: cannot start CMD in a cgroup of its own; going on without one", "cgroup", path, "err", err)
		s.cmdPid = pid
		return nil
	}
	pid, err := s.forkExec(sp)
	if err != nil {
		return err
	}
	s.cmdPid = pid
	return nil
}

// forkExec starts the process without keeping a pidfd for it: init reaps
// it with every other child (wait4(-1)), so there is no handle to wait on.
func (s *supervisor) forkExec(sp *spawn) (int, error) {
	pid, _, err := syscall.StartProcess(sp.path, sp.argv, &sp.attr)
	if err != nil {
		return 0, &Error{Code: execFailureCode(err), Err: fmt.Errorf("cannot run %q: %w", s.cfg.Args[0], err)}
	}
	return pid, nil
}

// lookPathCode maps a failure to find CMD to init's exit code, as a shell
// does: 127 when there is no such file, 126 when there is one that cannot
// be executed (a directory, no permission).
func lookPathCode(err error) int {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return ExitNotFound
	}
	return ExitCannotExec
}

// execFailureCode maps an error of fork/exec to init's exit code.
func execFailureCode(err error) int {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return ExitInitFailed
	}
	switch errno {
	case syscall.ENOENT, syscall.ENOTDIR:
		return ExitNotFound // CMD, or its #! interpreter, does not exist
	case syscall.EACCES, syscall.EPERM, syscall.ENOEXEC, syscall.EISDIR, syscall.ETXTBSY, syscall.ELIBBAD:
		return ExitCannotExec
	}
	return ExitInitFailed
}

package nspawn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// shutdownGrace is how long the container may take to power off after
	// the script reported its status, before it is killed.
	shutdownGrace = 30 * time.Second
	// teardownWait bounds emptying and removing the cgroup after a run.
	teardownWait = 30 * time.Second
	// tickEvery is how often the output file and the status are checked.
	tickEvery = 50 * time.Millisecond
)

// launchScript runs as the nspawn process itself before exec: it joins the
// name=systemd v1 group (the cgroup2 one it was cloned into) so that no
// process of the container is ever outside our groups, and hides the host's
// /run/systemd behind a tmpfs, where nspawn keeps per-machine state that no
// host systemd would clean up. unshare gave it a private mount namespace.
const launchScript = `set -e
if [ -n "$ORPHAND_NSPAWN_V1" ]; then echo $$ > "$ORPHAND_NSPAWN_V1/cgroup.procs"; fi
mkdir -p /run/systemd
mount -t tmpfs -o mode=0755,size=16m orphand-nspawn /run/systemd
exec "$@"
`

var sweepOnce sync.Once

// Run boots the container, runs opts.Script in it and returns the script's
// exit status. The error is non-nil (an *Error, or an invalid-options or
// setup error) only when the script did not run to its end; a failing
// script is a non-zero code with a nil error. When Run returns, every
// process it started has ended and its cgroups, mounts and files are gone.
func Run(ctx context.Context, opts Options) (exitCode int, err error) {
	binds, err := opts.validate()
	if err != nil {
		return -1, err
	}
	for _, tool := range []string{"systemd-nspawn", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			return -1, fmt.Errorf("nspawn: %s not found (apt-get install systemd-container util-linux, or make deps): %w", tool, err)
		}
	}
	log := opts.logger()
	sweepOnce.Do(func() { sweepStale(log) })
	rootfs := opts.Rootfs
	if rootfs == "" {
		if rootfs, err = Rootfs(ctx); err != nil {
			return -1, err
		}
	}
	id, err := newRunID()
	if err != nil {
		return -1, err
	}
	r := &run{opts: &opts, log: log.With("machine", id.machine()), id: id, binds: binds, rootfs: rootfs}
	return r.run(ctx)
}

// run is one boot of the container.
type run struct {
	opts    *Options
	log     *slog.Logger
	id      runID
	binds   []Bind
	rootfs  string
	dir     string      // control directory on the host
	console *tailBuffer // nspawn's stdout and stderr
}

func (r *run) run(parent context.Context) (code int, err error) {
	ctx, cancel := context.WithTimeoutCause(parent, r.opts.timeout(),
		fmt.Errorf("%w after %v (Options.Timeout): %w", ErrTimeout, r.opts.timeout(), context.DeadlineExceeded))
	defer cancel()

	r.dir = filepath.Join(os.TempDir(), r.id.group())
	if err := os.Mkdir(r.dir, 0o700); err != nil {
		return -1, fmt.Errorf("nspawn: control directory: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(r.dir); rerr != nil && err == nil {
			code, err = -1, fmt.Errorf("nspawn: remove control directory: %w", rerr)
		}
	}()
	if err := writeControl(r.dir, r.opts, r.opts.Share != ""); err != nil {
		return -1, fmt.Errorf("nspawn: write control files to %s: %w", r.dir, err)
	}
	g, err := newProcGroup(r.id.group(), true, r.dir)
	if err != nil {
		return -1, fmt.Errorf("nspawn: %w", err)
	}
	out, err := os.Open(filepath.Join(r.dir, ctlIO, ctlOutput))
	if err != nil {
		_ = g.destroy(teardownWait)
		return -1, err
	}
	defer out.Close()

	r.console = newTailBuffer(64 << 10)
	var console io.Writer = r.console
	if r.opts.Console != nil {
		console = io.MultiWriter(r.console, r.opts.Console)
	}
	cmd := exec.Command("unshare", append([]string{
		"--mount", "--propagation", "private",
		"/bin/sh", "-c", launchScript, "orphand-nspawn", "systemd-nspawn",
	}, r.nspawnArgs()...)...)
	cmd.Env = append(minimalEnv(), "ORPHAND_NSPAWN_V1="+g.v1)
	cmd.Stdout, cmd.Stderr = console, console

	began := time.Now()
	r.log.Info("nspawn: booting", "rootfs", r.rootfs, "cgroup", g.v2)
	var statusAt time.Time
	waitErr, err := runInGroup(ctx, cmd, g, tickEvery, func() bool {
		r.copyOutput(out)
		if statusAt.IsZero() {
			if _, err := os.Stat(r.statusPath()); err == nil {
				statusAt = time.Now()
			}
			return false
		}
		if time.Since(statusAt) > shutdownGrace {
			r.log.Warn("nspawn: container did not power off after the script ended; killing it", "grace", shutdownGrace)
			return true
		}
		return false
	})
	r.copyOutput(out)
	if err != nil {
		return -1, r.fail(err)
	}
	r.log.Info("nspawn: container exited", "elapsed", time.Since(began).Round(time.Millisecond), "wait", waitErr)

	code, statusErr := r.status()
	if statusErr == nil {
		if nspawnCode := exitCode(waitErr); nspawnCode != code && ctx.Err() == nil {
			r.log.Warn("nspawn: exit code differs from the script's status", "nspawn", nspawnCode, "script", code)
		}
		if code != 0 && r.opts.Output != nil {
			_, _ = fmt.Fprintf(r.opts.Output, "--- nspawn %s: script exited with status %d; container journal, last lines ---\n%s\n",
				r.id.machine(), code, r.journalTail(80, true))
		}
		return code, nil
	}
	switch {
	case ctx.Err() != nil:
		return -1, r.fail(context.Cause(ctx))
	default:
		return -1, r.fail(fmt.Errorf("container ended (%w) before the script reported a status: %w", waitErr, statusErr))
	}
}

// nspawnArgs is the systemd-nspawn command line; the package doc says why
// each flag is there.
func (r *run) nspawnArgs() []string {
	args := []string{
		"--directory=" + r.rootfs,
		"--machine=" + r.id.machine(),
		"--register=no", "--keep-unit", // no host systemd to register with
		"--boot",
		"--volatile=overlay", // throw-away writes; the cached rootfs stays clean
		"--private-network",
		"--console=read-only",
		"--link-journal=no",
		"--suppress-sync=yes",
		"--bind-ro=" + filepath.Join(r.dir, ctlUnits) + ":" + guestUnits,
		"--bind=" + filepath.Join(r.dir, ctlIO) + ":" + guestControl,
		"--bind=" + filepath.Join(r.dir, ctlJournal) + ":" + guestJournal,
	}
	for _, b := range r.binds {
		flag := "--bind="
		if b.ReadOnly {
			flag = "--bind-ro="
		}
		args = append(args, flag+b.Host+":"+b.Guest)
	}
	return args
}

// minimalEnv is nspawn's environment: nothing of the caller's leaks in.
// The unified hierarchy is forced: otherwise, on a hybrid host, the
// container copies the hybrid layout and /sys/fs/cgroup inside is a tmpfs.
func minimalEnv() []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1",
		"TERM=dumb", // passed on to the container: plain console text
		"SYSTEMD_COLORS=0",
		"LANG=C.UTF-8",
	}
}

func (r *run) statusPath() string { return filepath.Join(r.dir, ctlIO, ctlStatus) }

// status reads the exit status the wrapper wrote.
func (r *run) status() (int, error) {
	b, err := os.ReadFile(r.statusPath())
	if err != nil {
		return -1, err
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1, fmt.Errorf("status file %q: %w", b, err)
	}
	return code, nil
}

// copyOutput forwards what the script appended since the last call.
func (r *run) copyOutput(f *os.File) {
	w := r.opts.Output
	if w == nil {
		w = io.Discard
	}
	if _, err := io.Copy(w, f); err != nil {
		r.log.Warn("nspawn: forwarding script output", "err", err)
	}
}

// fail wraps err with what the container showed before it ended.
func (r *run) fail(err error) error {
	return &Error{Machine: r.id.machine(), Err: err, Console: r.console.lastLines(40), Journal: r.journalTail(60, false)}
}

// journalTail reads the last n lines of the container's persistent journal
// from the host; with toScriptEnd, the n lines up to the wrapper's "script
// exited" record, so that the shutdown which follows does not push what
// explains a failure out of the tail. It returns "" when the host has no
// journalctl or there is no journal.
func (r *run) journalTail(n int, toScriptEnd bool) string {
	jctl, err := exec.LookPath("journalctl")
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	read := n
	if toScriptEnd {
		read = 5000 // a boot plus shutdown is a few hundred lines
	}
	out, err := exec.CommandContext(ctx, jctl, "--directory="+filepath.Join(r.dir, ctlJournal), "--no-pager",
		"--no-hostname", "-o", "short-monotonic", "-n", strconv.Itoa(read)).Output()
	if err != nil {
		r.log.Debug("nspawn: journalctl", "err", err)
		return ""
	}
	if toScriptEnd {
		if i := bytes.LastIndex(out, []byte(journalMarker)); i >= 0 {
			if nl := bytes.IndexByte(out[i:], '\n'); nl >= 0 {
				out = out[:i+nl+1]
			}
		}
	}
	return string(lastLines(out, n))
}

// exitCode is the exit status in an exec.Cmd.Wait error (0 for nil).
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// preflight checks what Require needs beyond tools: a cgroup2 mount.
func preflight() error {
	_, _, err := hostCgroups()
	return err
}

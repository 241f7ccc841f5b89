// Package nspawn boots a real systemd host for orphand's tests: a Debian
// bookworm root filesystem under systemd-nspawn, with systemd 252 as PID 1
// and a system bus, started fresh for every run in a fraction of a second
// once the rootfs is cached (BenchmarkRun; figures in docs/testing.md).
//
// The machines that run the tests have no systemd as PID 1, yet the systemd
// cgroup backend (transient scopes over D-Bus), socket activation, sd_notify,
// the fd store across restarts and the real .deb/.rpm packages must be tested
// against the real thing. Run boots the container, runs one bash script in a
// service ordered after multi-user.target, streams its output and returns
// its exit status:
//
//	nspawn.Require(t) // root, tools, rootfs (built on first use), or skip
//	code, err := nspawn.Run(ctx, nspawn.Options{
//		Share:  dir,                      // at /mnt/host, read-write
//		Script: "dpkg -i /mnt/host/orphand.deb && systemctl restart orphand.socket",
//		Output: t.Output(),
//	})
//
// Most callers run Go tests inside instead: RunGoTest builds a package's
// static test binary, boots, runs it with -test.run and fails the test on a
// non-zero exit; RunSelf reruns the calling test inside, where Inside
// reports true (the script's environment has ORPHAND_IN_NSPAWN=1).
//
// # What a run guarantees
//
//   - Every run starts clean (--volatile=overlay): the cached rootfs is never
//     written, and the root is writable (dpkg -i works) until the run ends.
//   - The network is private (loopback only); parallel runs do not clash:
//     machine names, cgroups and control directories are unique per run.
//   - The whole process tree (nspawn and the container) lives in a cgroup
//     of its own under the cgroup2 mount and, on hybrid hosts, under the
//     name=systemd hierarchy. When Run returns, pass or fail, that tree has
//     been ended with cgroup.kill and the cgroups and files removed. nspawn
//     runs in a private mount namespace with a tmpfs over /run/systemd, so it
//     leaves no machine state on the host. If the test process itself is
//     killed, nspawn gets SIGKILL (Pdeathsig) and the next run removes what
//     is left (groups are named after their owner's pid and start time).
//   - Options.Timeout (default 5 minutes) bounds everything, boot included.
//   - A run that does not complete returns an *Error with the last lines of
//     the container's console and journal; a script that exits non-zero has
//     the journal's last lines written to Options.Output.
//
// # Inside the container
//
// The script runs as root with /mnt/host as its working directory (without a
// Share, /), after multi-user.target; `systemctl is-system-running --wait`
// says "running", busctl, systemd-run --scope, systemctl and journalctl work,
// and the script may restart other units. Options.Units are installed in
// /usr/local/lib/systemd/system and enabled if they have an [Install]
// section. cgroup v2 in the container has no controllers (the host keeps
// them on v1): resource limits are accepted but not enforced. The packages
// are in Packages; there is no Go toolchain and no network.
//
// # The recipe
//
// Rootfs builds the filesystem with mmdebstrap --variant=minbase from the
// mirror in the host's apt sources (or $ORPHAND_NSPAWN_MIRROR), into a cache
// directory keyed by a hash of the recipe (/var/cache/orphand-test or
// $ORPHAND_NSPAWN_CACHE), under an flock, renamed into place when complete.
// nspawn runs with SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 (else on a hybrid host
// /sys/fs/cgroup inside is a tmpfs), --register=no --keep-unit (there is no
// host systemd to register with), --boot, --volatile=overlay,
// --private-network, --console=read-only, --link-journal=no and
// --suppress-sync=yes. docs/testing.md has more for contributors.
package nspawn

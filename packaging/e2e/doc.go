// Package e2e proves orphand's packages: it builds the .deb and the .rpm
// with packaging/build.sh, checks them (lintian, rpm -K/-qlp/--scripts,
// contents, conffiles), checks that the manual pages, the default
// configuration file and the copyright file match the code, runs the
// maintainer scripts offline, checks that two builds are identical, and
// then installs the packages in a real
// systemd (a Debian bookworm container booted by internal/nspawn):
//
//   - the .deb: the socket listens after dpkg -i and the first orphanctl
//     status starts the agent; orphanctl run from a service, kill -9 of the
//     spawner, everything gone and the scope in the caller's slice; a
//     restart and an upgrade with a group registered keep the group; remove
//     stops; purge leaves no unit, file, socket, scope or cgroup behind;
//   - the .rpm (rpm -i --nodeps): the same smoke test, upgrade and erase;
//   - both without a running systemd (a chroot or image build): no failure,
//     the socket enabled for the next boot, nothing started;
//   - with ORPHAND_PKG_E2E_SUITE=1 (make e2e-package sets it): the agent's
//     own end-to-end suite under systemd (package e2e's TestSystemd)
//     against the packaged agent in its sandbox.
//
// It needs root and the tools scripts/deps.sh installs; `make e2e-package`
// and `go test ./packaging/e2e/` run it. This package holds no code outside
// its tests.
package e2e

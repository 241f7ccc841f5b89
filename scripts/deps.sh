#!/bin/sh
# Installs everything the test suite needs on a fresh Debian 12 machine:
# linters (via go install, pinned) and the Debian packages the tests and
# benchmarks drive for real. Idempotent; quiet when all is present.
set -eu

STATICCHECK_VERSION=v0.8.2 # staticcheck 2026.2.2
GOLANGCI_LINT_VERSION=v2.15.0

export PATH="$(go env GOPATH)/bin:$PATH"

gobin() { # name module@version
	if ! command -v "$1" >/dev/null 2>&1; then
		echo "deps: go install $2"
		go install "$2"
	fi
}
gobin staticcheck "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
gobin golangci-lint "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION"

# promtool checks and unit-tests contrib/prometheus's alerting rules and the
# dashboard's queries. Debian's prometheus package ships it, but installing
# that package also installs and starts a Prometheus server: only promtool
# is taken out of the package, into GOPATH/bin with the linters.
if ! command -v promtool >/dev/null 2>&1; then
	echo "deps: promtool from Debian's prometheus package"
	tmp=$(mktemp -d)
	chmod 0755 "$tmp" # apt's download sandbox (user _apt) writes there
	if ! (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1); then
		apt-get update -qq
		(cd "$tmp" && apt-get download -qq prometheus >/dev/null)
	fi
	dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool
	mkdir -p "$(go env GOPATH)/bin"
	install -m 0755 "$tmp/usr/bin/promtool" "$(go env GOPATH)/bin/promtool"
	rm -rf "$tmp"
fi

# Debian packages: real peers for tests and benchmarks.
#   tini dumb-init catatonit   -- init comparisons (benchmarks, reaper drain)
#   systemd-container mmdebstrap -- a real systemd host for e2e tests (nspawn)
#   rpm lintian                -- package checks
#   util-linux procps perl python3 -- setpriv, unshare, ps, the Perl and Python examples
#   zsh fish                   -- orphanctl's completion scripts load in their shells
#   gcc libc6-dev              -- e2e/compat compiles the original daemon's C clients
PKGS="tini dumb-init catatonit systemd-container mmdebstrap rpm lintian util-linux procps perl python3 hyperfine zsh fish gcc libc6-dev"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: missing Debian packages:$missing (run as root to install them)" >&2
		exit 1
	fi
	echo "deps: apt-get install$missing"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

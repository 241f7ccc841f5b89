#!/bin/sh
# ci-fresh.sh — the CI run a new user gets, on this machine: a clean clone of
# a commit (default HEAD), with empty Go build and module caches and an empty
# systemd-container rootfs cache, runs .ci/run exactly as CI does. With
# LOAD=N, N CPU hogs run beside it (stress-ng), as on a busy CI host.
#
# A run on a developer's machine hides what caches and an idle CPU provide:
# a warm rootfs built from an older mirror, modules already downloaded, tests
# that win their races when nothing else runs. This one does not.
#
#   scripts/ci-fresh.sh            # HEAD, no extra load
#   LOAD=2 scripts/ci-fresh.sh main
#
# Everything it makes lives under one temporary directory, removed at the end
# (KEEP=1 keeps it). Needs root, like make ci. Debian packages already
# installed stay installed: that part of a fresh machine is not reproduced.
set -eu

rev=${1:-HEAD}
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
work=$(mktemp -d /var/tmp/orphand-ci-fresh.XXXXXX)
hog=""

cleanup() {
	if [ -n "$hog" ]; then
		kill "$hog" 2>/dev/null || true
		wait "$hog" 2>/dev/null || true
	fi
	if [ "${KEEP:-0}" = 1 ]; then
		echo "ci-fresh: kept $work"
	else
		chmod -R u+w "$work" 2>/dev/null || true # the module cache is read-only
		rm -rf "$work"
	fi
}
trap cleanup EXIT INT TERM

git clone -q --no-hardlinks "$repo" "$work/src"
git -C "$work/src" checkout -q "$(git -C "$repo" rev-parse "$rev")"

# Linters installed in the usual GOPATH must not be found: drop it from PATH.
oldbin="$(go env GOPATH)/bin"
PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$oldbin" | paste -sd: -)
export GOCACHE="$work/gocache" GOMODCACHE="$work/gomodcache" GOPATH="$work/gopath" PATH
export ORPHAND_NSPAWN_CACHE="$work/nspawn"

if [ "${LOAD:-0}" -gt 0 ]; then
	command -v stress-ng >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stress-ng >/dev/null
	stress-ng --cpu "$LOAD" --quiet &
	hog=$!
fi

echo "ci-fresh: $(git -C "$work/src" log --oneline -1) in $work (LOAD=${LOAD:-0})"
start=$(date +%s)
status=0
(cd "$work/src" && ./.ci/run) || status=$?
echo "ci-fresh: .ci/run exited $status after $(($(date +%s) - start)) s"
exit "$status"

#!/bin/sh
# Builds orphand's .deb and .rpm with nfpm (pinned below):
#
#   dist/orphand_<version>_<debian-arch>.deb
#   dist/orphand-<version>.<rpm-arch>.rpm
#
# usage: packaging/build.sh [-o DIR] [-v VERSION] [-a GOARCH] [-f deb|rpm]...
#   -o DIR      where the packages go (default: dist)
#   -v VERSION  package version (default: packaging/version.sh, from git describe)
#   -a GOARCH   target architecture (default: go env GOARCH)
#   -f FORMAT   build only this format (repeatable; default: deb and rpm)
#
# It prints the paths of the packages it made, one per line, on stdout.
# Environment: GO (the go command), ORPHAND_MAINTAINER (the Maintainer field),
# SOURCE_DATE_EPOCH (file times; default: the last commit's time).
set -eu

NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2

cd "$(dirname "$0")/.."
GO=${GO:-go}
out=dist
version=""
goarch=""
formats=""
while getopts o:v:a:f: opt; do
	case $opt in
	o) out=$OPTARG ;;
	v) version=$OPTARG ;;
	a) goarch=$OPTARG ;;
	f) formats="$formats $OPTARG" ;;
	*) echo "usage: $0 [-o DIR] [-v VERSION] [-a GOARCH] [-f deb|rpm]..." >&2; exit 2 ;;
	esac
done
formats=${formats:-deb rpm}
[ -n "$version" ] || version=$(packaging/version.sh)
[ -n "$goarch" ] || goarch=$($GO env GOARCH)
printf '%s\n' "$version" | grep -Eq '^[0-9][A-Za-z0-9.+~]*$' ||
	{ echo "build.sh: \"$version\" is not a valid package version (a digit, then letters, digits, . + ~)" >&2; exit 2; }

case $goarch in
amd64) debarch=amd64 rpmarch=x86_64 ;;
arm64) debarch=arm64 rpmarch=aarch64 ;;
386) debarch=i386 rpmarch=i386 ;;
arm) debarch=armhf rpmarch=armv7hl ;;
ppc64le) debarch=ppc64el rpmarch=ppc64le ;;
s390x) debarch=s390x rpmarch=s390x ;;
riscv64) debarch=riscv64 rpmarch=riscv64 ;;
*) echo "build.sh: no package architecture known for GOARCH=$goarch" >&2; exit 2 ;;
esac

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH
date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
# The project has no mailing list yet: a reserved (.invalid) address until
# one is set here or in the environment.
ORPHAND_MAINTAINER=${ORPHAND_MAINTAINER:-orphand maintainers <maintainers@orphand.invalid>}
export ORPHAND_MAINTAINER

build=$(mktemp -d "${TMPDIR:-/tmp}/orphand-package.XXXXXX")
trap 'rm -rf "$build"' EXIT INT TERM

# The binaries: static, reproducible, the package version embedded.
ldflags="-s -w -X github.com/orphand/orphand/internal/version.Version=$version"
CGO_ENABLED=0 GOOS=linux GOARCH=$goarch $GO build -trimpath -buildvcs=false \
	-ldflags "$ldflags" -o "$build/" ./cmd/orphand ./cmd/orphand-init ./cmd/orphanctl

# Shell completions (bash, zsh, fish), from the client itself (a host build
# when cross-building).
if [ "$goarch" = "$($GO env GOHOSTARCH)" ]; then
	orphanctl="$build/orphanctl"
else
	CGO_ENABLED=0 $GO build -trimpath -buildvcs=false -o "$build/host-orphanctl" ./cmd/orphanctl
	orphanctl="$build/host-orphanctl"
fi
for shell in bash zsh fish; do
	"$orphanctl" completion "$shell" >"$build/orphanctl.$shell"
done

# Manual pages, dated by the commit; gzip -n: no name or time inside.
for page in orphand.8 orphand-init.1 orphanctl.1; do
	sed -e "s/@DATE@/$date/g" -e "s/@VERSION@/$version/g" "packaging/man/$page" |
		gzip -9n >"$build/$page.gz"
done

# Debian wants a changelog in /usr/share/doc; the project's history is git.
{
	printf 'orphand (%s) unstable; urgency=medium\n\n' "$version"
	printf '  * Built from %s.\n' "$(git rev-parse --short=12 HEAD 2>/dev/null || echo 'a source tree without git')"
	printf '    The changes are the history of https://github.com/orphand/orphand.\n\n'
	printf ' -- %s  %s\n' "$ORPHAND_MAINTAINER" \
		"$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$build/changelog.gz"

mkdir -p "$out"
export ORPHAND_VERSION="$version" ORPHAND_ARCH="$goarch" ORPHAND_BUILD="$build"
for format in $formats; do
	case $format in
	deb) target="$out/orphand_${version}_$debarch.deb" ;;
	rpm) target="$out/orphand-$version.$rpmarch.rpm" ;;
	*) echo "build.sh: unknown format \"$format\" (deb or rpm)" >&2; exit 2 ;;
	esac
	rm -f "$target"
	# go run with a version builds nfpm outside this module: its
	# dependencies never enter orphand's go.mod, and the build is cached.
	GOFLAGS= CGO_ENABLED=0 $GO run "$NFPM" package --config packaging/nfpm.yaml \
		--packager "$format" --target "$target" >&2
	printf '%s\n' "$target"
done

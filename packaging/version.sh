#!/bin/sh
# Prints the package version of the checkout (or of a given `git describe`
# output), valid for dpkg and rpm and increasing with every commit:
#
#   v1.2.3                 -> 1.2.3            a tagged release
#   v1.2.3-5-gabc1234      -> 1.2.3+5.gabc1234 5 commits after it
#   v1.3.0-rc.1            -> 1.3.0~rc.1       a pre-release sorts before 1.3.0
#   v1.3.0-rc.1-2-gabc1234 -> 1.3.0~rc.1+2.gabc1234
#   (no tag)               -> 0.0.0+N.gSHA     N = commits in the history
#   v1.2.3-dirty           -> 1.2.3+0.dirty    uncommitted changes: after the
#   v1.2.3-5-gabc1234-dirty -> 1.2.3+5.gabc1234.dirty   commit, before the next
#
# '+' and '~' compare the same way in dpkg and rpm (>= 4.10): "~" sorts
# before anything, even the end of the string; "+N" after it, by N.
#
# usage: version.sh                 the checkout's version (git describe)
#        version.sh DESCRIBE [COUNT SHA]   convert a describe output; COUNT and
#                                   SHA stand for the history when DESCRIBE
#                                   names no tag
set -eu

fail() { echo "version.sh: $*" >&2; exit 1; }

if [ $# -eq 0 ]; then
	cd "$(dirname "$0")/.."
	describe=$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null) || describe=""
	if [ -z "$describe" ]; then
		count=$(git rev-list --count HEAD) || fail "not a git checkout with commits: give the version with --version"
		sha=$(git rev-parse --short=7 HEAD)
		dirty=""
		git diff --quiet HEAD -- 2>/dev/null || dirty="-dirty"
		describe="untagged$dirty"
	fi
else
	describe=$1
	count=${2:-}
	sha=${3:-}
fi

dirty=""
case "$describe" in
*-dirty) dirty=".dirty"; describe=${describe%-dirty} ;;
esac

case "$describe" in
untagged)
	[ -n "$count" ] && [ -n "$sha" ] || fail "an untagged checkout needs COUNT and SHA"
	version="0.0.0+$count.g$sha"
	;;
v[0-9]*)
	v=${describe#v}
	# A describe of a commit after the tag ends in -<count>-g<sha>.
	after=$(printf '%s\n' "$v" | sed -n 's/^.*-\([0-9][0-9]*\)-g\([0-9a-f][0-9a-f]*\)$/\1.g\2/p')
	if [ -n "$after" ]; then
		v=$(printf '%s\n' "$v" | sed 's/-[0-9][0-9]*-g[0-9a-f][0-9a-f]*$//')
	fi
	# What is left is the tag: 1.2.3 or 1.2.3-rc.1 (a pre-release).
	base=${v%%-*}
	pre=""
	[ "$base" = "$v" ] || pre="~${v#*-}"
	version="$base$pre"
	[ -z "$after" ] || version="$version+$after"
	[ -z "$dirty" ] || [ -n "$after" ] || version="$version+0"
	;;
*)
	fail "cannot read \"$describe\": tags must look like v1.2.3 or v1.2.3-rc.1"
	;;
esac
version="$version$dirty"

# dpkg: [epoch:]upstream[-revision] with upstream [0-9][A-Za-z0-9.+~-]*;
# rpm forbids '-' in Version. So: a digit, then letters, digits, . + ~.
printf '%s\n' "$version" | grep -Eq '^[0-9][A-Za-z0-9.+~]*$' ||
	fail "\"$version\" (from \"$describe\") is not a valid package version"
printf '%s\n' "$version"

#!/bin/sh
# Counts the source files one registration passes through, from the request
# line read to the answer written (docs/ARCHITECTURE.md states the result):
# builds internal/regpath with coverage of every package of the module,
# runs it (root, cgroup v2), and lists the files whose code ran, by
# package. Run from the module root.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -covermode=atomic -coverpkg=./... -o "$tmp/regpath" ./internal/regpath
mkdir "$tmp/counters" "$tmp/exit"
# The run's own counters go to $tmp/counters; GOCOVERDIR takes the ones the
# runtime writes at exit (the whole run), which are not looked at.
GOCOVERDIR="$tmp/exit" "$tmp/regpath" "$tmp/counters"
go tool covdata textfmt -i "$tmp/counters" -o "$tmp/profile"
module=$(go list -m)
# profile lines: file:startline.col,endline.col statements count
awk -v m="$module/" 'NR > 1 && $NF > 0 { sub(/:.*/, "", $1); sub(m, "", $1); print $1 }' "$tmp/profile" | grep -v "^internal/regpath/" | sort -u >"$tmp/files"
awk '{ n = split($0, p, "/"); dir = substr($0, 1, length($0) - length(p[n]) - 1); count[dir]++; list[dir] = list[dir] " " p[n] }
	END { for (d in count) printf "%3d  %-22s%s\n", count[d], d, list[d] }' "$tmp/files" | sort -k2
echo "$(wc -l <"$tmp/files") files in all; $(grep -c '^agent/[^/]*$' "$tmp/files") in package agent"

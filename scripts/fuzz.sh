#!/bin/sh
# Runs every fuzz target in the module for the given time (default 10s each),
# or for a number of executions ("40000x": what CI uses, see the Makefile).
set -eu
t=${1:-10s}
found=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
		found=$((found + 1))
		echo "fuzz: $pkg $target ($t)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$t" "$pkg"
	done
done
echo "fuzz: $found targets"

#!/bin/sh
# forker.sh DEPTH WIDTH: a process tree that never stops forking.
# A node starts WIDTH children, each a forker of DEPTH-1, every other one
# escaping by a setsid double fork (it is reparented at once); a leaf
# (DEPTH 0) forks /bin/true in a loop, as fast as it can. The population
# stays about WIDTH^DEPTH leaves; the forking never ends until killed.
d=$1
w=$2
if [ "$d" -le 0 ]; then
	while :; do /bin/true; done
fi
i=0
while [ $i -lt "$w" ]; do
	i=$((i + 1))
	if [ $((i % 2)) -eq 0 ]; then
		(setsid sh "$0" $((d - 1)) "$w" &)
	else
		sh "$0" $((d - 1)) "$w" &
	fi
done
while :; do /bin/true; done

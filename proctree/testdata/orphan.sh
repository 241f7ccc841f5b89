#!/bin/sh
# orphan.sh CODE REAPER: prints its pid, then exits with CODE once it has
# been reparented to REAPER, so it is certainly an orphan when it dies. It
# gives up after about a minute with code 99.
echo $$
exec >/dev/null
i=0
while [ $i -lt 6000 ]; do
	read -r _ _ _ ppid _ </proc/$$/stat
	[ "$ppid" = "$2" ] && exit "$1"
	sleep 0.01
	i=$((i + 1))
done
exit 99

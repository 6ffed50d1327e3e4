#!/usr/bin/env bash
# Runs one stage of `make test` and prints how long it took; --summary prints every stage's
# duration again at the end (the figures CI's time limit is judged against).
set -u
log=${STAGE_LOG:?STAGE_LOG names the file that collects the durations}
if [ "${1:-}" = "--summary" ]; then
    echo "=== stage durations"
    [ -f "$log" ] && cat "$log"
    exit 0
fi
name=$1
shift
echo "=== stage $name: start $(date -u +%H:%M:%S)"
start=$(date +%s)
"$@"
rc=$?
line=$(printf '%-18s %5d s  (rc %d)' "$name" "$(( $(date +%s) - start ))" "$rc")
echo "=== stage $line"
echo "$line" >> "$log"
exit "$rc"

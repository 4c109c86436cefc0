#!/bin/bash
# Stop-time benchmark: applies and undoes a one-function patch REPS times
# on targets with 1, 16 and 256 threads, idle (each thread calls the
# function once a millisecond) and busy (every thread calls it in a tight
# loop), and prints the median and worst of
#   window: every thread stopped, patch going in (what the loader prints
#           as "target stopped for")
#   pause:  first thread interrupted to last thread resumed
# Usage: scripts/bench-stop.sh [BUILD_DIR] [REPS]   (defaults: build, 20)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${1:-$ROOT/build}" && pwd)/bin
REPS=${2:-20}
P=$ROOT/tests/integration/progs/hot
W=$(mktemp -d /tmp/qpatch-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT

cp -a "$P/orig" "$W/app"
make -s -C "$W/app" CC="$BIN/qpatch-cc"
"$BIN/qpatch-build" -q "$W/app" "$P/patched" -o "$W/fix.qpatch" --target "$W/app/hot" >/dev/null

stats() { # median and max of numbers on stdin
	sort -n | awk '{v[NR]=$1} END {printf "%8.0f %8.0f", v[int((NR+1)/2)], v[NR]}'
}
printf '%-7s %-5s %4s | %-17s | %-17s | %s\n' threads mode reps "window us (med max)" "pause us (med max)" "undo window med"
for mode in idle busy; do
	for n in 1 16 256; do
		"$W/app/hot" "$n" $mode >/dev/null &
		pid=$!
		sleep 0.5
		: >"$W/apply" ; : >"$W/undo"
		for _ in $(seq "$REPS"); do
			"$BIN/qpatch-load" "$pid" "$W/fix.qpatch" >>"$W/apply"
			"$BIN/qpatch-load" --undo "$pid" >>"$W/undo"
		done
		kill -9 "$pid"; wait "$pid" 2>/dev/null || true
		win=$(sed -nE 's/.*stopped for ([0-9]+) us.*/\1/p' "$W/apply" | stats)
		pause=$(sed -nE 's/.*last resume ([0-9]+) us.*/\1/p' "$W/apply" | stats)
		undo=$(sed -nE 's/.*stopped for ([0-9]+) us.*/\1/p' "$W/undo" | stats | awk '{print $1}')
		printf '%-7s %-5s %4s | %s | %s | %8s\n' "$n" "$mode" "$REPS" "$win" "$pause" "$undo"
	done
done

#!/bin/bash
# Per-call overhead of a patched function: a program calls fn() in batches
# of 20 million and prints ns per call (its thread's CPU time); the same
# work before the patch (direct call), after it (call, jump into the
# patch) and after it applied with --rewrite-calls (the call goes straight
# to the patch).  R rounds (default 5) each measure the three states in
# turn, B batches each (default 3), undoing in between; prints the medians
# of all batches per state and their ratios.  The machine is shared: the
# ratios measured in one run are the figures to quote.
# Usage: scripts/bench-call.sh [BUILD_DIR] [R] [B]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${1:-$ROOT/build}" && pwd)/bin
R=${2:-5}
N=${3:-3}
P=$ROOT/tests/integration/progs/callbench
W=$(mktemp -d /tmp/qpatch-callbench.XXXXXX)
pid=
trap 'if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; fi; rm -rf "$W"' EXIT

cp -a "$P/orig" "$W/app"
make -s -C "$W/app" CC="$BIN/qpatch-cc"
"$BIN/qpatch-build" -q "$W/app" "$P/patched" -o "$W/fix.qpatch" --target "$W/app/callbench" >/dev/null
"$W/app/callbench" >"$W/out" &
pid=$!
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
batches() { # batches STATE: wait for N more lines after the current count, note their values
	local from
	from=$(($(wc -l <"$W/out") + 2)) # skip the batch in progress
	while [ "$(wc -l <"$W/out")" -lt $((from + N - 1)) ]; do sleep 0.2; done
	sed -n "${from},$((from + N - 1))p" "$W/out" | sed "s/ns_per_call=/$1 /" >>"$W/results"
}
load() { "$BIN/qpatch-load" "$@" >/dev/null; }
for ((i = 1; i <= R; i++)); do
	batches unpatched
	load "$pid" "$W/fix.qpatch"
	batches jump
	load --undo "$pid"
	load --rewrite-calls "$pid" "$W/fix.qpatch"
	batches calls
	load --undo "$pid"
done
med() { awk -v s="$1" '$1 == s { print $2 }' "$W/results" | median; }
before=$(med unpatched) jump=$(med jump) calls=$(med calls)
printf 'unpatched:                   %s ns/call (median of %d rounds x %d batches of 20M calls)\n' \
	"$before" "$R" "$N"
printf 'patched, jump:               %s ns/call\n' "$jump"
printf 'patched, calls rewritten:    %s ns/call\n' "$calls"
awk -v a="$jump" -v c="$calls" -v b="$before" 'BEGIN {
	printf "ratio jump / unpatched:      %.3f (overhead %.3f ns/call)\n", a / b, a - b
	printf "ratio rewritten / unpatched: %.3f (overhead %.3f ns/call)\n", c / b, c - b }'

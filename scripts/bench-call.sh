#!/bin/bash
# Per-call overhead of a patched function: a program calls fn() in batches
# of 20 million and prints ns per call; the same work before the patch
# (direct call), after it (call, jump into the patch) and after it applied
# with --rewrite-calls (the call goes straight to the patch).  Prints the
# medians of N batches each (default 9) and their ratios. The machine is
# shared: the ratios measured in one run are the figures to quote.
# Usage: scripts/bench-call.sh [BUILD_DIR] [N]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${1:-$ROOT/build}" && pwd)/bin
N=${2:-9}
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
batches() { # wait for N more lines after the current count, print their values
	local from
	from=$(($(wc -l <"$W/out") + 2)) # skip the batch in progress
	while [ "$(wc -l <"$W/out")" -lt $((from + N - 1)) ]; do sleep 0.2; done
	sed -n "${from},$((from + N - 1))p" "$W/out" | sed 's/ns_per_call=//'
}
before=$(batches | median)
"$BIN/qpatch-load" "$pid" "$W/fix.qpatch" >/dev/null
jump=$(batches | median)
"$BIN/qpatch-load" --undo "$pid" >/dev/null
"$BIN/qpatch-load" --rewrite-calls "$pid" "$W/fix.qpatch" >/dev/null
calls=$(batches | median)
printf 'unpatched:                   %s ns/call (median of %d batches of 20M calls)\n' "$before" "$N"
printf 'patched, jump:               %s ns/call\n' "$jump"
printf 'patched, calls rewritten:    %s ns/call\n' "$calls"
awk -v a="$jump" -v c="$calls" -v b="$before" 'BEGIN {
	printf "ratio jump / unpatched:      %.3f (overhead %.3f ns/call)\n", a / b, a - b
	printf "ratio rewritten / unpatched: %.3f (overhead %.3f ns/call)\n", c / b, c - b }'

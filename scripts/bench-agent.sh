#!/bin/bash
# The agent against the loader: applies and undoes a one-function patch
# (tests/integration/progs/hot, work() replaced) REPS times on targets of
# 2, 16 and 64 threads, once with qpatch-load (ptrace) and once with
# qpatch-agentctl (the agent in the process), and prints the median of
#   window: every thread stopped ("target stopped for");
#   pause:  first stop to last resume;
#   wall:   the whole client run, as the shell sees it;
# and the memory the agent costs a process: VmRSS and the mapped size
# (VmSize) of the 2-thread target with and without the library preloaded.
# Usage: scripts/bench-agent.sh [BUILD_DIR] [REPS]   (defaults: build, 20)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
BIN=$BUILD/bin
SO=$BUILD/lib/libqpatch-agent.so
REPS=${2:-20}
P=$ROOT/tests/integration/progs/hot
W=$(mktemp -d /tmp/qpatch-bench-agent.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$W"' EXIT

cp -a "$P/orig" "$W/app"
make -s -C "$W/app" CC="$BIN/qpatch-cc" >/dev/null 2>&1
"$BIN/qpatch-build" -q "$W/app" "$P/patched" -o "$W/fix.qpatch" --target "$W/app/hot" >/dev/null

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : "-") }'; }
now_us() { echo $(($(date +%s%N) / 1000)); }

# run TOOL...: apply + undo REPS times; the figures of the applies
run() {
	local i t0 t1
	: >"$W/win"; : >"$W/pause"; : >"$W/wall"
	for i in $(seq "$REPS"); do
		t0=$(now_us)
		"$@" "$pid" "$W/fix.qpatch" >"$W/apply.out"
		t1=$(now_us)
		echo $((t1 - t0)) >>"$W/wall"
		sed -nE 's/.*target stopped for ([0-9]+) us.*/\1/p' "$W/apply.out" >>"$W/win"
		sed -nE 's/.*first stop to last resume ([0-9]+) us.*/\1/p' "$W/apply.out" >>"$W/pause"
		"$@" --undo "$pid" >/dev/null
	done
	printf "%-14s window %6s us   pause %6s us   wall %6s us\n" "$(basename "$1")" \
		"$(median <"$W/win")" "$(median <"$W/pause")" "$(median <"$W/wall")"
}

for n in 2 16 64; do
	echo "--- $n threads (+ the agent's), $REPS applies each"
	LD_PRELOAD=$SO "$W/app/hot" "$n" >"$W/out" 2>&1 &
	pid=$!
	sleep 0.5
	run "$BIN/qpatch-load"
	run "$BIN/qpatch-agentctl"
	kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
done

echo "--- memory of the 2-thread target"
for pre in "" "$SO"; do
	LD_PRELOAD=$pre "$W/app/hot" 2 >"$W/out" 2>&1 &
	pid=$!
	sleep 0.5
	label="without agent"
	[ -n "$pre" ] && label="with agent"
	printf "%-14s %s   %s\n" "$label" \
		"$(grep VmRSS /proc/$pid/status | tr -s ' \t' ' ')" "$(grep VmSize /proc/$pid/status | tr -s ' \t' ' ')"
	kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
done

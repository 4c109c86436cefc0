#!/bin/bash
# Cost of the search for suspended coroutines (loader/coro.c) per MiB of
# heap: tests/integration/progs/heapcoro with HC_HEAP_MB=N (N MiB of
# random bytes in 1 KiB blocks, allocated before its three coroutines,
# whose stacks are malloc'd), R applies and undoes each (default 3); per
# N prints the MiB the apply read, the search's time (the target runs
# meanwhile), its time per MiB and the window (target stopped), as the
# loader reports them, median of the R applies.
# Usage: scripts/bench-coro.sh [BUILD_DIR] [R] [N...]   (N default: 0 64 256)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${1:-$ROOT/build}" && pwd)/bin
R=${2:-3}
shift $(($# > 2 ? 2 : $#))
SIZES=("$@")
[ $# -eq 0 ] && SIZES=(0 64 256)
P=$ROOT/tests/integration/progs/heapcoro
W=$(mktemp -d /tmp/qpatch-corobench.XXXXXX)
pid=
trap 'if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; fi; rm -rf "$W"' EXIT

cp -a "$P/orig" "$W/app"
make -s -C "$W/app" CC="$BIN/qpatch-cc"
"$BIN/qpatch-build" -q "$W/app" "$P/patched" -o "$W/fix.qpatch" --target "$W/app/heapcoro" >/dev/null
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
printf '%8s %8s %10s %10s %12s %9s\n' heap_MiB read_MiB search_ms ms_per_MiB contexts window_us
for n in "${SIZES[@]}"; do
	HC_HEAP_MB=$n "$W/app/heapcoro" 1 >"$W/out" 2>&1 &
	pid=$!
	until grep -q '^1 r=1$' "$W/out"; do sleep 0.2; done
	: >"$W/runs"
	for _ in $(seq "$R"); do
		"$BIN/qpatch-load" "$pid" "$W/fix.qpatch" >"$W/load.out"
		"$BIN/qpatch-load" --undo "$pid" >/dev/null
		sed -nE 's/^coroutines: .* ([0-9]+) suspended context\(s\) found; scanned ([0-9.]+) MiB in ([0-9.]+) ms.*/\1 \2 \3/p' "$W/load.out" >"$W/c"
		w=$(sed -nE 's/^target stopped for ([0-9]+) us.*/\1/p' "$W/load.out")
		read -r ctx mib ms <"$W/c"
		echo "$mib $ms $ctx $w" >>"$W/runs"
	done
	mib=$(cut -d' ' -f1 "$W/runs" | median)
	ms=$(cut -d' ' -f2 "$W/runs" | median)
	ctx=$(cut -d' ' -f3 "$W/runs" | median)
	w=$(cut -d' ' -f4 "$W/runs" | median)
	printf '%8s %8s %10s %10.2f %12s %9s\n' "$n" "$mib" "$ms" "$(echo "$ms / ($mib + 0.001)" | bc -l)" "$ctx" "$w"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
done

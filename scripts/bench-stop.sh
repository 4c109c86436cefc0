#!/bin/bash
# Stop-time benchmark: applies and undoes a one-function patch REPS times
# on targets of 2, 16 and 256 threads (the main thread and N-1 workers),
# idle (each worker calls the function once a millisecond) and busy
# (every worker calls it in a tight loop), and prints the median and
# worst of
#   probe:  what the target felt: the longest pause seen by the in-target
#           probe (tests/bench/probe.c, a thread more in the target that
#           sleeps 100 us at a time and reports each gap over 300 us)
#           that overlaps the loader's run;
#   noise:  the same probe over a span as long as that run, right after
#           it, with no tool running (the noise floor of the machine);
#   window: every thread stopped, patch going in (what the loader prints
#           as "target stopped for");
#   pause:  first thread interrupted to last thread resumed, as the
#           loader prints it ("first stop to last resume");
#   loader wall: the whole qpatch-load run, start to exit, as the shell
#           sees it;
# for the apply (and the probe's figure for the undo).
# Usage: scripts/bench-stop.sh [BUILD_DIR] [REPS] [OTHER_BUILD_DIR]
#   (defaults: build, 20).  With OTHER_BUILD_DIR, the loader of each build
#   applies and undoes in turn on the same target, each repetition, and
#   each configuration gets a row per build ("A" the first, "B" the
#   other): a comparison made under the same load.  BENCH_MODES="idle"
#   (default "idle busy") and BENCH_THREADS="2 256" (default "2 16 256")
#   choose the configurations.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${1:-$ROOT/build}" && pwd)/bin
REPS=${2:-20}
BINS=("$BIN")
[ -n "${3:-}" ] && BINS+=("$(cd "$3" && pwd)/bin")
P=$ROOT/tests/integration/progs/hot
W=$(mktemp -d /tmp/qpatch-bench.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$W"' EXIT

# hot, with the probe started by BENCH_PROBE=1 (as tests/bench/svc does)
for v in orig patched; do
	d=$W/$v
	cp -a "$P/$v" "$d"
	cp "$ROOT/tests/bench/probe.c" "$d/"
	cat >"$d/probe_env.c" <<'C'
#include <stdlib.h>
int probe_start(void);
__attribute__((constructor)) static void probe_env(void)
{
	if (getenv("BENCH_PROBE"))
		probe_start();
}
C
	cat >"$d/Makefile" <<'M'
CC ?= cc
CFLAGS ?= -O2 -g -pthread
hot: hot.c work.c probe.c probe_env.c
	$(CC) $(CFLAGS) -c -o hot.o hot.c
	$(CC) $(CFLAGS) -c -o work.o work.c
	$(CC) $(CFLAGS) -c -o probe.o probe.c
	$(CC) $(CFLAGS) -c -o probe_env.o probe_env.c
	$(CC) $(CFLAGS) -o hot hot.o work.o probe.o probe_env.o
M
done
mv "$W/orig" "$W/app"
make -s -C "$W/app" CC="$BIN/qpatch-cc"
"$BIN/qpatch-build" -q "$W/app" "$W/patched" -o "$W/fix.qpatch" --target "$W/app/hot" >/dev/null

. "$ROOT/scripts/probe-lib.sh"
gap() { probe_gap "$W/probe" "$1" "$2"; }

echo "# $(nproc) CPUs, $REPS runs each; microseconds, median max"
printf '%-7s %-6s | %-13s | %-13s | %-13s | %-13s | %-13s | %-13s\n' threads mode \
	"probe apply" "probe undo" "noise floor" "window" "pause" "loader wall"
for mode in ${BENCH_MODES:-idle busy}; do
	for n in ${BENCH_THREADS:-2 16 256}; do
		BENCH_PROBE=1 "$W/app/hot" "$((n - 1))" $mode >"$W/probe" &
		pid=$!
		sleep 1
		for k in "${!BINS[@]}"; do
			: >"$W/apply$k"; : >"$W/undo$k"; : >"$W/ga$k"; : >"$W/gu$k"; : >"$W/gn$k"
		done
		for _ in $(seq "$REPS"); do
			for k in "${!BINS[@]}"; do
				bin=${BINS[$k]}
				t0=$(mono)
				"$bin/qpatch-load" "$pid" "$W/fix.qpatch" >>"$W/apply$k" || echo "apply failed" >&2
				t1=$(mono)
				sleep 0.05
				u0=$(mono)
				"$bin/qpatch-load" --undo "$pid" >>"$W/undo$k" || echo "undo failed" >&2
				u1=$(mono)
				sleep 0.05
				n0=$(mono)
				sleep "$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.6f", d / 1e9 }')"
				n1=$(mono)
				sleep 0.05
				echo "$t0 $t1" >>"$W/ga$k"; echo "$u0 $u1" >>"$W/gu$k"; echo "$n0 $n1" >>"$W/gn$k"
			done
		done
		sleep 0.1
		kill -9 "$pid"; wait "$pid" 2>/dev/null || true
		pid=
		for k in "${!BINS[@]}"; do
			ga=$(while read -r a b; do gap "$a" "$b"; done <"$W/ga$k" | stats)
			gu=$(while read -r a b; do gap "$a" "$b"; done <"$W/gu$k" | stats)
			gn=$(while read -r a b; do gap "$a" "$b"; done <"$W/gn$k" | stats)
			win=$(sed -nE 's/.*stopped for ([0-9]+) us.*/\1/p' "$W/apply$k" | stats)
			pause=$(sed -nE 's/.*last resume ([0-9]+) us.*/\1/p' "$W/apply$k" | stats)
			wall=$(while read -r a b; do echo $(((b - a) / 1000)); done <"$W/ga$k" | stats)
			tag=$mode
			[ ${#BINS[@]} -gt 1 ] && tag="$mode $([ "$k" -eq 0 ] && echo A || echo B)"
			printf '%-7s %-6s | %s | %s | %s | %s | %s | %s\n' "$n" "$tag" "$ga" "$gu" "$gn" \
				"$win" "$pause" "$wall"
		done
	done
done

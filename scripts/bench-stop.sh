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
# Usage: scripts/bench-stop.sh [BUILD_DIR] [REPS]   (defaults: build, 20)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${1:-$ROOT/build}" && pwd)/bin
REPS=${2:-20}
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
printf '%-7s %-4s | %-13s | %-13s | %-13s | %-13s | %-13s | %-13s\n' threads mode \
	"probe apply" "probe undo" "noise floor" "window" "pause" "loader wall"
for mode in idle busy; do
	for n in 2 16 256; do
		BENCH_PROBE=1 "$W/app/hot" "$((n - 1))" $mode >"$W/probe" &
		pid=$!
		sleep 1
		: >"$W/apply"; : >"$W/undo"; : >"$W/ga"; : >"$W/gu"; : >"$W/gn"
		for _ in $(seq "$REPS"); do
			t0=$(mono)
			"$BIN/qpatch-load" "$pid" "$W/fix.qpatch" >>"$W/apply" || echo "apply failed" >&2
			t1=$(mono)
			sleep 0.05
			u0=$(mono)
			"$BIN/qpatch-load" --undo "$pid" >>"$W/undo" || echo "undo failed" >&2
			u1=$(mono)
			sleep 0.05
			n0=$(mono)
			sleep "$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.6f", d / 1e9 }')"
			n1=$(mono)
			sleep 0.05
			echo "$t0 $t1" >>"$W/ga"; echo "$u0 $u1" >>"$W/gu"; echo "$n0 $n1" >>"$W/gn"
		done
		sleep 0.1
		kill -9 "$pid"; wait "$pid" 2>/dev/null || true
		pid=
		ga=$(while read -r a b; do gap "$a" "$b"; done <"$W/ga" | stats)
		gu=$(while read -r a b; do gap "$a" "$b"; done <"$W/gu" | stats)
		gn=$(while read -r a b; do gap "$a" "$b"; done <"$W/gn" | stats)
		win=$(sed -nE 's/.*stopped for ([0-9]+) us.*/\1/p' "$W/apply" | stats)
		pause=$(sed -nE 's/.*last resume ([0-9]+) us.*/\1/p' "$W/apply" | stats)
		wall=$(while read -r a b; do echo $(((b - a) / 1000)); done <"$W/ga" | stats)
		printf '%-7s %-4s | %s | %s | %s | %s | %s | %s\n' "$n" "$mode" "$ga" "$gu" "$gn" "$win" "$pause" "$wall"
	done
done

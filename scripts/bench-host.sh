#!/bin/bash
# Host-wide benchmark: one patch applied to N processes of a binary with
# qpatch-load --all (and undone), for several worker counts, and the time
# from a new process's exec to its patch being in place under qpatchd.
#
# PROBES of the targets run the in-target probe (tests/bench/probe.c): a
# thread that sleeps 100 us at a time and reports each gap over 300 us (a
# probe in each of 100 targets would keep two CPUs busy by itself).  A
# target's stop is the longest gap that overlaps the tool's run; the
# same measurement over a span with no tool running is the noise floor.
# Prints medians and maxima over the probed targets, and the loader's own
# figures ("window": every thread stopped; "pause": first stop to last
# resume) over all targets, from its JSON report.
#
# Usage: scripts/bench-host.sh [BUILD_DIR] [N] [STARTS] [PROBES]
#        (defaults: build, 100, 100, 8)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${1:-$ROOT/build}" && pwd)/bin
N=${2:-100}
STARTS=${3:-100}
PROBES=${4:-8}
W=$(mktemp -d /tmp/qpatch-bench-host.XXXXXX)
PIDS=()
cleanup() {
	[ ${#PIDS[@]} -gt 0 ] && kill -9 "${PIDS[@]}" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

B=$ROOT/tests/bench
cp -a "$B/svc/orig" "$W/app" && cp "$B/probe.c" "$W/app/"
cp -a "$B/svc/patched" "$W/patched" && cp "$B/probe.c" "$W/patched/"
make -s -C "$W/app" CC="$BIN/qpatch-cc"
"$BIN/qpatch-build" -q --id bench-fix "$W/app" "$W/patched" -o "$W/fix.qpatch" --target "$W/app/svc" >/dev/null

# shellcheck source=scripts/probe-lib.sh
. "$ROOT/scripts/probe-lib.sh"
# per probed target, the longest gap overlapping [T0, T1]: median and max over targets
gaps() { # gaps T0 T1
	local f
	for f in "$W"/probe.*; do probe_gap "$f" "$1" "$2"; done | stats 7
}
# median and max of a JSON field over the processes of a report
field() { # field FILE KEY
	python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
v = sorted(p[sys.argv[2]] for p in r["processes"])
print("%6.0f %7.0f" % (v[(len(v) - 1) // 2], v[-1]) if v else "     -       -")
PY
}

for i in $(seq "$N"); do
	if [ "$i" -le "$PROBES" ]; then
		BENCH_PROBE=1 "$W/app/svc" >"$W/probe.$i" 2>&1 &
	else
		"$W/app/svc" >"$W/out.$i" 2>&1 &
	fi
	PIDS+=($!)
done
for i in $(seq "$N"); do
	until grep -q ready "$W/out.$i" "$W/probe.$i" 2>/dev/null; do sleep 0.05; done
done
sleep 1

echo "== qpatch-load --all: $N processes of one binary, $PROBES of them probed (main thread + probe thread), $(nproc) CPUs"
printf '%-10s %-2s | %8s | %-14s | %-14s | %-14s | %s\n' op J "wall ms" "target stop us" \
	"window us" "pause us" "(median max)"
t0=$(mono); sleep 3; t1=$(mono)
printf '%-10s %-2s | %8s | %s | %-14s | %-14s |\n' "no tool" - 3000 "$(gaps "$t0" "$t1")" - -
for J in 1 4 8 16; do
	for op in apply undo; do
		t0=$(mono)
		if [ $op = apply ]; then
			"$BIN/qpatch-load" --all -J "$J" --json "$W/fix.qpatch" >"$W/r.json" || true
		else
			"$BIN/qpatch-load" --undo --all -J "$J" --json bench-fix >"$W/r.json" || true
		fi
		t1=$(mono)
		ok=$(python3 -c "import json,sys; s=json.load(open('$W/r.json'))['summary']; print(s.get('applied',0)+s.get('undone',0))")
		[ "$ok" -eq "$N" ] || echo "warning: only $ok of $N processes done" >&2
		printf '%-10s %-2s | %8.0f | %s | %s | %s |\n' "$op" "$J" \
			"$(python3 -c "print(($t1 - $t0) / 1e6)")" "$(gaps "$t0" "$t1")" \
			"$(field "$W/r.json" stopped_us)" "$(field "$W/r.json" pause_us)"
	done
done
{ kill -9 "${PIDS[@]}"; wait; } 2>/dev/null || true
PIDS=()

echo
echo "== qpatchd: exec of a new process to its patch in place, $STARTS starts, one at a time"
S=$W/store
"$BIN/qpatch" --store "$S" add "$W/fix.qpatch" >/dev/null
"$BIN/qpatchd" --store "$S" --rescan-ms 0 >"$W/d.log" 2>&1 &
DAEMON=$!
PIDS+=("$DAEMON")
until grep -q "start: " "$W/d.log"; do sleep 0.05; done
for i in $(seq "$STARTS"); do
	"$W/app/svc" >"$W/new.$i" 2>&1 &
	p=$!
	until grep -q "to process $p " "$W/d.log"; do sleep 0.01; done
	kill -9 "$p"; wait "$p" 2>/dev/null || true
done
kill -TERM "$DAEMON"; wait "$DAEMON" || true
PIDS=()
first_new=$(for i in $(seq "$STARTS"); do head -n 2 "$W/new.$i" | grep -c "^step=2$" || true; done | awk '{s+=$1} END {print s+0}')
grep -Eo "[0-9.]+ ms after exec" "$W/d.log" | awk '{print $1}' | sort -n |
	awk -v n="$STARTS" '{v[NR]=$1} END {printf "exec to patch in place: median %.1f ms, max %.1f ms (%d starts)\n", v[int((NR+1)/2)], v[NR], NR}'
echo "patched at their entry point: $(grep -c "at its entry point" "$W/d.log") of $STARTS"
echo "first step() call already fixed: $first_new of $STARTS"

#!/bin/bash
# The cost of a patched call on a realistic path: redis GET, whose lookup
# calls dictFind (dict.c) directly, patched with a one-line change to it.
# Debian's redis as the real-world case builds it (tests/realworld/redis.sh,
# qpatch-cc, Debian's flags, `make MALLOC=libc`), used from its cache
# (QP_RW_CACHE; run `make realworld` or tests/realworld/redis.sh first).
# One server; R rounds (default 5), each measuring GET three ways in turn:
# unpatched, patched (every call goes through dictFind's jump), patched
# with --rewrite-calls (the direct calls reach the new code), undoing in
# between.  Prints the medians of requests/s (wall clock) and of the
# server's CPU time per request (its threads' run time, steadier on a
# loaded machine), and their ratios to unpatched.  Compare the ratios of
# one run, not figures of different runs.
# Also prints the medians of qpatch-load's own figures, all-threads window
# and total time, for those applies and undos, and for R applies each the
# first in a fresh server (the first write to a page of text costs a copy
# of it); with BENCH_BASE=DIR, the same with the qpatch-load in DIR too
# (another build: before and after in one run).
# Usage: scripts/bench-calls-redis.sh [BUILD_DIR] [R]
# Environment: QP_RW_CACHE, BENCH_N (GET requests per measure, default 100000),
# BENCH_BASE.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${1:-$ROOT/build}" && pwd)/bin
R=${2:-5}
N=${BENCH_N:-100000}
CACHE=${QP_RW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qpatch-realworld}
ORIG=$(ls -d "$CACHE"/redis-*/orig 2>/dev/null | head -n 1)
[ -x "$ORIG/src/redis-server" ] || { echo "no redis build in $CACHE (run tests/realworld/redis.sh)" >&2; exit 1; }
W=$(mktemp -d /tmp/qpatch-callsredis.XXXXXX)
pid=
trap 'if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; fi; rm -rf "$W"' EXIT

# the patched tree: the original with one check added to dictFind
cp -a "$ORIG" "$W/patched"
sed -i 's|^    if (dictSize(d) == 0) return NULL; /\* dict is empty \*/|    if (d == NULL \|\| dictSize(d) == 0) return NULL; /* dict is empty */|' \
	"$W/patched/src/dict.c"
grep -q 'd == NULL || dictSize' "$W/patched/src/dict.c" || { echo "dict.c did not change" >&2; exit 1; }
"$BIN/qpatch-build" -q "$ORIG" "$W/patched" -o "$W/fix.qpatch" --binary src/redis-server --target "$ORIG/src/redis-server" \
	>"$W/build.out" 2>&1 || { cat "$W/build.out"; exit 1; }
echo "patch: $(grep -c '^  replaced' "$W/build.out") function(s) replaced: $(awk '/^  replaced/ {print $2}' "$W/build.out" | tr '\n' ' ')"

start() { # a server, as $pid on $PORT
	local k
	PORT=$((20000 + RANDOM % 20000))
	"$ORIG/src/redis-server" --port "$PORT" --save '' --appendonly no >"$W/server.out" 2>&1 &
	pid=$!
	for k in $(seq 100); do "$ORIG/src/redis-cli" -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
	"$ORIG/src/redis-cli" -p "$PORT" set key:__rand_int__ hello >/dev/null
}
stop() { kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
start

cpu_ns() { cat /proc/"$pid"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f", s }'; }
measure() { # measure STATE: one redis-benchmark GET run, into results
	local c0 c1 rps
	c0=$(cpu_ns)
	rps=$("$ORIG/src/redis-benchmark" -p "$PORT" -q -n "$N" -t get --csv |
		awk -F'"' 'NR > 1 { print $4; exit }')
	c1=$(cpu_ns)
	echo "$1 $rps $(((c1 - c0) / N))" >>"$W/results"
}
load() { "$BIN/qpatch-load" "$@" >>"$W/load.out" 2>&1 || { cat "$W/load.out"; exit 1; }; }
timed() { # timed STATE [-b] ARGS...: qpatch-load ARGS (-b: BENCH_BASE's); its window and total time
	local s=$1 loader=$BIN/qpatch-load
	shift
	[ "$1" != -b ] || { loader=$BENCH_BASE/qpatch-load; shift; }
	"$loader" "$@" >"$W/timed.out" 2>&1 || { cat "$W/timed.out"; exit 1; }
	cat "$W/timed.out" >>"$W/load.out"
	sed -n 's/^target stopped for \([0-9]*\) us.*; total \([0-9.]*\) ms$/\1 \2/p' "$W/timed.out" |
		awk -v s="$s" '{ print "load-" s, $1, $2 * 1000 }' >>"$W/results"
}
for ((i = 1; i <= R; i++)); do
	measure unpatched
	timed jump "$pid" "$W/fix.qpatch"
	measure jump
	timed undo-jump --undo "$pid"
	timed calls --rewrite-calls "$pid" "$W/fix.qpatch"
	[ "$i" -gt 1 ] || "$BIN/qpatch-load" --list "$pid" | sed -n 's/^   //p' | sed 's/^/  /'
	measure calls
	timed undo-calls --undo "$pid"
	if [ -n "${BENCH_BASE:-}" ]; then
		timed base-calls -b --rewrite-calls "$pid" "$W/fix.qpatch"
		timed base-undo-calls -b --undo "$pid"
	fi
done
stop
# the first write to a page of text makes the process a private copy of
# it: in the rounds above only the first apply paid for that; here each
# apply is the first in a fresh server
for ((i = 1; i <= R; i++)); do
	for b in '' ${BENCH_BASE:+-b}; do
		start
		timed "${b:+base-}first-calls" $b --rewrite-calls "$pid" "$W/fix.qpatch"
		load --undo "$pid"
		stop
	done
done

med() { # med STATE FIELD: the median of FIELD (2: requests/s, 3: ns/request)
	awk -v s="$1" -v f="$2" '$1 == s { print $f }' "$W/results" | sort -n |
		awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
printf 'GET, medians of %d rounds of -n %d\n' "$R" "$N"
printf '%-26s %10s %7s %16s %7s\n' state 'req/s' ratio 'CPU ns/request' ratio
for s in unpatched jump calls; do
	awk -v s="$s" -v a="$(med "$s" 2)" -v b="$(med unpatched 2)" -v c="$(med "$s" 3)" -v d="$(med unpatched 3)" \
		'BEGIN { n = s == "jump" ? "patched, jump" : s == "calls" ? "patched, calls rewritten" : s;
			 printf "%-26s %10.0f %7.3f %16.0f %7.3f\n", n, a, a / b, c, c / d }'
done
printf 'qpatch-load, medians of %d: all-threads window, total time\n' "$R"
printf '%-58s %10s %10s\n' state 'window us' 'total ms'
for s in jump undo-jump calls undo-calls first-calls ${BENCH_BASE:+base-calls base-undo-calls base-first-calls}; do
	awk -v s="$s" -v a="$(med "load-$s" 2)" -v b="$(med "load-$s" 3)" \
		'BEGIN { n = s ~ /jump/ ? "jump" : "calls rewritten";
			 n = (s ~ /undo/ ? "undo, " : "apply, ") n;
			 if (s ~ /first/) n = n ", first in the process";
			 if (s ~ /base/) n = n " (BENCH_BASE)";
			 printf "%-58s %10.0f %10.1f\n", n, a, b / 1000 }'
done

#!/bin/bash
# What -flive-patching=inline-clone (qpatch-cc's default) costs at run
# time: Debian's redis (the real-world suite's source package, Debian's
# build flags, `make MALLOC=libc`) built twice with qpatch-cc, once as is
# and once with QPATCH_CC_LIVEPATCHING=0; both servers run, and
# redis-benchmark is run against each in turn, R rounds (default 9).
# Prints, per test, the medians of each build and their ratio (with flag /
# without): requests per second (wall clock: sensitive to whatever else
# the machine runs) and the server's CPU time per request (its threads'
# run time from /proc/PID/task/*/schedstat: steadier on a loaded
# machine).  Compare the ratios of one run, not figures of different runs.
# Usage: scripts/bench-livepatching.sh [BUILD_DIR] [R]
# Environment: QP_RW_CACHE (as tests/realworld/run.sh), BENCH_N (requests
# per test, default 200000), BENCH_TESTS (default get,set,incr,lpush),
# BENCH_DIR (keep the two builds there and use them again; remove it to
# build anew).
set -uo pipefail # not -e: lib.sh tests and reports failures itself
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export QP_BIN=$(cd "${1:-$ROOT/build}" && pwd)/bin
R=${2:-9}
N=${BENCH_N:-200000}
TESTS=${BENCH_TESTS:-get,set,incr,lpush}
export QP_RW_CACHE=${QP_RW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qpatch-realworld}
W=$(mktemp -d /tmp/qpatch-lpbench.XXXXXX)
export QP_RW_OUT=$W/log
# fetch_source, unpack_source, spawn, wait_for, now_s, elapsed; rw_cleanup
# stops the servers
# shellcheck source=../tests/realworld/lib.sh
. "$ROOT/tests/realworld/lib.sh"
trap 'rw_cleanup; rm -rf "$W"' EXIT

# the two builds: in BENCH_DIR, kept and used again, when it is set
B=${BENCH_DIR:-$W}
mkdir -p "$B" && B=$(cd "$B" && pwd)
if [ ! -x "$B/lp/src/redis-server" ] || [ ! -x "$B/nolp/src/redis-server" ]; then
	fetch_source redis
	unpack_source "$SRC_DSC" "$W/src"
	[ -d "$W/src/src" ] || exit 1
fi

# build NAME [ENV...]: the tree built with qpatch-cc as the real-world case builds it
build() {
	local name=$1 t0 flag; shift
	if [ -x "$B/$name/src/redis-server" ]; then
		echo "build $name: kept from $B"
		return 0
	fi
	rm -rf "${B:?}/$name" && cp -a "$W/src" "$B/$name"
	t0=$(now_s)
	(cd "$B/$name" && export DEB_BUILD_MAINT_OPTIONS=hardening=+all &&
		env "$@" make -j2 CC="$QP_BIN/qpatch-cc" MALLOC=libc \
			CFLAGS="$(dpkg-buildflags --get CFLAGS)" CPPFLAGS="$(dpkg-buildflags --get CPPFLAGS)" \
			LDFLAGS="$(dpkg-buildflags --get LDFLAGS)") >"$B/$name.build.log" 2>&1 ||
		{ tail -n 20 "$B/$name.build.log"; exit 1; }
	flag=$(readelf --debug-dump=info "$B/$name/src/server.o" 2>/dev/null | grep -o 'flive-patching=[a-z-]*' | head -n 1)
	printf 'build %-4s %5.1f s  (server.o: %s)\n' "$name" "$(elapsed "$t0")" "${flag:-no -flive-patching}"
}
build lp
build nolp QPATCH_CC_LIVEPATCHING=0

# start NAME PORT: a server; SRV_PID_NAME its pid
start() {
	spawn "$W/$1.out" "$B/$1/src/redis-server" --port "$2" --save '' --appendonly no
	printf -v "SRV_PID_$1" %s "$SPAWNED"
	wait_for 10 "$B/$1/src/redis-cli" -p "$2" ping >/dev/null 2>&1 || { echo "redis $1 did not start"; exit 1; }
}
P1=$((20000 + RANDOM % 20000))
P2=$((P1 + 1))
start lp "$P1"
start nolp "$P2"

# cpu_ns PID: time the server's threads have run, in ns (schedstat)
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f", s }'; }

# R rounds; in each, the two builds in alternating order, every test on its
# own: requests/s as redis-benchmark measures them (wall clock, sensitive
# to the machine's other load) and the server's CPU time per request
for ((i = 1; i <= R; i++)); do
	if ((i % 2)); then order="lp:$P1 nolp:$P2"; else order="nolp:$P2 lp:$P1"; fi
	for b in $order; do
		name=${b%%:*} pidvar=SRV_PID_${b%%:*}
		for t in ${TESTS//,/ }; do
			c0=$(cpu_ns "${!pidvar}")
			rps=$("$B/lp/src/redis-benchmark" -p "${b#*:}" -q -n "$N" -t "$t" --csv |
				awk -F'"' 'NR > 1 { print $2, $4; exit }')
			c1=$(cpu_ns "${!pidvar}")
			echo "$name $rps $(((c1 - c0) / N))" >>"$W/results"
		done
	done
done

# med BUILD TEST FIELD: the median of FIELD (3: requests/s, 4: ns/request)
med() {
	awk -v b="$1" -v t="$2" -v f="$3" '$1 == b && $2 == t { print $f }' "$W/results" | sort -n |
		awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
printf 'medians of %d rounds, -n %d; with = -flive-patching=inline-clone (default), without = QPATCH_CC_LIVEPATCHING=0\n' "$R" "$N"
printf '%-8s %11s %11s %7s   %14s %14s %7s\n' test 'req/s with' without ratio 'CPU ns/req with' without ratio
for t in $(awk '{ print $2 }' "$W/results" | awk '!s[$0]++'); do
	awk -v t="$t" -v a="$(med lp "$t" 3)" -v b="$(med nolp "$t" 3)" \
		-v c="$(med lp "$t" 4)" -v d="$(med nolp "$t" 4)" \
		'BEGIN { printf "%-8s %11.0f %11.0f %7.3f   %14.0f %14.0f %7.3f\n", t, a, b, a / b, c, d, c / d }'
done
for b in lp nolp; do
	printf '%-4s redis-server: %d bytes of text\n' "$b" "$(size -A "$B/$b/src/redis-server" | awk '$1 == ".text" { print $2 }')"
done

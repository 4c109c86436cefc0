# Shared helpers for qpatch integration tests (sourced, not run).
# Each test runs real programs with the real tools from $QP_BIN.
set -u
: "${QP_BIN:?QP_BIN must point at the bin directory of a build}"
: "${QP_SRC:?QP_SRC must point at the source tree}"
QP_TMP=${QP_TMP:-/tmp}
mkdir -p "$QP_TMP"
T=$(mktemp -d "$QP_TMP/$(basename "$0" .sh).XXXXXX")
PIDS=()
PASSED=0
FAILED=0

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ "$FAILED" -eq 0 ] && rm -rf "$T"
}
trap cleanup EXIT

ok() { PASSED=$((PASSED + 1)); echo "ok: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*" >&2; }
check() { # check DESCRIPTION COMMAND...
	local what=$1; shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}
finish() {
	echo "$(basename "$0" .sh): $PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
}

# build_tree SRC DEST: copy a source tree and build it with qpatch-cc, as a
# user deploying a live-patchable program would.
build_tree() {
	cp -a "$1" "$2" && make -s -C "$2" CC="$QP_BIN/qpatch-cc" >"$2.build.log" 2>&1
}

# start OUTFILE CMD...: run a target in the background, output to OUTFILE.
start() {
	local out=$1; shift
	"$@" >"$out" 2>&1 &
	PIDS+=($!)
	TARGET_PID=$!
}

# wait_lines FILE N: wait (max 10 s) until FILE has at least N lines.
wait_lines() {
	local i
	for i in $(seq 100); do
		[ "$(wc -l <"$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# wait_state PID LETTER: wait (max 10 s) until PID's State is LETTER (T stopped, t traced, Z ended).
wait_state() {
	local i
	for i in $(seq 100); do
		grep -q "^State:[[:space:]]*$2" "/proc/$1/status" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# wait_match FILE REGEX: wait (max 10 s) until a line matches.
wait_match() {
	local i
	for i in $(seq 100); do
		grep -Eq "$2" "$1" && return 0
		sleep 0.1
	done
	return 1
}

# wait_after FILE N REGEX: wait (max 10 s) for a line after line N matching ^REGEX$.
wait_after() {
	local i
	for i in $(seq 100); do
		tail -n +"$(($2 + 1))" "$1" 2>/dev/null | grep -Eq "^($3)\$" && return 0
		sleep 0.1
	done
	return 1
}

alive() { kill -0 "$1" 2>/dev/null; }

# not COMMAND...: succeeds when COMMAND fails (for check).
not() { ! "$@"; }

# The memory map of a process: equal before and after proves that a
# refused patch left no mapping behind.
maps_of() { cat "/proc/$1/maps"; }

# thread_rates FILE FROM FACTOR: in the lines of FILE after line FROM, the
# per-thread lines "t=K count=C calls=N real=R ..." (progs tlslib, tlsdl)
# show every thread K (1..4) adding FACTOR*K per step to its counter, over
# at least one pair of lines each, and the counter the (patched) step
# returned is the one the thread's unpatched accessor reads (R = C): each
# thread reached its own copy of the thread-local variables.
thread_rates() {
	tail -n +$(($2 + 1)) "$1" | awk -v f="$3" '
		/^t=[0-9]+ count=/ {
			for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
			k = v["t"]; c = v["count"]; n = v["calls"]
			if (v["real"] != c) bad++
			if (k in lc) { if (c - lc[k] != f * k * (n - ln[k])) bad++; pairs[k]++ }
			lc[k] = c; ln[k] = n
		}
		END { for (k = 1; k <= 4; k++) if (pairs[k] < 1) bad++; exit bad != 0 }'
}

# hostile_setup: build tests/integration/progs/hostile into $T/app and its
# patch ($T/fix.qpatch: work() returns 5007 for 7 instead of 1014, hold()
# changed too); the program's control directory is $T/ctl.
hostile_setup() {
	local P=$QP_SRC/tests/integration/progs/hostile
	mkdir -p "$T/ctl"
	build_tree "$P/orig" "$T/app" || return 1
	"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" \
		--target "$T/app/hostile" >"$T/build.out" 2>&1
}

# no_qpatch_maps PID: the process maps nothing of qpatch's.
no_qpatch_maps() { ! grep -q "memfd:qpatch:" "/proc/$1/maps"; }
# refused_cmd WHAT REGEX COMMAND...: COMMAND exits 1, its output matches
# REGEX, and the memory map of $TARGET_PID is still $before
refused_cmd() {
	local what=$1 re=$2 rc; shift 2
	"$@" >"$T/r.out" 2>&1
	rc=$?
	check "$what: exit 1 (exit $rc)" test $rc -eq 1
	check "$what: says why ($(head -c 300 "$T/r.out"))" grep -Eq "$re" "$T/r.out"
	check "$what: target unchanged" test "$before" = "$(maps_of "$TARGET_PID")"
}
# qp_maps PID: how many lines of its memory map are qpatch mappings
qp_maps() { grep -c "memfd:qpatch" "/proc/$1/maps"; }

# result_is FILE VALUE: the last line the target printed since now says
# result=VALUE (waits up to 10 s for two new lines).
result_is() {
	local n
	n=$(wc -l <"$1")
	wait_lines "$1" $((n + 2)) && [ "$(grep '^result=' "$1" | tail -n 1)" = "result=$2" ]
}

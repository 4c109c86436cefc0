#!/bin/bash
# Real-world case: Debian's redis 7.0, CVE-2024-46981 (a Lua script can make
# the garbage collector free user data still used by finalizers when the
# interpreter is reset: use after free, remote code execution).  The fix
# adds one line to scriptingRelease() in src/eval.c: a full collection
# before lua_close().  scriptingRelease is inlined into its callers.
#
# bookworm ships the fix as debian/patches/0001-Fix-LUA-garbage-collector-
# CVE-2024-46981-1513.patch: the patched tree is the package as shipped, the
# original tree is the same with that patch reverted.  Built with Debian's
# compiler flags (dpkg-buildflags, hardening=+all as debian/rules asks) but
# a minimal configuration: `make MALLOC=libc` (bundled Lua, no jemalloc, no
# TLS, no systemd).
#
# redis-server runs with 100000 keys; 4 clients stay connected sending INCR
# and redis-benchmark loads it (20 connections) while the patch goes in; the
# probe (redis/probe.lua + SCRIPT FLUSH) shows the order in which Lua
# finalizers run when the interpreter is reset, which the fix changes.
# Under soak.sh (docs/soak.md) the fix is then applied and undone 1000 more
# times before the final checks.
. "$(dirname "$0")/lib.sh"

PKG=redis
CVE="CVE-2024-46981"
ROW_PROGRAM=$PKG
ROW_FIX="$CVE (eval.c)"
BUILD_CMD=$RW_REDIS_BUILD_CMD
NCLIENTS=4
NKEYS=100000
# soak (soak.sh): cycles; redis-benchmark without LPUSH, which grows one
# list without end, so that the dataset's size levels off and the RSS can
# be compared; the growth of what redis counts itself (used_memory) is
# subtracted, and what remains may be half a page per cycle (a page a
# cycle left behind would exceed it), at least 1 MiB (the C library's
# allocator under load: 400 kB over 1000 cycles here)
SOAK_N=${QP_RW_SOAK_N:-1000}
SOAK_RSS_BOUND_KB=$((SOAK_N * 2 > 1024 ? SOAK_N * 2 : 1024))
soak_enabled && RL_TESTS=set,get,incr,hset
soak_alive() { kill -0 "$PID" 2>/dev/null && kill -0 "$BPID" 2>/dev/null; }
SOAK_ALIVE=soak_alive
redis_used_kb() { rcli info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p' | awk '{ print int($1 / 1024) }'; }
SOAK_ACCOUNTED=redis_used_kb

step fetch
fetch_case $PKG

step prepare
if [ ! -f "$D/patched.prepared" ]; then
	unpack_source "$SRC_DSC" "$D/patched"
	FIXP=$(debian_patch "$D/patched" 46981) || die "no debian/patches file for $CVE in $PKG $VER"
	cp "$FIXP" "$D/fix.patch"
	touch "$D/patched.prepared"
fi
say "fix: $(basename "$(debian_patch "$D/patched" 46981)")"
make_orig() {
	cp -a "$D/patched" "$1" &&
		patch -d "$1" -R -p1 -s <"$D/fix.patch" || die "cannot revert the fix"
}

step "deploy build"
deploy_build "$D/orig" "$BUILD_CMD" make_orig
CLI=$D/orig/src/redis-cli
BENCH=$D/orig/src/redis-benchmark

probe_logged() { [ "$(grep -c "qpatch-probe $1 " "$LOGFILE")" -eq 2 ]; }

# probe TAG: EVAL the probe and SCRIPT FLUSH; PROBE is "reachable first"
# (lua_close finalizes everything: the original code) or "unreachable
# first" (a collection ran before lua_close: the fix).  If the garbage was
# collected before SCRIPT FLUSH (Lua's incremental collector), try again.
probe() {
	local tag try first
	PROBE=""
	for try in 1 2 3 4 5; do
		tag=$1.$try
		[ "$(rcli eval "$(cat "$RW_HERE/redis/probe.lua")" 0 "$tag")" = "$tag" ] || return 1
		grep -q "qpatch-probe $tag " "$LOGFILE" && continue
		[ "$(rcli script flush)" = OK ] || return 1
		wait_for 10 probe_logged "$tag" || return 1
		first=$(grep -m1 "qpatch-probe $tag " "$LOGFILE" | awk '{ print $NF }')
		PROBE="$first first"
		return 0
	done
	return 1
}

step reference
# The fixed build is only made by qpatch-build (below), so first check the
# probe on the original build: a fresh server must answer "reachable first".
start_redis "$D/orig/src/redis-server" ref-orig
probe ref || die "probe failed on the original build: $(tail -n3 "$LOGFILE")"
[ "$PROBE" = "reachable first" ] || die "the original build answers '$PROBE' to the probe"
stop_pid "$PID"

step start
start_redis "$D/orig/src/redis-server" live
redis_fill $NKEYS
probe before || die "probe failed: $(tail -n3 "$LOGFILE")"
P0=$PROBE
say "pid $PID, port $PORT: $N0 keys, digest $DIG0, probe: $P0"
[ "$P0" = "reachable first" ] || die "the live server answers '$P0' to the probe before the patch"

step load
redis_load_start $NCLIENTS "$RW_LOG/live"
sleep 1

step qpatch-build
qp_build "$D/orig" "$D/patched" "$RW_LOG/fix.qpatch" src/redis-server "$BUILD_CMD"

step "reference (fixed build)"
LIVE=("$PID" "$PORT" "$LOGFILE")
REFBIN=$(ref_bin src/redis-server) || die "no fixed build in qpatch-build's work directory '$RW_WORK'"
start_redis "$REFBIN" ref-fixed
probe ref || die "probe failed on the fixed build: $(tail -n3 "$LOGFILE")"
PFIX=$PROBE
stop_pid "$PID"
PID=${LIVE[0]} PORT=${LIVE[1]} LOGFILE=${LIVE[2]}
say "fixed build answers '$PFIX'"
[ "$PFIX" != "$P0" ] || die "the probe does not tell the fixed build from the original ('$P0')"

step qpatch-load
expect "redis-benchmark still running" kill -0 "$BPID"
soak_enabled && soak_before "$PID"
qp_load "$PID" "$RW_LOG/fix.qpatch"
ID=$(patch_id "$RW_LOG/fix.qpatch")
expect "patch $ID listed in the process" qp_listed "$PID" "$ID"

step "fixed code runs"
probe after || die "probe failed after the patch: $(tail -n3 "$LOGFILE")"
P1=$PROBE
say "probe: $P1"
[ "$P1" = "$PFIX" ] || die "after the patch the probe gives '$P1', the fixed build '$PFIX' (before: '$P0')"
expect "redis-benchmark still running" kill -0 "$BPID"
sleep 1

step undo
qp_undo "$PID"
expect "no patch left in the process" qp_none "$PID"
probe undone || die "probe failed after undo: $(tail -n3 "$LOGFILE")"
P2=$PROBE
say "probe: $P2"
[ "$P2" = "$P0" ] || die "after undo the probe gives '$P2', before the patch '$P0'"

if soak_enabled; then
	step soak
	soak_cycles "$PID" "$RW_LOG/fix.qpatch" "$ID" "$SOAK_N"
	soak_after "$PID"
	probe soaked || die "probe failed after the soak: $(tail -n3 "$LOGFILE")"
	say "probe: $PROBE"
	[ "$PROBE" = "$P0" ] || SOAK_BAD="${SOAK_BAD:+$SOAK_BAD; }after the soak the probe gives '$PROBE', before '$P0'"
	[ "$SOAK_AFAIL$SOAK_UFAIL" = 00 ] && [ "$SOAK_DONE" = "$SOAK_N" ] ||
		SOAK_BAD="${SOAK_BAD:+$SOAK_BAD; }$SOAK_DONE of $SOAK_N cycles, $SOAK_AFAIL applies and $SOAK_UFAIL undos failed"
	if [ -n "$SOAK_BAD" ]; then
		soak_row "**FAIL**: $SOAK_BAD"
		die "soak: $SOAK_BAD"
	fi
fi

step "nothing lost"
redis_load_check

step stop
rcli shutdown nosave >/dev/null 2>&1
wait "$PID" 2>/dev/null
ROW_RESULT="ok: probe '$P0' → '$P1' (as the fixed build) → undo → '$P2'; $NCLIENTS clients ($REPLIES INCRs) + redis-benchmark (~$BRPS req/s) connected throughout, 0 errors, $N1 keys and digest unchanged"
row_write
soak_enabled && soak_row "ok: probe '$PROBE' after; $NCLIENTS clients, $REPLIES INCR replies, each one more than the last, 0 errors, 0 lost; redis-benchmark ~$BRPS req/s throughout, 0 errors; $N1 keys and digest unchanged"
say "$ROW_RESULT"

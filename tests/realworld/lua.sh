#!/bin/bash
# Real-world case: Debian's lua5.4, CVE-2022-33099 ("Lua-stack overflow when
# C stack overflows while handling an error"), fixed upstream by "Save stack
# space while handling errors" (ldebug.c luaG_runerror, lvm.c luaV_concat,
# whose body GCC splits off as luaV_concat.part.0).
#
# bookworm ships the fix as debian/patches/0005-cve-2022-33099.patch: the
# patched tree is the package as shipped, the original tree is the same with
# that patch reverted.  Built with the upstream Makefile (`make linux`, the
# Debian libtool build-system patch reverted) and Debian's compiler flags.
#
# A long-running interpreter (lua/server.lua) works all the time on the code
# the fix touches and answers commands; the probe shows the stack slots a
# runtime error leaves in the failing frame: one fewer with the fix.
. "$(dirname "$0")/lib.sh"

PKG=lua5.4
CVE="CVE-2022-33099"
ROW_PROGRAM=$PKG
ROW_FIX="$CVE (ldebug.c, lvm.c)"
BUILD_CMD=$RW_LUA_BUILD_CMD

step fetch
fetch_case $PKG

lua_deploy
lua_start

step qpatch-build
qp_build "$D/orig" "$D/patched" "$RW_LOG/fix.qpatch" src/lua "$BUILD_CMD"
# What the fixed build answers, for comparison: qpatch-build's patched tree.
lua_ref_answer || die "no fixed build in qpatch-build's work directory '$RW_WORK'"
[ -n "$PFIX" ] && [ "$PFIX" != "$P0" ] ||
	die "the probe does not tell the fixed build ('$PFIX') from the original ('$P0')"

step qpatch-load
expect "interpreter busy before the patch" kill -0 "$PID"
qp_load "$PID" "$RW_LOG/fix.qpatch"
ID=$(patch_id "$RW_LOG/fix.qpatch")
expect "patch $ID listed in the process" qp_listed "$PID" "$ID"

step "fixed code runs"
lua_sample "stopped answering after the patch"
P1=$P S1=$S
say "probe '$P1', $S1"
[ "$P1" = "$PFIX" ] || die "after the patch the probe gives '$P1', the fixed build '$PFIX' (before: '$P0')"

expect "nothing lost: work went on, every error caught, state intact" lua_stats_ok "$S0" "$S1"

step undo
qp_undo "$PID"
expect "no patch left in the process" qp_none "$PID"
lua_sample "stopped answering after undo"
P2=$P S2=$S
say "probe '$P2', $S2"
[ "$P2" = "$P0" ] || die "after undo the probe gives '$P2', before the patch '$P0'"
expect "nothing lost after undo" lua_stats_ok "$S1" "$S2"

lua_stop
ROW_RESULT="ok: probe $P0 → $P1 (as the fixed build) → undo → $P2; $ITER iterations of the busy loop, no error lost, state intact"
row_write
say "$ROW_RESULT"

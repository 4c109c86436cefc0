#!/bin/bash
# Real-world case: the lua5.4 fix of lua.sh (CVE-2022-33099), written by
# hand as a shared library and applied with "qpatch-load --so": the
# ldebug.c half of the fix (luaG_runerror pops the message it formatted),
# lua/fix_cve_2022_33099.c, compiled with a plain cc against the tree's
# headers; the interpreter's internal functions it calls come through
# QPATCH_SYM.  Same deployed build, server and probe as lua.sh: the probe
# must show one stack slot fewer for both errors, as the fixed build does.
# The library is built with -g, so the loader also compares its
# replacement's prototype with luaG_runerror's (DWARF of both).
. "$(dirname "$0")/lib.sh"

PKG=lua5.4
CVE="CVE-2022-33099"
ROW_PROGRAM=$PKG
ROW_FIX="$CVE by hand as a .so (ldebug.c half)"
BUILD_CMD=$RW_LUA_BUILD_CMD

step fetch
fetch_case $PKG

lua_deploy
lua_start

step "build the .so"
SO=$RW_LOG/fix_cve_2022_33099.so
t0=$(now_s)
cc -shared -fPIC -O2 -g -Wall -Wextra -DLUA_COMPAT_5_3 -DLUA_USE_LINUX -I"$D/orig/src" \
	-I"$RW_HERE/../../format/include" -o "$SO" "$RW_HERE/lua/fix_cve_2022_33099.c" \
	>"$RW_LOG/cc.log" 2>&1 || die "cc failed: $(head -n3 "$RW_LOG/cc.log")"
ROW_BUILD="cc $(elapsed "$t0") s"
ROW_FUNCS="1: luaG_runerror"
ROW_SIZE="$(stat -c %s "$SO") B (.so)"
# one slot fewer for each error, as the fix intends; and what the fixed build
# answers, when lua.sh left one in qpatch-build's work directory
want=$(awk -F'[= ]' '{ printf "arith=%d concat=%d", $2 - 1, $4 - 1 }' <<<"$P0")
if lua_ref_answer; then
	[ "$PFIX" = "$want" ] || die "the fixed build answers '$PFIX', not '$want'"
fi

step "qpatch-load --so"
qp_load --verbose --so "$SO" "$PID"
out=$RW_LOG/qpatch-load.log
# both built with -g (the deployed build with Debian's CFLAGS): the
# replacement's prototype was compared with luaG_runerror's
expect "the replacement has luaG_runerror's prototype (type check)" \
	grep -q "^type check: 1 replacement(s) have the old function's prototype" "$out"
expect "the library is listed in the process" qp_listed "$PID" "$(basename "$SO")"
expect "the library is mapped" grep -q " $SO\$" "/proc/$PID/maps"

step "fixed code runs"
lua_sample "stopped answering after the patch"
P1=$P S1=$S
say "probe '$P1', $S1"
[ "$P1" = "$want" ] || die "after the patch the probe gives '$P1', not '$want' (before: '$P0')"
expect "nothing lost: work went on, every error caught, state intact" lua_stats_ok "$S0" "$S1"

step undo
qp_undo "$PID"
expect "no patch left in the process" qp_none "$PID"
expect "the library is unloaded" sh -c "! grep -q ' $SO\$' /proc/$PID/maps"
lua_sample "stopped answering after undo"
P2=$P S2=$S
say "probe '$P2', $S2"
[ "$P2" = "$P0" ] || die "after undo the probe gives '$P2', before the patch '$P0'"
expect "nothing lost after undo" lua_stats_ok "$S1" "$S2"

lua_stop
ROW_RESULT="ok: probe $P0 → $P1 (one slot fewer each, as the fixed build) → undo, library unloaded → $P2; $ITER iterations of the busy loop, no error lost, state intact"
row_write
say "$ROW_RESULT"

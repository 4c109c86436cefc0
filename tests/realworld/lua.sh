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

step prepare
if [ ! -f "$D/patched.prepared" ]; then
	unpack_source "$SRC_DSC" "$D/patched"
	FIXP=$(debian_patch "$D/patched" 33099) || die "no debian/patches file for $CVE in $PKG $VER"
	BSP=$(debian_patch "$D/patched" build-system) || die "no build-system patch in $PKG $VER"
	patch -d "$D/patched" -R -p1 -s <"$BSP" || die "cannot revert $(basename "$BSP")"
	lua_multiarch_h "$D/patched"
	cp "$FIXP" "$D/fix.patch"
	touch "$D/patched.prepared"
fi
say "fix: $(basename "$(debian_patch "$D/patched" 33099)")"
make_orig() {
	cp -a "$D/patched" "$1" &&
		patch -d "$1" -R -p1 -s <"$D/fix.patch" || die "cannot revert the fix"
}

step "deploy build"
deploy_build "$D/orig" "$BUILD_CMD" make_orig
LUA=$D/orig/src/lua

step start
RUN=$RW_LOG/run
rm -rf "$RUN" && mkdir -p "$RUN"
spawn "$RW_LOG/server.out" "$LUA" "$RW_HERE/lua/server.lua" "$RUN"
PID=$SPAWNED
lua_cmd probe || die "interpreter does not answer: $(cat "$RW_LOG/server.out")"
P0=$OUT
lua_cmd stats || die "interpreter does not answer"
S0=$OUT
say "pid $PID: probe '$P0', $S0"

step qpatch-build
qp_build "$D/orig" "$D/patched" "$RW_LOG/fix.qpatch" src/lua "$BUILD_CMD"
# What the fixed build answers, for comparison: qpatch-build's patched tree.
REF=$RW_LOG/ref
rm -rf "$REF" && mkdir -p "$REF"
echo probe >"$REF/cmd.1" && echo quit >"$REF/cmd.2"
REFBIN=$(ref_bin src/lua) || die "no fixed build in qpatch-build's work directory '$RW_WORK'"
timeout 60 "$REFBIN" "$RW_HERE/lua/server.lua" "$REF" >"$RW_LOG/ref.out" 2>&1
PFIX=$(cat "$REF/out.1" 2>/dev/null)
say "fixed build answers '$PFIX'"
[ -n "$PFIX" ] && [ "$PFIX" != "$P0" ] ||
	die "the probe does not tell the fixed build ('$PFIX') from the original ('$P0')"

step qpatch-load
expect "interpreter busy before the patch" kill -0 "$PID"
qp_load "$PID" "$RW_LOG/fix.qpatch"
ID=$(patch_id "$RW_LOG/fix.qpatch")
expect "patch $ID listed in the process" qp_listed "$PID" "$ID"

step "fixed code runs"
lua_cmd probe || die "interpreter stopped answering after the patch: $(cat "$RW_LOG/server.out")"
P1=$OUT
lua_cmd stats || die "interpreter stopped answering"
S1=$OUT
say "probe '$P1', $S1"
[ "$P1" = "$PFIX" ] || die "after the patch the probe gives '$P1', the fixed build '$PFIX' (before: '$P0')"

expect "nothing lost: work went on, every error caught, state intact" lua_stats_ok "$S0" "$S1"

step undo
qp_undo "$PID"
expect "no patch left in the process" qp_none "$PID"
lua_cmd probe || die "interpreter stopped answering after undo: $(cat "$RW_LOG/server.out")"
P2=$OUT
lua_cmd stats || die "interpreter stopped answering"
S2=$OUT
say "probe '$P2', $S2"
[ "$P2" = "$P0" ] || die "after undo the probe gives '$P2', before the patch '$P0'"
expect "nothing lost after undo" lua_stats_ok "$S1" "$S2"

step stop
lua_cmd quit
wait "$PID"
rc=$?
[ $rc -eq 0 ] || die "interpreter exited with status $rc: $(cat "$RW_LOG/server.out")"
ITER=$(sed 's/.*iter=\([0-9]*\).*/\1/' <<<"$S2")
ROW_RESULT="ok: probe $P0 → $P1 (as the fixed build) → undo → $P2; $ITER iterations of the busy loop, no error lost, state intact"
row_write
say "$ROW_RESULT"

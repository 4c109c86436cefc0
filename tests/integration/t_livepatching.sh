#!/bin/bash
# qpatch-cc compiles with -flive-patching=inline-clone, so a fix to a
# function leaves its callers' code alone.  Fixture loopcaller: main loops
# forever calling mix(); the fix makes mix() use more registers.  By
# default only mix is replaced and the patch applies to the running
# program.  With QPATCH_CC_LIVEPATCHING=0 (deployed build and patch alike)
# gcc's -fipa-ra had main keep a value in a register the old mix() left
# alone, so main changes too, and the patch can never be applied: the
# thread always returns into main.  The flag is also left out where gcc
# would reject it (-flto) and for a compiler that does not know it.
. "$(dirname "$0")/lib.sh"

FIX=$QP_SRC/tests/fixtures/diff/loopcaller
CC=$QP_BIN/qpatch-cc

# build_app DIR: the fixture's orig program, built with qpatch-cc.
build_app() {
	cp -a "$FIX/orig" "$1" && cp "$QP_SRC/tests/integration/corpus.mk" "$1/Makefile" &&
		make -s -C "$1" CC="$CC" >"$1.build.log" 2>&1
}

# one_way NAME: build, start, patch and load; leaves $w/build.out, $w/load.out.
one_way() {
	w=$T/$1
	mkdir -p "$w"
	build_app "$w/app" || { fail "$1: build the program"; return 1; }
	start "$w/out" "$w/app/prog"
	pid=$TARGET_PID
	check "$1: prints mix=1010" wait_match "$w/out" '^mix=1010$'
	"$QP_BIN/qpatch-build" -q "$w/app" "$FIX/patched" -o "$w/fix.qpatch" --target "$w/app/prog" \
		>"$w/build.out" 2>&1
	check "$1: patch built" test -s "$w/fix.qpatch"
	"$QP_BIN/qpatch-load" "$pid" "$w/fix.qpatch" >"$w/load.out" 2>&1
	load_rc=$?
}

# the default: only the callee changes, the patch applies
one_way default
check "default: objects compiled with -flive-patching=inline-clone" \
	sh -c "readelf --debug-dump=info '$w/app/main.o' | grep -q 'DW_AT_producer.*-flive-patching=inline-clone'"
check "default: mix replaced" grep -Eq 'replaced +mix ' "$w/build.out"
check "default: main not in the patch" not grep -Eq ' main ' "$w/build.out"
check "default: applied" test "$load_rc" -eq 0
check "default: then prints mix=1245" wait_match "$w/out" '^mix=1245$'
check "default: still running" alive "$pid"
[ "$FAILED" -gt 0 ] && sed 's/^/  default: /' "$w/build.out" "$w/load.out"
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null

# opted out: the caller changes with its callee, and never leaves
export QPATCH_CC_LIVEPATCHING=0
one_way optout
check "opt-out: no -flive-patching in the objects" \
	sh -c "! readelf --debug-dump=info '$w/app/main.o' | grep -q 'live-patching'"
check "opt-out: mix replaced" grep -Eq 'replaced +mix ' "$w/build.out"
check "opt-out: main replaced too" grep -Eq 'replaced +main ' "$w/build.out"
check "opt-out: refused" test "$load_rc" -ne 0
check "opt-out: the thread will return into main" grep -q "will return into 'main'" "$w/load.out"
check "opt-out: still prints mix=1010" wait_match "$w/out" '^mix=1010$'
check "opt-out: never mix=1245" not grep -q '^mix=1245$' "$w/out"
[ "$FAILED" -gt 0 ] && sed 's/^/  opt-out: /' "$w/build.out" "$w/load.out"
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
unset QPATCH_CC_LIVEPATCHING

# a deployed build and a patch build with different settings: the original
# rebuilt from a clean tree is not the deployed binary, and --target says so
w=$T/mixed
mkdir -p "$w"
build_app "$w/app" && cp "$w/app/prog" "$w/deployed"
rm -rf "$w/app/"*.o "$w/app/prog"
QPATCH_CC_LIVEPATCHING=0 "$QP_BIN/qpatch-build" -q "$w/app" "$FIX/patched" -o "$w/fix.qpatch" \
	--target "$w/deployed" >"$w/build.out" 2>&1
check "mixed settings: qpatch-build refuses" test $? -ne 0
check "mixed settings: no patch" test ! -e "$w/fix.qpatch"
check "mixed settings: the deployed binary is not what the tree builds" \
	grep -q "is not what the original tree builds" "$w/build.out"
[ "$FAILED" -gt 0 ] && sed 's/^/  mixed: /' "$w/build.out"

# where gcc would reject it the flag is left out, and builds still work
cd "$T" || exit 1
printf 'int f(int x) { return x + 1; }\n' >f.c
check "-flto: compiles (no -flive-patching added)" "$CC" -O2 -flto -c f.c -o lto.o
check "-fipa-ra given: compiles" "$CC" -O2 -fipa-ra -c f.c -o ra.o
check "-flive-patching=inline-only-static given: kept, compiles" \
	"$CC" -O2 -g -flive-patching=inline-only-static -c f.c -o st.o
check "  and it is the one in force" \
	sh -c "readelf --debug-dump=info st.o | grep 'DW_AT_producer' | grep -q 'inline-only-static' &&
	       ! readelf --debug-dump=info st.o | grep -q 'inline-clone'"
if command -v clang >/dev/null; then
	check "clang: compiles (clang has no -flive-patching)" \
		env QPATCH_REAL_CC=clang "$CC" -O2 -c f.c -o clang.o
	check "clang: no warning about the flag" \
		sh -c "QPATCH_REAL_CC=clang '$CC' -O2 -c f.c -o clang.o 2>&1 | grep -q live; test \$? -ne 0"
fi
finish

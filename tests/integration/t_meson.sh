#!/bin/bash
# A meson project built as QEMU is: configured with meson in build/ inside
# the tree (CC=qpatch-cc CXX=qpatch-c++), its debug info naming the sources
# "../src/calc.c" relative to build/, its C objects linked by the C++
# driver.  The fix in compute() moves the assert of checked() down two
# lines: qpatch-build reads the sources where the debug info says they
# are (the compilation directory joined with the name) and leaves
# checked() out as "line only"; it learns from qpatch-c++ which objects
# the program is linked from; the patch applies live.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/meson
for c in meson ninja c++; do
	command -v "$c" >/dev/null || { fail "$c not installed (scripts/install-deps.sh)"; finish; exit 1; }
done
cp -a "$P/orig" "$T/app"
(cd "$T/app" && CC="$QP_BIN/qpatch-cc" CXX="$QP_BIN/qpatch-c++" meson setup build &&
	ninja -C build) >"$T/deploy.log" 2>&1 || { fail "deploy build"; finish; exit 1; }
check "debug info names ../src/calc.c" \
	sh -c "readelf --debug-dump=info '$T/app/build/mesonapp' | grep -q 'DW_AT_name.*: \.\./src/calc\.c'"
check "linked by the C++ driver" grep -q "^build mesonapp: cpp_LINKER " "$T/app/build/build.ninja"
check "which is qpatch-c++" sh -c "grep -A1 '^rule cpp_LINKER' '$T/app/build/build.ninja' | grep -q 'qpatch-c++'"
start "$T/out" "$T/app/build/mesonapp"
check "target prints" wait_match "$T/out" "^compute\(.*\)=[0-9]+ checked="

"$QP_BIN/qpatch-build" "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/build/mesonapp" \
	--build-cmd 'ninja -C build' --binary build/mesonapp -w "$T/work" >"$T/build.out" 2>&1
check "patch built" test $? -eq 0
check "compute replaced" grep -Eq "^ +replaced +compute " "$T/build.out"
check "checked: line only (its assert moved 13->15)" \
	grep -Eq "^ +line only +checked .*only __LINE__ values moved: 13->15" "$T/build.out"
check "checked not replaced" not grep -Eq "^ +replaced +checked " "$T/build.out"
check "the link set is known (linked by qpatch-c++)" not grep -q "no link of" "$T/build.out"
check "same build-id as the deployed program" not grep -q "only debug info differs" "$T/build.out"

n=$(wc -l <"$T/out")
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/load.out" 2>&1
check "applied" test $? -eq 0
check "new code runs" sh -c "sleep 0.3; tail -n +$((n + 2)) '$T/out' | grep -Eq '=[0-9]*1[0-9]{6} checked='"
"$QP_BIN/qpatch-load" --undo "$TARGET_PID" >"$T/undo.out" 2>&1
check "undone" test $? -eq 0

# linked by the plain C++ compiler, the link is not seen
cp -a "$P/orig" "$T/plain"
(cd "$T/plain" && CC="$QP_BIN/qpatch-cc" CXX=c++ meson setup build && ninja -C build) \
	>"$T/plain.log" 2>&1 || fail "build with plain c++"
"$QP_BIN/qpatch-build" "$T/plain" "$P/patched" -o "$T/fix2.qpatch" --build-cmd 'ninja -C build' \
	--binary build/mesonapp >"$T/build2.out" 2>&1
check "plain c++: no link of the program seen" grep -q "no link of 'build/mesonapp' seen" "$T/build2.out"
finish

#!/bin/bash
# A CMake project, deployed from an out-of-tree build directory: the patch
# is built with --build-cmd running CMake in qpatch-build's own tree.  The
# deployed binary's debug info names its build directory, so its build-id
# differs from qpatch-build's; the loaded sections are identical, which is
# what is checked, and the patch carries the deployed build-id.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/cmake
cp -a "$P/orig" "$T/src"
CC="$QP_BIN/qpatch-cc" cmake -S "$T/src" -B "$T/deploy" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$T/deploy.log" 2>&1 &&
	cmake --build "$T/deploy" >>"$T/deploy.log" 2>&1
check "deployed build" test -x "$T/deploy/cmakeapp"
start "$T/out" "$T/deploy/cmakeapp"
check "target prints" wait_lines "$T/out" 3
"$QP_BIN/qpatch-build" "$T/src" "$P/patched" -o "$T/fix.qpatch" --target "$T/deploy/cmakeapp" \
	--build-cmd 'cmake -S . -B _build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build _build' \
	--binary _build/cmakeapp >"$T/build.out" 2>&1
check "patch built from the CMake project" grep -Eq "replaced +compute" "$T/build.out"
check "code checked, not the build-id" grep -q "only debug info differs" "$T/build.out"
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/load.out" 2>&1
check "applied" test $? -eq 0
check "new code runs" wait_match "$T/out" "=[0-9]*1000[0-9]{3}$"
# a deployed binary built differently (-O0) is refused, naming what differs
CC="$QP_BIN/qpatch-cc" cmake -S "$T/src" -B "$T/deploy0" -DCMAKE_BUILD_TYPE=Debug >"$T/deploy0.log" 2>&1 &&
	cmake --build "$T/deploy0" >>"$T/deploy0.log" 2>&1
"$QP_BIN/qpatch-build" "$T/src" "$P/patched" -o "$T/fix0.qpatch" --target "$T/deploy0/cmakeapp" \
	--build-cmd 'cmake -S . -B _build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build _build' \
	--binary _build/cmakeapp >"$T/build0.out" 2>&1
check "a binary built with other flags is refused" grep -q "is not what the original tree builds.*differs in" "$T/build0.out"
check "and no patch written" test ! -e "$T/fix0.qpatch"
finish

#!/bin/bash
# A fix that adds a source file (and changes the Makefile to build it), in
# a tree whose build compiles and deletes a probe object each time: the
# new file's function goes into the patch and the changed caller uses it.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/newfile
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
start "$T/out" "$T/app/app"
check "target prints" wait_lines "$T/out" 3
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/app" >"$T/build.out" 2>&1
check "compute replaced" grep -Eq "replaced +compute" "$T/build.out"
check "clamp from the new file" grep -Eq "new function +clamp .*clamp.o" "$T/build.out"
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/load.out" 2>&1
check "applied" test $? -eq 0
check "clamped results" wait_match "$T/out" "^compute\([0-9]+\)=100$"
finish

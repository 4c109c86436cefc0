#!/bin/bash
# Patching a shared library loaded by a running program: the target object
# is the library (found by its build-id), its statics keep their values.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/shlib
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
start "$T/out" "$T/app/app"
check "target prints" wait_lines "$T/out" 3
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --binary libgreet.so \
	--target "$T/app/libgreet.so" >"$T/build.out" 2>&1
check "greet replaced in the library" grep -Eq "replaced +greet" "$T/build.out"
check "patch targets the library" sh -c "'$QP_BIN/qpatch-dump' '$T/fix.qpatch' | grep -q \"target: *'libgreet.so'\""
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/load.out" 2>&1
check "applied" test $? -eq 0
check "new code runs" wait_match "$T/out" "HELLO #"
line=$(grep -m1 "HELLO #" "$T/out")
n=$(echo "$line" | sed -E 's/^([0-9]+) .*/\1/')
total=$(echo "$line" | sed -E 's/.*total ([0-9]+)\).*/\1/')
check "library state kept (total $total at call $n)" test "$total" -eq "$n"
check "library global read through the GOT" sh -c "echo '$line' | grep -q 'style 1'"
"$QP_BIN/qpatch-load" --undo "$TARGET_PID" >"$T/undo.out" 2>&1
check "undone" test $? -eq 0
n=$(wc -l <"$T/out")
wait_lines "$T/out" $((n + 2))
check "old code again" sh -c "tail -n 1 '$T/out' | grep -q 'hello #'"
finish

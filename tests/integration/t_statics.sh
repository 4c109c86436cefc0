#!/bin/bash
# Function-scope statics renumbered by the fix ("count.0" of one function
# becomes "count.1"): the patch must keep using each function's own
# variable in the running process, not a namesake and not a fresh copy.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/statics
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
start "$T/out" "$T/app/statics"
check "target prints" wait_lines "$T/out" 3
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/statics" >"$T/build.out" 2>&1
check "tick_b replaced" grep -Eq "replaced +tick_b" "$T/build.out"
check "tick_a untouched" sh -c "! grep -q tick_a '$T/build.out'"
check "the new function's static is a new variable" grep -Eq "new variable +count" "$T/build.out"
field() { echo "$1" | sed -E "s/.*$2=([0-9]+).*/\1/"; }
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/load.out" 2>&1
check "applied" test $? -eq 0
check "new code runs" wait_match "$T/out" "b=10[0-9]{5}$"
first=$(grep -m1 -E "b=10[0-9]{5}$" "$T/out")
prev=$(grep -B1 -m1 -E "b=10[0-9]{5}$" "$T/out" | head -n 1)
a=$(field "$first" a)
b=$(( $(field "$first" b) - 1000000 ))
check "tick_b's own count continues ($(field "$prev" b) -> $b)" test "$b" -eq $(( $(field "$prev" b) + 2 ))
check "tick_a's count untouched ($a)" test "$a" -eq $(( $(field "$prev" a) + 1 ))
check "tick_b's count is not tick_a's ($b vs $a)" test "$b" -gt 1000
finish

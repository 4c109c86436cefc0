#!/bin/bash
# A thread inside the cold part of a function being replaced (compute.cold,
# where gcc moves unlikely branches): it will jump back into the old body,
# so the patch must wait for it like for a thread in the function itself.
# The builder marks the old cold part (QP_R_BUSY); the loader refuses while
# the thread is there, naming it, and applies once it left.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/coldbusy
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
nm "$T/app/coldbusy" | grep -q ' compute\.cold$' || { fail "gcc made no compute.cold here"; finish; exit 1; }
touch "$T/hold"
start "$T/out" "$T/app/coldbusy" "$T/hold"
check "target prints" wait_match "$T/out" "^compute=18$"
check "worker blocked in the slow path" wait_match "$T/out" "slow path -1"

"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/coldbusy" >"$T/build.out" 2>&1
check "patch built" test $? -eq 0
"$QP_BIN/qpatch-dump" "$T/fix.qpatch" >"$T/dump.out" 2>&1
check "the old cold part is marked (QP_R_BUSY)" grep -q "compute.cold: also checked idle, part of compute" "$T/dump.out"

maps_of "$TARGET_PID" >"$T/maps.before"
"$QP_BIN/qpatch-load" -r 10 -d 10 "$TARGET_PID" "$T/fix.qpatch" >"$T/busy.out" 2>&1
check "refused while the worker is in compute.cold" test $? -eq 1
check "names the cold part" grep -q "will return into 'compute.cold'" "$T/busy.out"
check "maps unchanged" diff -q <(maps_of "$TARGET_PID") "$T/maps.before"
check "old code still runs" test "$(tail -n1 "$T/out")" = "compute=18"

rm -f "$T/hold"
check "worker left" wait_match "$T/out" "^worker -20$"
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/load.out" 2>&1
check "applied once it left" test $? -eq 0
check "new code runs" wait_match "$T/out" "^compute=180$"
finish

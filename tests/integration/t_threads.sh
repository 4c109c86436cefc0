#!/bin/bash
# A target whose threads call the patched function millions of times per
# second while it is patched and unpatched: every thread must switch, the
# counters keep counting, nothing crashes.  Thread count: $QP_THREADS (64).
. "$(dirname "$0")/lib.sh"

N=${QP_THREADS:-64}
P=$QP_SRC/tests/integration/progs/hot
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
start "$T/out" "$T/app/hot" "$N"
check "target runs with $N threads" wait_match "$T/out" "^result=1000 last=[0-9]+ calls=[1-9]"
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/hot" >"$T/build.out" 2>&1
check "patch built" grep -Eq "replaced +work" "$T/build.out"

calls_of() { tail -n 1 "$T/out" | sed -E 's/.*calls=([0-9]+).*/\1/'; }
before=$(calls_of)
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/load.out" 2>&1
check "applied while hot" test $? -eq 0
check "every thread stopped ($((N + 1)))" grep -q "all $((N + 1)) threads" "$T/load.out"
n=$(wc -l <"$T/out")
wait_lines "$T/out" $((n + 3))
last=$(tail -n 1 "$T/out")
exp_last=$(( ((N - 1) * 2654435761 % 1000) + 5000 ))
check "first thread runs new code" sh -c "echo '$last' | grep -q '^result=5000 '"
check "last thread runs new code ($exp_last)" sh -c "echo '$last' | grep -q 'last=$exp_last '"
check "calls keep counting" test "$(calls_of)" -gt "$before"

"$QP_BIN/qpatch-load" --undo "$TARGET_PID" >"$T/undo.out" 2>&1
check "undone while hot" test $? -eq 0
n=$(wc -l <"$T/out")
wait_lines "$T/out" $((n + 3))
check "old code again" sh -c "tail -n 1 '$T/out' | grep -q '^result=1000 '"
check "target alive" alive "$TARGET_PID"
for i in 1 2 3; do
	"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >>"$T/cycle.out" 2>&1 &&
		"$QP_BIN/qpatch-load" --undo "$TARGET_PID" >>"$T/cycle.out" 2>&1 || fail "cycle $i"
done
check "three more apply/undo cycles" alive "$TARGET_PID"
check "no mapping left" sh -c "! grep -q memfd:qpatch: /proc/$TARGET_PID/maps"
finish

#!/bin/bash
# What is done with every thread stopped, and what with one thread held:
# the patch is mapped, written and protected while the other threads run
# (the loader paused after step 5 holds one thread, and the mapping is
# there, its record "pending"); the jumps go in with every thread stopped
# (paused after step 6, all are).
. "$(dirname "$0")/lib.sh"

N=4
P=$QP_SRC/tests/integration/progs/hot
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
start "$T/out" "$T/app/hot" "$N"
PID=$TARGET_PID
check "target runs with $N workers" wait_match "$T/out" "^result=1000 last=[0-9]+ calls=[1-9]"
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/hot" >"$T/build.out" 2>&1
check "patch built" grep -Eq "replaced +work" "$T/build.out"

# how many threads of the target are in a tracing stop
traced() { cat /proc/$PID/task/*/stat | awk '{ sub(/.*\) /, ""); if ($1 == "t") n++ } END { print n + 0 }'; }

QPATCH_PAUSE_AT=5 "$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/p5.out" 2>&1 &
loader=$!
check "loader pauses after step 5 (patch protected)" wait_state "$loader" T
check "one thread held while the patch is prepared (got $(traced))" test "$(traced)" -eq 1
check "the mapping is there already" grep -q "memfd:qpatch:" "/proc/$PID/maps"
"$QP_BIN/qpatch-load" --list "$PID" >"$T/list5.out" 2>&1
check "listed as being applied" grep -q "being applied, no jump yet" "$T/list5.out"
check "old code still runs" sh -c "tail -n 1 '$T/out' | grep -q '^result=1000 '"
kill -CONT "$loader"
wait "$loader"
check "applied" test $? -eq 0
n=$(wc -l <"$T/out")
wait_lines "$T/out" $((n + 2))
check "new code runs" sh -c "tail -n 1 '$T/out' | grep -q '^result=5000 '"
check "the loader says how long one thread was held" grep -Eq "one thread held [0-9]+ us" "$T/p5.out"
"$QP_BIN/qpatch-load" --list "$PID" >"$T/list.out" 2>&1
check "listed as applied" sh -c "grep -q \"patch '\" '$T/list.out' && ! grep -q 'being applied' '$T/list.out'"
"$QP_BIN/qpatch-load" --undo "$PID" >"$T/undo.out" 2>&1
check "undone" test $? -eq 0

QPATCH_PAUSE_AT=6 "$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/p6.out" 2>&1 &
loader=$!
check "loader pauses after step 6 (all threads stopped)" wait_state "$loader" T
check "every thread stopped for the jumps (got $(traced) of $((N + 1)))" test "$(traced)" -eq $((N + 1))
kill -CONT "$loader"
wait "$loader"
check "applied" test $? -eq 0
"$QP_BIN/qpatch-load" --undo "$PID" >"$T/undo2.out" 2>&1
check "undone again" test $? -eq 0
check "no mapping left" sh -c "! grep -q memfd:qpatch: /proc/$PID/maps"
finish

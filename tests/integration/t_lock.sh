#!/bin/bash
# One loader per process at a time: a second one (apply, undo, --all) is
# refused at once naming the first, or waits for it with --lock-wait; the
# lock dies with its holder (kill -9), and the pending mapping a killed
# loader left is listed as abandoned and removed by the next loader.
. "$(dirname "$0")/lib.sh"

hostile_setup || { fail "build the program and its patch"; finish; exit 1; }
start "$T/out" "$T/app/hostile" "$T/ctl"
PID=$TARGET_PID
check "target runs" wait_match "$T/out" "^result=1014$"
# patch mappings (each has several lines, one per protection; one at offset 0)
count_maps() { awk '/memfd:qpatch:/ && $3 == "00000000"' "/proc/$PID/maps" | wc -l; }

# --- a loader holds the process (paused with the mapping prepared)
QPATCH_PAUSE_AT=5 "$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/a.out" 2>&1 &
A=$!
check "first loader pauses holding the process" wait_state "$A" T
"$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/b.out" 2>&1
check "second apply refused at once" test $? -eq 1
check "it names the first loader ($(cat "$T/b.out"))" \
	grep -q "process $PID is being worked on by another loader (process $A, 'qpatch-load'): --lock-wait MS waits for it" "$T/b.out"
"$QP_BIN/qpatch-load" --undo "$PID" >"$T/bu.out" 2>&1
check "an undo too" grep -q "being worked on by another loader (process $A," "$T/bu.out"
"$QP_BIN/qpatch-load" --all "$T/fix.qpatch" >"$T/ball.out" 2>&1
check "and --all ($(grep "process $PID" "$T/ball.out"))" \
	grep -q "process $PID (hostile): refused: .*another loader (process $A," "$T/ball.out"
check "one mapping only (the first loader's)" test "$(count_maps)" -eq 1
"$QP_BIN/qpatch-load" --list "$PID" >"$T/list1.out" 2>&1
check "listed as being applied (its loader lives)" grep -q "(being applied, no jump yet)" "$T/list1.out"
"$QP_BIN/qpatch-load" --lock-wait 20000 --undo "$PID" >"$T/wait.out" 2>&1 &
W=$!
sleep 0.5
check "an undo with --lock-wait waits" alive "$W"
kill -CONT "$A"
wait "$A"
check "first loader applied" test $? -eq 0
wait "$W"
check "the waiting undo then ran ($(cat "$T/wait.out"))" test $? -eq 0
check "after the apply" grep -q "undid the last patch of process $PID" "$T/wait.out"
check "old code runs" result_is "$T/out" 1014
check "no mapping left" no_qpatch_maps "$PID"

# --- the holder killed: the lock goes with it.  Killed where every thread
# is stopped (step 6): the mapping is there, pending, no jump yet.  (While
# one thread is held for a system call its registers are the loader's:
# a loader killed then takes the target with it, see loader.md.)
QPATCH_PAUSE_AT=6 "$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/k.out" 2>&1 &
K=$!
check "a loader pauses holding the process" wait_state "$K" T
kill -9 "$K"
wait "$K" 2>/dev/null
check "target survives its loader's death" result_is "$T/out" 1014
"$QP_BIN/qpatch-load" --list "$PID" >"$T/list2.out" 2>&1
check "its mapping is listed as abandoned ($(head -n 1 "$T/list2.out"))" \
	grep -q "(abandoned, never applied: no loader is applying it" "$T/list2.out"
"$QP_BIN/qpatch-load" --list --json "$PID" >"$T/list2.json" 2>&1
check "in JSON too" grep -q '"state":"abandoned"' "$T/list2.json"
"$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/next.out" 2>&1
check "the next loader proceeds ($(head -n 1 "$T/next.out"))" test $? -eq 0
check "new code runs" result_is "$T/out" 5014
check "the abandoned mapping was removed" test "$(count_maps)" -eq 1
"$QP_BIN/qpatch-load" --list "$PID" >"$T/list3.out" 2>&1
check "one patch listed, applied" sh -c "test \$(grep -Ec \"^[0-9]+\\. patch '\" '$T/list3.out') -eq 1 && ! grep -q abandoned '$T/list3.out'"
check "the apply said it removed the abandoned one" grep -q "note: removed 1 mapping(s) of patches never applied" "$T/next.out"
"$QP_BIN/qpatch-load" --undo "$PID" >"$T/undo2.out" 2>&1
check "undone" test $? -eq 0
check "no mapping left" no_qpatch_maps "$PID"

# --- two loaders started together: one applies, the other is refused
# naming it (or, if it came after, finds the patch applied)
"$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/t1.out" 2>&1 & T1=$!
"$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/t2.out" 2>&1 & T2=$!
wait "$T1"; r1=$?
wait "$T2"; r2=$?
check "exactly one applied ($r1, $r2)" test $((r1 + r2)) -eq 1
if [ "$r1" -eq 1 ]; then loser=$T/t1.out; winner=$T2; else loser=$T/t2.out; winner=$T1; fi
check "the other says why ($(cat "$loser"))" \
	grep -Eq "another loader \(process $winner, |patch '.*' is already applied" "$loser"
check "one mapping" test "$(count_maps)" -eq 1
check "new code runs" result_is "$T/out" 5014
check "no lock file left" sh -c "! ls /run/qpatch/$PID-* 2>/dev/null | grep -q ."
check "target alive" alive "$PID"
finish

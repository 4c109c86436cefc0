#!/bin/bash
# Threads made and ended in a storm while the target is stopped: 4 threads
# create and join threads in a loop.  Each apply must account for every
# thread: paused where every thread is stopped (step 6), every task of the
# process is in a tracing stop (none left running in the window, none
# created meanwhile); the apply and the undo succeed, or are refused with
# a reason, and the target lives on.
. "$(dirname "$0")/lib.sh"

hostile_setup || { fail "build the program and its patch"; finish; exit 1; }
start "$T/out" "$T/app/hostile" "$T/ctl" storm 4
PID=$TARGET_PID
check "target runs with the storm" wait_match "$T/out" "^result=1014$"
# tasks of the target not in a tracing stop (t), and how many there are
running() { cat /proc/$PID/task/*/stat 2>/dev/null | awk '{ sub(/.*\) /, ""); if ($1 != "t") n++ } END { print n + 0 }'; }
tasks() { ls /proc/$PID/task | wc -l; }
ok_runs=0
for round in 1 2 3 4 5; do
	QPATCH_PAUSE_AT=6 "$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/a$round.out" 2>&1 &
	L=$!
	if wait_state "$L" T; then
		r=$(running); n=$(tasks)
		check "round $round: every one of the $n tasks stopped in the window ($r running)" test "$r" -eq 0
		sleep 0.2
		check "round $round: no task made or ended meanwhile" test "$(tasks)" -eq "$n"
		kill -CONT "$L"
	fi
	wait "$L"; rc=$?
	if [ "$rc" -eq 0 ]; then
		ok_runs=$((ok_runs + 1))
		check "round $round: new code runs" result_is "$T/out" 5014
		"$QP_BIN/qpatch-load" --undo "$PID" >"$T/u$round.out" 2>&1
		check "round $round: undone ($(tail -n 1 "$T/u$round.out"))" test $? -eq 0
	else
		check "round $round: refused with a reason ($(tail -n 1 "$T/a$round.out"))" \
			grep -q "left unchanged" "$T/a$round.out"
	fi
	check "round $round: no mapping left" no_qpatch_maps "$PID"
	check "round $round: target alive" alive "$PID"
done
check "applied in most rounds ($ok_runs of 5)" test "$ok_runs" -ge 3
check "the storm goes on afterwards ($(tasks) tasks)" test "$(tasks)" -ge 6
check "old code runs at the end" result_is "$T/out" 1014
finish

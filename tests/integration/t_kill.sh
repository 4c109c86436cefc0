#!/bin/bash
# The target dies while the loader works on it: killed with SIGKILL at each
# step of applying and of undoing (the loader pauses itself there,
# QPATCH_PAUSE_AT, so the kill lands exactly between two steps), and a
# target that exits by itself while the loader waits for a busy thread.
# The loader must say what happened, exit 1, and never hang.
. "$(dirname "$0")/lib.sh"

EX=$QP_SRC/examples/ledger
build_tree "$EX/orig" "$T/app" || { fail "build the example"; finish; exit 1; }
"$QP_BIN/qpatch-build" -q "$T/app" "$EX/patched" -o "$T/fix.qpatch" --target "$T/app/ledger" >"$T/build.out" 2>&1
check "patch built" test -s "$T/fix.qpatch"

# wait_gone PID SECONDS: PID ends within SECONDS
wait_gone() {
	local i
	for i in $(seq $(($2 * 10))); do alive "$1" || return 0; sleep 0.1; done
	return 1
}
# kill_at STEP [undo [PROGRAM PATCH]]: the loader pauses after STEP; the
# target is killed there; the loader goes on and must report it.
kill_at() {
	local step=$1 mode=${2:-apply} prog=${3:-$T/app/ledger 10} patch=${4:-$T/fix.qpatch}
	local out="$T/k$1$mode$(basename "$patch").out" loader rc seen=$1
	# with this one-function patch, nothing touches the target between
	# "first jump written" and "all jumps written" (and the same for undo):
	# the loader may report the next step as the last one it reached
	[ "$step" = 7 ] || [ "$step" = 12 ] && seen="($step|$((step + 1)))"
	: >"$out.target"
	start "$out.target" $prog
	wait_lines "$out.target" 2
	if [ "$mode" = undo ]; then
		"$QP_BIN/qpatch-load" "$TARGET_PID" "$patch" >/dev/null 2>&1
		QPATCH_PAUSE_AT=$step "$QP_BIN/qpatch-load" --undo "$TARGET_PID" >"$out" 2>&1 &
	else
		QPATCH_PAUSE_AT=$step "$QP_BIN/qpatch-load" "$TARGET_PID" "$patch" >"$out" 2>&1 &
	fi
	loader=$!
	check "$mode: loader pauses after step $step" wait_state "$loader" T
	check "$mode: it said where" grep -q "paused after step $step" "$out"
	kill -KILL "$TARGET_PID"
	check "$mode: target ended at step $step" wait_state "$TARGET_PID" Z
	kill -CONT "$loader"
	check "$mode: loader ends after the kill at step $step (no hang)" wait_gone "$loader" 20
	alive "$loader" && kill -KILL "$loader"
	wait "$loader"
	rc=$?
	check "$mode: exit status 1 after the kill at step $step (got $rc)" test "$rc" -eq 1
	check "$mode: reports the death at step $step" grep -Eq \
		"process $TARGET_PID was killed by signal 9 \(Killed\) while (being patched|its patch was being undone), after step $seen " "$out"
	check "$mode: does not claim the target unchanged" sh -c "! grep -q 'left unchanged' '$out'"
	wait "$TARGET_PID" 2>/dev/null
}

for step in 1 2 3 4 5 6 7 8; do kill_at $step; done
for step in 11 12 13; do kill_at $step undo; done

# The same with five threads: the loader traces all of them, and the
# kernel reports the killed leader only once the others' ends are
# collected (unit test test_proc covers that wait directly).
P=$QP_SRC/tests/integration/progs/tls
build_tree "$P/orig" "$T/tls" || { fail "build tlsprog"; finish; exit 1; }
"$QP_BIN/qpatch-build" -q "$T/tls" "$P/patched" -o "$T/tls.qpatch" --target "$T/tls/tlsprog" >/dev/null 2>&1
for step in 1 2 5; do kill_at $step apply "$T/tls/tlsprog" "$T/tls.qpatch"; done
kill_at 11 undo "$T/tls/tlsprog" "$T/tls.qpatch"

# A target that exits by itself while the loader retries (its only thread
# is inside the function to replace until it exits, from a timer's signal
# handler, after 1.5 s).
P=$QP_SRC/tests/integration/progs/hold
build_tree "$P/orig" "$T/hold" || { fail "build hold"; finish; exit 1; }
"$QP_BIN/qpatch-build" -q "$T/hold" "$P/patched" -o "$T/hold.qpatch" --target "$T/hold/hold" >/dev/null 2>&1
: >"$T/hold.out"
start "$T/hold.out" "$T/hold/hold" 3600000000 7
check "hold ready" wait_match "$T/hold.out" ready
"$QP_BIN/qpatch-load" -r 100000 -d 10 "$TARGET_PID" "$T/hold.qpatch" >"$T/exit.out" 2>&1 &
loader=$!
check "loader ends once the target exited (no hang)" wait_gone "$loader" 20
alive "$loader" && kill -KILL "$loader"
wait "$loader"
rc=$?
wait "$TARGET_PID"
check "the target exited by itself with status 7" test $? -eq 7
check "exit status 1 (got $rc)" test "$rc" -eq 1
check "reports that the target ended" grep -Eq "process $TARGET_PID (exited|ended|went away)" "$T/exit.out"
finish

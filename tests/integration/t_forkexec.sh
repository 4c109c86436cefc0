#!/bin/bash
# The target forks or calls execve() while it is being patched (the loader
# paused after step 5: the mapping made and written, its record pending,
# one thread held, the others running).
#  - fork: the parent is patched; the child inherits a pending record no
#    loader will finish: --list in the child says it is abandoned, never
#    applied; the child runs the old code; the next apply (or undo) there
#    removes the mapping.
#  - execve: the loader says so and fails; the new program is untouched.
. "$(dirname "$0")/lib.sh"

hostile_setup || { fail "build the program and its patch"; finish; exit 1; }
start "$T/out" "$T/app/hostile" "$T/ctl"
PID=$TARGET_PID
check "target runs" wait_match "$T/out" "^result=1014$"

# fork_during_apply: apply to $PID, the target forking while the loader is
# paused after step 5; CHILD is the child's pid.
fork_during_apply() {
	rm -f "$T/ctl/child.pid" "$T/ctl/child.out"
	QPATCH_PAUSE_AT=5 "$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/fork$1.out" 2>&1 &
	local L=$!
	check "fork $1: loader paused with the mapping prepared" wait_state "$L" T
	touch "$T/ctl/fork"
	check "fork $1: the target forked" sh -c "for i in \$(seq 100); do [ -s '$T/ctl/child.pid' ] && exit 0; sleep 0.1; done; exit 1"
	CHILD=$(cat "$T/ctl/child.pid")
	PIDS+=($CHILD)
	kill -CONT "$L"
	wait "$L"
	check "fork $1: the parent is patched" test $? -eq 0
	check "fork $1: the child has the inherited mapping" grep -q "memfd:qpatch:" "/proc/$CHILD/maps"
	"$QP_BIN/qpatch-load" --list "$CHILD" >"$T/clist$1.out" 2>&1
	check "fork $1: --list in the child: abandoned, never applied ($(head -n 1 "$T/clist$1.out"))" \
		grep -q "(abandoned, never applied: no loader is applying it" "$T/clist$1.out"
	check "fork $1: the child runs the old code" wait_match "$T/ctl/child.out" "^child result=1014$"
	check "fork $1: the parent the new code" result_is "$T/out" 5014
}

fork_during_apply 1
"$QP_BIN/qpatch-load" "$CHILD" "$T/fix.qpatch" >"$T/capply.out" 2>&1
check "child: the next apply works ($(head -n 1 "$T/capply.out"))" test $? -eq 0
check "child: and removed the abandoned mapping" grep -q "note: removed 1 mapping(s) of patches never applied" "$T/capply.out"
check "child: one patch mapping left" test "$(awk '/memfd:qpatch:/ && $3 == "00000000"' "/proc/$CHILD/maps" | wc -l)" -eq 1
n=$(wc -l <"$T/ctl/child.out")
wait_lines "$T/ctl/child.out" $((n + 2))
check "child: new code runs" sh -c "tail -n 1 '$T/ctl/child.out' | grep -q '^child result=5014$'"
"$QP_BIN/qpatch-load" --undo "$CHILD" >"$T/cundo.out" 2>&1
check "child: undone" test $? -eq 0
check "child: no mapping left" no_qpatch_maps "$CHILD"
kill -9 "$CHILD"
"$QP_BIN/qpatch-load" --undo "$PID" >"$T/pundo.out" 2>&1
check "parent: undone" test $? -eq 0

fork_during_apply 2
"$QP_BIN/qpatch-load" --undo "$CHILD" >"$T/cundo2.out" 2>&1
check "child 2: undo has nothing to undo" test $? -eq 1
check "child 2: but removed the abandoned mapping ($(cat "$T/cundo2.out"))" \
	grep -q "has no patch applied (the mapping of a patch never applied was removed)" "$T/cundo2.out"
check "child 2: no mapping left" no_qpatch_maps "$CHILD"
check "child 2: still runs the old code" sh -c "sleep 0.3; tail -n 1 '$T/ctl/child.out' | grep -q '^child result=1014$'"
kill -9 "$CHILD"
"$QP_BIN/qpatch-load" --undo "$PID" >"$T/pundo2.out" 2>&1
check "parent: undone again" test $? -eq 0

# --- execve while the loader is paused
maps_of "$PID" >"$T/maps.before"
QPATCH_PAUSE_AT=5 "$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/exec.out" 2>&1 &
L=$!
check "exec: loader paused with the mapping prepared" wait_state "$L" T
touch "$T/ctl/exec"
check "exec: the target runs sleep now" sh -c "for i in \$(seq 100); do readlink /proc/$PID/exe | grep -q sleep && exit 0; sleep 0.1; done; exit 1"
kill -CONT "$L"
wait "$L"
check "exec: the loader failed" test $? -eq 1
check "exec: it says the process called execve ($(cat "$T/exec.out" | tail -n 1))" \
	grep -q "process $PID called execve() during the apply" "$T/exec.out"
check "exec: the new program has no qpatch mapping" no_qpatch_maps "$PID"
check "exec: it is not traced" grep -q "^TracerPid:[[:space:]]*0$" "/proc/$PID/status"
check "exec: it sleeps, alive" grep -Eq "^State:[[:space:]]*S" "/proc/$PID/status"
check "exec: its memory is sleep's own" sh -c "! grep -q '$T/app/hostile' /proc/$PID/maps"
finish

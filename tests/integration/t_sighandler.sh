#!/bin/bash
# A signal handler and the function being replaced (hold()):
#  - the handler calls hold() and stays in it: the thread is inside hold();
#  - the handler interrupted the thread inside hold() and spins elsewhere:
#    the thread returns into hold() through the signal frame
#    (__restore_rt, rt_sigreturn), which the unwinder must walk through.
# Either way the apply is refused naming the thread and hold(), the target
# unchanged; once the handler is done, the same patch applies.
. "$(dirname "$0")/lib.sh"

hostile_setup || { fail "build the program and its patch"; finish; exit 1; }
start "$T/out" "$T/app/hostile" "$T/ctl"
PID=$TARGET_PID
check "target runs" wait_match "$T/out" "^result=1014$"
LOAD=("$QP_BIN/qpatch-load" --retries 5 --retry-delay 2 --leave-wait 0)
CTL=$(ls /proc/$PID/task | sort -n | tail -n 1) # the control thread, the last made

# refused NAME REGEX: an apply is refused, saying REGEX; nothing changed
refused() {
	maps_of "$PID" >"$T/maps.before"
	"${LOAD[@]}" "$PID" "$T/fix.qpatch" >"$T/$1.out" 2>&1
	check "$1: refused" test $? -eq 1
	check "$1: names the thread and hold() ($(cat "$T/$1.out"))" grep -Eq "$2" "$T/$1.out"
	maps_of "$PID" >"$T/maps.after"
	check "$1: memory map unchanged" cmp -s "$T/maps.before" "$T/maps.after"
	check "$1: old code still runs" result_is "$T/out" 1014
}
applies() {
	"${LOAD[@]}" "$PID" "$T/fix.qpatch" >"$T/$1.apply" 2>&1
	check "$1: then applies ($(head -n 1 "$T/$1.apply"))" test $? -eq 0
	check "$1: new code runs" result_is "$T/out" 5014
	"$QP_BIN/qpatch-load" --undo "$PID" >"$T/$1.undo" 2>&1
	check "$1: undone" test $? -eq 0
	check "$1: no mapping left" no_qpatch_maps "$PID"
}

# --- a handler inside hold()
kill -USR1 "$PID"
check "handler: in hold()" wait_match "$T/out" "^handler in hold$"
refused handler "thread $CTL (is executing 'hold'|will return into 'hold' \(frame #)"
touch "$T/ctl/release"
check "handler: left hold()" wait_match "$T/out" "^handler out of hold$"
applies handler

# --- a handler that interrupted hold() and spins outside it
touch "$T/ctl/sigspin"
check "interrupted: thread in hold()" wait_match "$T/out" "^in hold, handler will spin$"
sleep 0.1
kill -USR1 "$PID"
check "interrupted: handler spins" wait_match "$T/out" "^handler spins$"
refused interrupted "thread $CTL will return into 'hold' \(frame #[0-9]+, pc 0x[0-9a-f]+\)"
touch "$T/ctl/release"
check "interrupted: the handler returned" wait_match "$T/out" "^handler returns$"
for i in $(seq 50); do [ -e "$T/ctl/release" ] || break; sleep 0.1; done
touch "$T/ctl/release"
check "interrupted: hold() left" wait_match "$T/out" "^out of hold$"
applies interrupted
check "target alive" alive "$PID"
finish

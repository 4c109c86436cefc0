#!/bin/bash
# Targets the loader must refuse, with a message saying why, leaving them
# exactly as they were: a process another program traces (strace), a
# zombie, a process stopped by SIGSTOP (it stays stopped), a 32-bit
# program.
. "$(dirname "$0")/lib.sh"

hostile_setup || { fail "build the program and its patch"; finish; exit 1; }
start "$T/out" "$T/app/hostile" "$T/ctl"
PID=$TARGET_PID
check "target runs" wait_match "$T/out" "^result=1014$"

# --- traced by strace
strace -q -p "$PID" -o /dev/null &
TRACER=$!
PIDS+=($TRACER)
check "strace traces it" sh -c "for i in \$(seq 100); do grep -q '^TracerPid:[[:space:]]*$TRACER\$' /proc/$PID/status && exit 0; sleep 0.1; done; exit 1"
maps_of "$PID" >"$T/maps.before"
"$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/traced.out" 2>&1
check "traced: refused" test $? -eq 1
check "traced: the message names the tracer ($(cat "$T/traced.out"))" \
	grep -q "process $PID is traced by process $TRACER ('strace')" "$T/traced.out"
"$QP_BIN/qpatch-load" --undo "$PID" >"$T/traced-undo.out" 2>&1
check "traced: undo refused the same way" grep -q "traced by process $TRACER ('strace')" "$T/traced-undo.out"
maps_of "$PID" >"$T/maps.after"
check "traced: memory map unchanged" cmp -s "$T/maps.before" "$T/maps.after"
check "traced: old code still runs" result_is "$T/out" 1014
kill "$TRACER"; wait "$TRACER" 2>/dev/null
check "strace gone" sh -c "for i in \$(seq 100); do grep -q '^TracerPid:[[:space:]]*0\$' /proc/$PID/status && exit 0; sleep 0.1; done; exit 1"
"$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/apply.out" 2>&1
check "untraced: applied" test $? -eq 0
check "untraced: new code runs" result_is "$T/out" 5014
"$QP_BIN/qpatch-load" --undo "$PID" >"$T/undo.out" 2>&1
check "untraced: undone" test $? -eq 0
check "untraced: no mapping left" no_qpatch_maps "$PID"

# --- stopped by SIGSTOP: refused, and it stays stopped
kill -STOP "$PID"
check "SIGSTOP: the target is stopped" wait_state "$PID" T
maps_of "$PID" >"$T/maps.before"
"$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/stopped.out" 2>&1
check "stopped: refused" test $? -eq 1
check "stopped: the message says so ($(cat "$T/stopped.out"))" \
	grep -q "process $PID is stopped by a signal" "$T/stopped.out"
check "stopped: still stopped afterwards" grep -q "^State:[[:space:]]*T (stopped)" "/proc/$PID/status"
n=$(wc -l <"$T/out")
sleep 0.5
check "stopped: printed nothing meanwhile" test "$(wc -l <"$T/out")" -eq "$n"
maps_of "$PID" >"$T/maps.after"
check "stopped: memory map unchanged" cmp -s "$T/maps.before" "$T/maps.after"
kill -CONT "$PID"
check "continued: old code runs" result_is "$T/out" 1014

# --- a zombie: the child of a shell that exec'd into sleep, never collected
bash -c "sleep 0.3 & echo \$! >'$T/zpid'; exec sleep 1000" &
PIDS+=($!)
for i in $(seq 50); do [ -s "$T/zpid" ] && break; sleep 0.1; done
ZPID=$(cat "$T/zpid")
check "zombie: it is one" wait_state "$ZPID" Z
"$QP_BIN/qpatch-load" "$ZPID" "$T/fix.qpatch" >"$T/zombie.out" 2>&1
check "zombie: refused" test $? -eq 1
check "zombie: the message says so ($(cat "$T/zombie.out"))" grep -q "process $ZPID is a zombie" "$T/zombie.out"
"$QP_BIN/qpatch-load" --undo "$ZPID" >"$T/zombie-undo.out" 2>&1
check "zombie: undo refused" grep -q "process $ZPID is a zombie" "$T/zombie-undo.out"

# --- a 32-bit program (no C library needed: as --32, ld -m elf_i386)
cat >"$T/i386.s" <<'ASM'
	.globl _start
_start:	movl $162, %eax		# nanosleep(&ts, 0), forever
	movl $ts, %ebx
	xorl %ecx, %ecx
	int $0x80
	jmp _start
	.data
ts:	.long 1, 0
ASM
as --32 -o "$T/i386.o" "$T/i386.s" && ld -m elf_i386 -o "$T/i386" "$T/i386.o"
check "32-bit program built" test -x "$T/i386"
start "$T/i386.out" "$T/i386"
P32=$TARGET_PID
sleep 0.2
maps_of "$P32" >"$T/maps32.before"
"$QP_BIN/qpatch-load" "$P32" "$T/fix.qpatch" >"$T/i386.load" 2>&1
check "32-bit: refused" test $? -eq 1
check "32-bit: the message says so ($(cat "$T/i386.load"))" \
	grep -q "process $P32 runs a 32-bit program for machine 3 (i386), not x86-64" "$T/i386.load"
"$QP_BIN/qpatch-load" --undo "$P32" >"$T/i386.undo" 2>&1
check "32-bit: undo refused" grep -q "runs a 32-bit program" "$T/i386.undo"
maps_of "$P32" >"$T/maps32.after"
check "32-bit: memory map unchanged" cmp -s "$T/maps32.before" "$T/maps32.after"
check "32-bit: still running, not traced" grep -Eq "^State:[[:space:]]*S" "/proc/$P32/status"
check "target alive" alive "$PID"
finish

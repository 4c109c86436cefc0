#!/bin/bash
# qpatch-load --timing (or QPATCH_TIMING=1): where the run's time went,
# phase by phase, on stderr; and the call frame information loaded only
# when a stack must be unwound: not for a target whose stacks hold no
# address in the function being replaced, once (not counted as an
# attempt) for one that sits in a call made by it.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/hold
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/hold" >"$T/build.out" 2>&1
check "patch built" test -s "$T/fix.qpatch"

# the main thread calls hold() briefly every 20 ms, and sleeps outside it
start "$T/out1" "$T/app/hold" 0
check "target runs" wait_match "$T/out1" "^r=1$"
"$QP_BIN/qpatch-load" --timing "$TARGET_PID" "$T/fix.qpatch" >"$T/a.out" 2>"$T/a.err"
check "applied" test $? -eq 0
for phase in "start to main (CPU)" "read patch" "read maps" "find target" "stop one" "map" \
	"write" "protect" "stop all" "busy check" "jumps" "resume all" "operation total"; do
	check "--timing shows '$phase'" grep -Eq "^  $(printf '%s' "$phase" | sed 's/[()]/\\&/g') +[0-9]+" "$T/a.err"
done
check "--timing: the phases add up to the total" \
	grep -Eq "^  operation total +([0-9]+) \(phases above: [0-9]+\)$" "$T/a.err"
check "no stack to unwind: no call frame information loaded" sh -c "! grep -q '^  CFI ' '$T/a.err'"
check "--timing says nothing on stdout" sh -c "! grep -q 'timing' '$T/a.out'"
check "new code runs" wait_match "$T/out1" "^r=2$"
QPATCH_TIMING=1 "$QP_BIN/qpatch-load" --undo "$TARGET_PID" >"$T/u.out" 2>"$T/u.err"
check "undo with QPATCH_TIMING=1 shows phases" grep -Eq "^  stop all +[0-9]+" "$T/u.err"
"$QP_BIN/qpatch-load" --undo "$TARGET_PID" >/dev/null 2>"$T/u2.err"
check "without it, no timing" sh -c "! grep -q 'timing' '$T/u2.err'"

# while it holds threads stopped, the loader runs at nice -20 (when it may:
# root), its own priority again after (field 19 of /proc/PID/stat)
nice_of() { awk '{ sub(/.*\) /, ""); print $17 }' "/proc/$1/stat"; }
for step in 1 6; do
	QPATCH_PAUSE_AT=$step "$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/n$step.out" 2>&1 &
	loader=$!
	if wait_state "$loader" T; then
		n=$(nice_of "$loader")
		if [ "$(id -u)" -eq 0 ]; then
			check "step $step (threads held): the loader runs at nice -20" test "$n" = -20
		else
			check "step $step (threads held): the loader's nice is its own (not root)" test "$n" = 0
		fi
	else
		fail "step $step: the loader did not pause"
	fi
	kill -CONT "$loader"
	wait "$loader"
	check "step $step: applied" test $? -eq 0
	QPATCH_TIMING=1 QPATCH_PAUSE_AT=0 "$QP_BIN/qpatch-load" --undo "$TARGET_PID" >/dev/null 2>&1
done

# the main thread sits in usleep() called by hold() for an hour
start "$T/out2" "$T/app/hold" 3600000000
sleep 0.3
"$QP_BIN/qpatch-load" --timing --retries 2 --retry-delay 1 --leave-wait 0 "$TARGET_PID" \
	"$T/fix.qpatch" >"$T/b.out" 2>"$T/b.err"
check "a thread in a call made by hold(): refused" test $? -eq 1
check "its stack was unwound (the frame is named)" \
	grep -Eq "thread $TARGET_PID will return into 'hold' \(frame #[0-9]+" "$T/b.err"
check "the call frame information was loaded once" grep -Eq "^  CFI +[0-9]+$" "$T/b.err"
check "and that stop was not counted: 2 attempts" grep -q "still after 2 attempts" "$T/b.err"
# libdw (the unwinder) and libcrypto are loaded when needed, not linked
check "qpatch-load links neither libdw nor libcrypto" \
	sh -c "! readelf -d '$QP_BIN/qpatch-load' | grep -Eq 'NEEDED.*(libdw|libcrypto)'"
finish

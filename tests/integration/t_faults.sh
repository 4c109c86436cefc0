#!/bin/bash
# Fault injection: the loader is made to fail after each step of applying
# and of undoing (QPATCH_FAULT_AT, see QP_FAULTS in loader/loader.h).  After
# every failure the target must be exactly as before: same memory map, same
# code bytes, same open files, same behaviour.
. "$(dirname "$0")/lib.sh"

EX=$QP_SRC/examples/ledger
build_tree "$EX/orig" "$T/app" || { fail "build the example"; finish; exit 1; }
start "$T/out" "$T/app/ledger" 10
PID=$TARGET_PID
check "target prints" wait_lines "$T/out" 3
"$QP_BIN/qpatch-build" -q "$T/app" "$EX/patched" -o "$T/fix.qpatch" --target "$T/app/ledger" >"$T/build.out" 2>&1
check "patch built" test -s "$T/fix.qpatch"

# The bytes of the function the patch redirects, read from the live process.
func_bytes() {
	local base off
	base=$(awk -v p="$T/app/ledger" '$6 == p && $3 == "00000000" {print $1; exit}' "/proc/$PID/maps" | cut -d- -f1)
	off=$(nm "$T/app/ledger" | awk '$3 == "ledger_report" {print $1}')
	dd if="/proc/$PID/mem" bs=1 skip=$((16#$base + 16#$off)) count=16 2>/dev/null | od -An -tx1
}
state() { cat "/proc/$PID/maps"; ls "/proc/$PID/fd" | wc -l; func_bytes; }
behaves_old() {
	local n
	n=$(wc -l <"$T/out")
	wait_lines "$T/out" $((n + 2)) && ! tail -n 1 "$T/out" | grep -q fixed
}

before=$(state)
check "code bytes are read" test -n "$(func_bytes | tr -d ' \n')"
for step in 1 2 3 4 5 6 7 8; do
	QPATCH_FAULT_AT=$step "$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/f$step.out" 2>&1
	check "apply fails at step $step" grep -q "injected failure after step $step" "$T/f$step.out"
	check "target unchanged after step $step" test "$before" = "$(state)"
	check "old behaviour after step $step" behaves_old
done

"$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/apply.out" 2>&1
check "apply without fault" wait_match "$T/out" "fixed, report 2"
applied=$(state)
check "the jump shows in the code bytes" sh -c "echo '$(func_bytes)' | grep -q '^ *e9'"
for step in 11 12 13; do
	QPATCH_FAULT_AT=$step "$QP_BIN/qpatch-load" --undo "$PID" >"$T/u$step.out" 2>&1
	check "undo fails at step $step" grep -q "injected failure after step $step" "$T/u$step.out"
	check "patched state unchanged after undo step $step" test "$applied" = "$(state)"
	check "still listed after undo step $step" sh -c "'$QP_BIN/qpatch-load' --list $PID | grep -q ledger_report"
done
n=$(wc -l <"$T/out")
wait_lines "$T/out" $((n + 2))
check "new code still runs" sh -c "tail -n 1 '$T/out' | grep -q fixed"
"$QP_BIN/qpatch-load" --undo "$PID" >"$T/undo.out" 2>&1
check "undo without fault" behaves_old
check "back to the state before the first apply" test "$before" = "$(state)"
finish

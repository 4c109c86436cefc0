#!/bin/bash
# Patches stack: a second fix for the same function goes on top of the
# first, such patches are undone in reverse order only, and each undo brings
# back the behaviour before it.  The patch code is not writable.
. "$(dirname "$0")/lib.sh"

EX=$QP_SRC/examples/ledger
V2=$QP_SRC/tests/integration/progs/ledger-v2
build_tree "$EX/orig" "$T/app" || { fail "build the example"; finish; exit 1; }
start "$T/out" "$T/app/ledger" 20
check "target prints" wait_lines "$T/out" 3
"$QP_BIN/qpatch-build" -q -w "$T/work" --id fix-1 "$T/app" "$EX/patched" -o "$T/p1.qpatch" >/dev/null 2>&1
"$QP_BIN/qpatch-build" -q -w "$T/work" --id fix-2 "$T/app" "$V2" -o "$T/p2.qpatch" >/dev/null 2>&1
check "two patches built" test -s "$T/p1.qpatch" -a -s "$T/p2.qpatch"
behaves() { # wait for two fresh lines, check the last one
	local n
	n=$(wc -l <"$T/out")
	wait_lines "$T/out" $((n + 2)) && tail -n 1 "$T/out" | grep -Eq "$1"
}
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/p1.qpatch" >/dev/null 2>&1
check "first patch" behaves "\(fixed, report"
check "patch code is not writable" sh -c "grep 'memfd:qpatch:fix-1' /proc/$TARGET_PID/maps | grep -q ' r-x'"
check "and no mapping of it is writable and executable" sh -c "! grep 'memfd:qpatch:' /proc/$TARGET_PID/maps | grep -q ' rwx'"
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/p2.qpatch" >/dev/null 2>&1
check "second patch on top" behaves "\(fixed v2, report"
"$QP_BIN/qpatch-load" --list "$TARGET_PID" >"$T/list"
check "both listed in order" sh -c "grep -n \"patch 'fix-1'\" '$T/list' | grep -q '^1:' && grep -q \"^2. patch 'fix-2'\" '$T/list'"
"$QP_BIN/qpatch-load" --undo "$TARGET_PID" fix-1 >"$T/wrong.out" 2>&1
check "undoing the first while the second is on is refused" grep -q "redirects 'ledger_report' again, over 'fix-1': undo 'fix-2' first" "$T/wrong.out"
check "still the second" behaves "\(fixed v2, report"
"$QP_BIN/qpatch-load" --undo "$TARGET_PID" fix-2 >/dev/null 2>&1
check "undo the second: the first again" behaves "\(fixed, report"
"$QP_BIN/qpatch-load" --undo "$TARGET_PID" >/dev/null 2>&1
check "undo the first: the original again" behaves "fee=[0-9.]+$"
check "nothing left" sh -c "! grep -q memfd:qpatch: /proc/$TARGET_PID/maps"
finish

#!/bin/bash
# The program's file was replaced on disk after it started (an upgrade in
# progress): /proc/PID/maps says "(deleted)", and the loader reads the
# running image through /proc/PID/map_files.
. "$(dirname "$0")/lib.sh"

EX=$QP_SRC/examples/ledger
build_tree "$EX/orig" "$T/app" || { fail "build the example"; finish; exit 1; }
cp "$T/app/ledger" "$T/ledger.deployed"
start "$T/out" "$T/app/ledger" 20
check "target prints" wait_lines "$T/out" 3
"$QP_BIN/qpatch-build" -q "$T/app" "$EX/patched" -o "$T/fix.qpatch" --target "$T/ledger.deployed" >"$T/build.out" 2>&1
check "patch built" test -s "$T/fix.qpatch"
rm -f "$T/app/ledger" && echo "not the program" >"$T/app/ledger"
check "maps shows the file deleted" grep -q "ledger (deleted)" "/proc/$TARGET_PID/maps"
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/load.out" 2>&1
check "applied to the deleted image" test $? -eq 0
check "new code runs" wait_match "$T/out" "fixed, report 2\)"
finish

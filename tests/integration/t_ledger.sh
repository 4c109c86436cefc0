#!/bin/bash
# End to end on examples/ledger: build a patch from the real fix, apply it
# to the running program, check new behaviour, kept state, undo, and that
# bad patches are refused with the target left running unchanged.
. "$(dirname "$0")/lib.sh"

EX=$QP_SRC/examples/ledger
build_tree "$EX/orig" "$T/app" || { fail "build the example"; finish; exit 1; }
start "$T/out" "$T/app/ledger" 20
check "target prints" wait_lines "$T/out" 5

"$QP_BIN/qpatch-build" -q "$T/app" "$EX/patched" -o "$T/fix.qpatch" --target "$T/app/ledger" \
	>"$T/build.out" 2>&1
check "qpatch-build writes a patch" test -s "$T/fix.qpatch"
check "report names the replaced function" grep -Eq "replaced +ledger_report" "$T/build.out"
check "report names the new variable" grep -Eq "new variable +reports_since_fix" "$T/build.out"
check "report gives the source line" grep -Eq "replaced +ledger_report +[^ ]*ledger.c:[0-9]+" "$T/build.out"
check "qpatch-dump reads the patch" "$QP_BIN/qpatch-dump" "$T/fix.qpatch"
check "readelf reads the patch" readelf -S "$T/fix.qpatch"
check "readelf -a reads the patch without a warning" \
	sh -c "readelf -aW '$T/fix.qpatch' 2>&1 >/dev/null | grep . && exit 1 || exit 0"
check "readelf shows the diff table applying to the image" \
	sh -c "readelf -SW '$T/fix.qpatch' | grep -Eq '\\.qpatch\\.diffdata +RELA +[0-9a-f]+ [0-9a-f]+ [0-9a-f]+ 18 +I +[0-9]+ +2 '"
"$QP_BIN/qpatch-build" -q --json "$T/app" "$EX/patched" -o "$T/fix2.qpatch" --target "$T/app/ledger" >"$T/build.json"
check "report as JSON" python3 -c "import json,sys; v=json.load(open('$T/build.json')); sys.exit(not (v['ok'] and any(c['kind']=='replaced' and c['name']=='ledger_report' and ':' in c['where'] for c in v['changes'])))"
check "same sources, same patch id" cmp -s <("$QP_BIN/qpatch-dump" "$T/fix.qpatch" | head -1) <("$QP_BIN/qpatch-dump" "$T/fix2.qpatch" | head -1)
# a kept work directory: the second build reuses the original build
"$QP_BIN/qpatch-build" -q -w "$T/work" "$T/app" "$EX/patched" -o "$T/fix3.qpatch" >/dev/null 2>&1
"$QP_BIN/qpatch-build" -q -w "$T/work" "$T/app" "$EX/patched" -o "$T/fix4.qpatch" >"$T/warm.out" 2>&1
check "second build with the work directory is warm" grep -q "original build [0-9.]* s (warm)" "$T/warm.out"
check "warm build, same patch" cmp -s <("$QP_BIN/qpatch-dump" "$T/fix.qpatch" | head -1) <("$QP_BIN/qpatch-dump" "$T/fix4.qpatch" | head -1)
"$QP_BIN/qpatch-build" -q -w "$T/work" "$EX/orig" "$EX/patched" -o "$T/fix5.qpatch" >"$T/other.out" 2>&1
check "work directory of another tree refused" grep -q "holds a build of" "$T/other.out"

last_tick() { tail -n 1 "$T/out" | sed -E 's/^tick ([0-9]+):.*/\1/'; }
before_tick=$(last_tick)
before_deposits=$(tail -n 1 "$T/out" | sed -E 's/.*deposits=([0-9]+).*/\1/')

"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/load.out" 2>&1
check "qpatch-load applies" test $? -eq 0
check "loader reports the stop time" grep -Eq "stopped for [0-9]+ us" "$T/load.out"
check "new code runs" wait_match "$T/out" "fixed, report 3\)"

# (b) state kept: ticks and deposits continue, no restart
line=$(grep -m1 "fixed, report 1)" "$T/out")
tick=$(echo "$line" | sed -E 's/^tick ([0-9]+):.*/\1/')
deposits=$(echo "$line" | sed -E 's/.*deposits=([0-9]+).*/\1/')
check "tick continues across the patch ($before_tick -> $tick)" test "$tick" -gt "$before_tick"
check "deposits continue across the patch ($before_deposits -> $deposits)" \
	test "$deposits" -gt "$before_deposits" -a "$deposits" -eq "$tick"
# (a) behaviour: fee is now 1.5% of the balance
bal=$(echo "$line" | sed -E 's/.*balance=([0-9]+)\.([0-9]+).*/\1\2/')
fee=$(echo "$line" | sed -E 's/.*fee=([0-9]+)\.([0-9]+).*/\1\2/')
check "fee is 1.5% after the patch ($fee of $bal)" test "$((10#$fee))" -eq "$((10#$bal * 15 / 1000))"
check "patch is listed" sh -c "'$QP_BIN/qpatch-load' --list $TARGET_PID | grep -q ledger_report"
"$QP_BIN/qpatch-load" --list --json "$TARGET_PID" >"$T/list.json"
check "list as JSON" python3 -c "import json,sys; v=json.load(open('$T/list.json')); sys.exit(not (v[0]['state']=='applied' and v[0]['functions'][0]['name']=='ledger_report'))"
check "patch mapping is named in maps" grep -q "memfd:qpatch:" "/proc/$TARGET_PID/maps"

# applying the same patch twice is refused
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/twice.out" 2>&1
check "second apply refused" test $? -ne 0
check "second apply says why" grep -q "already applied" "$T/twice.out"

# (c) undo restores the old behaviour
"$QP_BIN/qpatch-load" --undo "$TARGET_PID" >"$T/undo.out" 2>&1
check "undo succeeds" test $? -eq 0
n=$(wc -l <"$T/out")
wait_lines "$T/out" $((n + 3))
last=$(tail -n 1 "$T/out")
check "old code runs after undo" sh -c "! echo '$last' | grep -q fixed"
bal=$(echo "$last" | sed -E 's/.*balance=([0-9]+)\.([0-9]+).*/\1\2/')
fee=$(echo "$last" | sed -E 's/.*fee=([0-9]+)\.([0-9]+).*/\1\2/')
check "fee is 15% again after undo" test "$((10#$fee))" -eq "$((10#$bal * 15 / 100))"
check "mapping removed by undo" sh -c "! grep -q memfd:qpatch: /proc/$TARGET_PID/maps"

# (d) bad patches are refused and the target runs on unchanged
maps_before=$(maps_of "$TARGET_PID")
head -c 700 "$T/fix.qpatch" >"$T/trunc.qpatch"
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/trunc.qpatch" >"$T/trunc.out" 2>&1
check "truncated patch refused" test $? -ne 0
printf 'not an elf file' >"$T/junk.qpatch"
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/junk.qpatch" >"$T/junk.out" 2>&1
check "junk file refused" test $? -ne 0
start "$T/other.out" sleep 60
other=$TARGET_PID
"$QP_BIN/qpatch-load" "$other" "$T/fix.qpatch" >"$T/other.out2" 2>&1
check "patch for another binary refused" test $? -ne 0
check "refusal names the build-id" grep -q "build-id" "$T/other.out2"
check "other process still alive" alive "$other"
"$QP_BIN/qpatch-load" 999999 "$T/fix.qpatch" >"$T/nopid.out" 2>&1
check "missing process refused" grep -q "no such process" "$T/nopid.out"
check "target unchanged after refusals" test "$maps_before" = "$(maps_of "${PIDS[0]}")"
n=$(wc -l <"$T/out")
check "target still running" wait_lines "$T/out" $((n + 2))
finish

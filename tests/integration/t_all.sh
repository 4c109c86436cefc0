#!/bin/bash
# qpatch-load --all: every process of the binary gets the patch, in
# parallel workers; one process that refuses (a thread that never leaves
# the function) is reported and left unchanged, and does not stop the
# others; a process of another build of the same program is not touched;
# --undo --all takes the patch out everywhere.  Text and JSON reports.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/hold
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
cp -a "$P/orig" "$T/other" && make -s -C "$T/other" CC="$QP_BIN/qpatch-cc" CFLAGS="-O1 -g" \
	>/dev/null 2>&1 || { fail "build another build"; finish; exit 1; }
"$QP_BIN/qpatch-build" -q --id hold-fix "$T/app" "$P/patched" -o "$T/fix.qpatch" \
	--target "$T/app/hold" >"$T/build.out" 2>&1
check "patch built" grep -Eq "replaced +hold" "$T/build.out"

N=19
GOOD=()
for i in $(seq $N); do
	start "$T/out$i" "$T/app/hold" 0
	GOOD+=("$TARGET_PID")
done
start "$T/busy" "$T/app/hold" 3600000000
BUSY=$TARGET_PID
start "$T/oth" "$T/other/hold" 0
OTHER=$TARGET_PID
for i in $(seq $N); do wait_match "$T/out$i" "^r=1$" || fail "process $i runs"; done
check "busy process ready" wait_match "$T/busy" ready
check "other build runs" wait_match "$T/oth" "^r=1$"
busy_maps=$(maps_of "$BUSY")

# apply everywhere: 19 applied, 1 refused, exit 1
"$QP_BIN/qpatch-load" --all -J 4 -r 20 "$T/fix.qpatch" >"$T/all.out" 2>&1
check "exit status 1: not all succeeded" test $? -eq 1
check "one line per process" test "$(grep -c '^process ' "$T/all.out")" -eq 20
check "summary" grep -q "^20 process(es): 19 applied, 0 already applied, 1 refused, 0 failed, 0 gone" "$T/all.out"
check "the refusal names the thread and the function" \
	grep -Eq "^process $BUSY \(hold\): refused: thread $BUSY will return into 'hold'" "$T/all.out"
check "the other build is not listed" sh -c "! grep -q '^process $OTHER ' '$T/all.out'"
ok_new=0
for i in $(seq $N); do wait_match "$T/out$i" "^r=2$" && ok_new=$((ok_new + 1)); done
check "19 processes run the new code ($ok_new)" test "$ok_new" -eq $N
check "the refused process is unchanged" test "$busy_maps" = "$(maps_of "$BUSY")"
check "the refused process is not left traced" grep -q "^TracerPid:[[:space:]]*0$" "/proc/$BUSY/status"
check "the other build still runs the old code" sh -c "tail -n 1 '$T/oth' | grep -q '^r=1$'"
check "the other build has no patch" sh -c "! grep -q memfd:qpatch: /proc/$OTHER/maps"

# again: the same patch is "already applied" where it is
"$QP_BIN/qpatch-load" --all --json -r 5 "$T/fix.qpatch" >"$T/all.json" 2>"$T/all.err"
check "JSON run exits 1 (the busy one)" test $? -eq 1
check "JSON report" python3 - "$T/all.json" "$BUSY" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
busy = int(sys.argv[2])
s = r["summary"]
assert r["op"] == "apply" and r["id"] == "hold-fix", r
assert s["processes"] == 20 and s["already_applied"] == 19 and s["refused"] == 1, s
assert [p["pid"] for p in r["processes"]] == sorted(p["pid"] for p in r["processes"])
ref = [p for p in r["processes"] if p["result"] == "refused"]
assert len(ref) == 1 and ref[0]["pid"] == busy and "hold" in ref[0]["error"], ref
EOF

check "undo everywhere" sh -c "'$QP_BIN/qpatch-load' --undo --all -J 8 hold-fix >'$T/undo.out' 2>&1"
check "undo summary" grep -q "^19 process(es): 19 undone, 0 not applied, 0 refused, 0 failed, 0 gone" "$T/undo.out"
ok_old=0
for i in $(seq $N); do
	n=$(wc -l <"$T/out$i")
	wait_lines "$T/out$i" $((n + 2)) && tail -n 1 "$T/out$i" | grep -q "^r=1$" && ok_old=$((ok_old + 1))
done
check "19 processes run the old code again ($ok_old)" test "$ok_old" -eq $N
left=0
for p in "${GOOD[@]}" "$BUSY"; do grep -q memfd:qpatch: "/proc/$p/maps" && left=$((left + 1)); done
check "no patch mapping left ($left)" test "$left" -eq 0
"$QP_BIN/qpatch-load" --undo --all hold-fix >"$T/undo2.out" 2>&1
check "undo when applied nowhere: exit 0" test $? -eq 0
check "says so" grep -q "no process has patch 'hold-fix' applied" "$T/undo2.out"

# bad input: a truncated patch is refused before any process is touched
head -c 300 "$T/fix.qpatch" >"$T/trunc.qpatch"
"$QP_BIN/qpatch-load" --all "$T/trunc.qpatch" >"$T/trunc.out" 2>&1
check "truncated patch: exit 1" test $? -eq 1
check "truncated patch: no process line" sh -c "! grep -q '^process ' '$T/trunc.out'"
"$QP_BIN/qpatch-load" --all -J 0 "$T/fix.qpatch" >/dev/null 2>&1
check "-J 0 is a usage error" test $? -eq 2
finish

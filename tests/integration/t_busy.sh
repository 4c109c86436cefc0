#!/bin/bash
# A thread inside the function being replaced: the loader waits (bounded
# retries) and then refuses, naming the thread and the function, with the
# target unchanged; a thread that leaves in time lets the patch through;
# --allow-active patches anyway.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/hold
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/hold" >"$T/build.out" 2>&1
check "patch built" grep -Eq "replaced +hold" "$T/build.out"

# 1. never leaves: refused after the retries, nothing changed
start "$T/out1" "$T/app/hold" 3600000000
check "target 1 ready" wait_match "$T/out1" ready
maps=$(cat "/proc/$TARGET_PID/maps")
"$QP_BIN/qpatch-load" -r 20 -d 5 "$TARGET_PID" "$T/fix.qpatch" >"$T/load1.out" 2>&1
check "refused while a thread is in hold()" test $? -ne 0
check "names the thread and the function" grep -Eq "thread $TARGET_PID will return into 'hold' \(frame #[0-9]+" "$T/load1.out"
check "says it retried" grep -q "after 20 attempts" "$T/load1.out"
check "target 1 unchanged" test "$maps" = "$(cat "/proc/$TARGET_PID/maps")"
check "target 1 alive" alive "$TARGET_PID"
# Ctrl-C / kill while the loader retries: it ends, the target is as it was
"$QP_BIN/qpatch-load" -r 100000 "$TARGET_PID" "$T/fix.qpatch" >"$T/load1k.out" 2>&1 &
loader=$!
sleep 0.5
kill -TERM "$loader"
for _ in $(seq 50); do alive "$loader" || break; sleep 0.1; done
check "interrupted loader ends promptly" sh -c "! kill -0 $loader 2>/dev/null"
wait "$loader" 2>/dev/null
check "target not left traced" grep -q "^TracerPid:[[:space:]]*0$" "/proc/$TARGET_PID/status"
check "target unchanged after the interrupted loader" test "$maps" = "$(cat "/proc/$TARGET_PID/maps")"
check "target alive after the interrupted loader" alive "$TARGET_PID"
"$QP_BIN/qpatch-load" --allow-active "$TARGET_PID" "$T/fix.qpatch" >"$T/load1b.out" 2>&1
check "--allow-active applies anyway" test $? -eq 0

# 2. leaves after 0.3 s: the default retries (200 x 5 ms) wait for it
start "$T/out2" "$T/app/hold" 300000
check "target 2 ready" wait_match "$T/out2" ready
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/load2.out" 2>&1
check "applied once the thread left" test $? -eq 0
check "it took several attempts" grep -Eq "[0-9]{2,} attempts" "$T/load2.out"
check "first call ran old code" wait_match "$T/out2" "^r=1$"
check "new code afterwards" wait_match "$T/out2" "^r=2$"
finish

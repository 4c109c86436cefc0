#!/bin/bash
# A thread that is practically always inside the function being replaced
# (it sleeps inside it, and leaves it for an instant every 200 ms) is
# caught on its way out: it runs alone, the others stopped, up to a
# breakpoint on its return address; the patch then goes in.  Also with two
# such threads.  A thread that never leaves is still refused, by name,
# within the time allowed; without catching (--leave-wait 0) the same
# target is refused as before.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/tick
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/tick" >"$T/build.out" 2>&1
check "patch built" grep -Eq "replaced +tick" "$T/build.out"

# 1. without catching: refused, as a poll of 200 x 5 ms never sees it out
start "$T/out0" "$T/app/tick" 1
check "target 0 ready" wait_match "$T/out0" "tick 2 v1"
maps=$(maps_of "$TARGET_PID")
"$QP_BIN/qpatch-load" --leave-wait 0 "$TARGET_PID" "$T/fix.qpatch" >"$T/load0.out" 2>&1
check "--leave-wait 0: refused" test $? -ne 0
check "names the thread and the function" grep -Eq "thread $TARGET_PID will return into 'tick'" "$T/load0.out"
check "target unchanged" test "$maps" = "$(maps_of "$TARGET_PID")"

# 2. caught on its way out
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/load1.out" 2>&1
check "caught on its way out: applied" test $? -eq 0
check "says it caught the thread" grep -q "1 thread caught leaving" "$T/load1.out"
check "new code runs" wait_match "$T/out0" "v2$"
check "the counter went on" sh -c "grep -q 'tick [0-9]* v2' '$T/out0'"
check "target not left traced" grep -q "^TracerPid:[[:space:]]*0$" "/proc/$TARGET_PID/status"
"$QP_BIN/qpatch-load" --undo "$TARGET_PID" >/dev/null 2>&1
check "undone" test $? -eq 0

# 3. two threads inside: each caught in turn
start "$T/out2" "$T/app/tick" 2
check "target 2 ready" wait_match "$T/out2" "thread 1: tick"
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/load2.out" 2>&1
check "two threads: applied" test $? -eq 0
check "both caught" grep -q "2 threads caught leaving" "$T/load2.out"
check "thread 0 runs the new code" wait_match "$T/out2" "thread 0: tick [0-9]+ v2"
check "thread 1 runs the new code" wait_match "$T/out2" "thread 1: tick [0-9]+ v2"

# 4. a thread that never leaves: refused by name, in bounded time
H=$QP_SRC/tests/integration/progs/hold
build_tree "$H/orig" "$T/hold" || { fail "build hold"; finish; exit 1; }
"$QP_BIN/qpatch-build" -q "$T/hold" "$H/patched" -o "$T/hold.qpatch" --target "$T/hold/hold" >/dev/null 2>&1
start "$T/outh" "$T/hold/hold" 3600000000
check "hold ready" wait_match "$T/outh" ready
maps=$(maps_of "$TARGET_PID")
t0=$(date +%s%N)
"$QP_BIN/qpatch-load" -r 40 --leave-wait 300 "$TARGET_PID" "$T/hold.qpatch" >"$T/loadh.out" 2>&1
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "never leaves: refused" test $rc -ne 0
check "names the thread, says it ran alone" \
	grep -Eq "thread $TARGET_PID will return into 'hold' .*run alone for [0-9]+ ms, it did not leave" "$T/loadh.out"
check "within the time allowed ($ms ms)" test "$ms" -lt 5000
check "hold target unchanged" test "$maps" = "$(maps_of "$TARGET_PID")"
check "hold target alive, not traced" grep -q "^TracerPid:[[:space:]]*0$" "/proc/$TARGET_PID/status"
n=$(wc -l <"$T/outh")
check "hold target still runs its code later" sh -c "kill -0 $TARGET_PID"
finish

#!/bin/bash
# Coroutines as QEMU makes them (mmap'd stacks above a guard page,
# makecontext, sigsetjmp/siglongjmp): one suspended inside the function
# being replaced blocks apply, named as a suspended coroutine; once it
# leaves, apply goes through; one suspended inside the new code keeps the
# undone mapping, and the program goes on working when it returns there.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/coro
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/coro" >"$T/build.out" 2>&1
check "patch built" grep -Eq "replaced +work" "$T/build.out"

# 1. suspended in work() for good: refused, nothing changed
start "$T/out1" "$T/app/coro" 3600000000
check "target 1 ready" wait_match "$T/out1" "^parked$"
maps=$(cat "/proc/$TARGET_PID/maps")
"$QP_BIN/qpatch-load" -r 20 -d 5 "$TARGET_PID" "$T/fix.qpatch" >"$T/load1.out" 2>&1
check "refused while a coroutine is suspended in work()" test $? -ne 0
check "names the coroutine and the function" \
	grep -Eq "a suspended coroutine \(stack 0x[0-9a-f]+-0x[0-9a-f]+, context at 0x[0-9a-f]+\) will return into 'work' \(frame #[0-9]+" "$T/load1.out"
check "target 1 unchanged" test "$maps" = "$(cat "/proc/$TARGET_PID/maps")"
kill -USR2 "$TARGET_PID"
check "target 1 goes on once the coroutine is let out" wait_match "$T/out1" "^r=1$"

# 2. let out while the loader retries: applied once it is out; old code, then new
start "$T/out2" "$T/app/coro" 3600000000
pid=$TARGET_PID
check "target 2 ready" wait_match "$T/out2" "^parked$"
"$QP_BIN/qpatch-load" -r 3000 "$pid" "$T/fix.qpatch" >"$T/load2.out" 2>&1 &
loader=$!
sleep 2
kill -USR2 "$pid"
wait "$loader"
check "applied once the coroutine left" test $? -eq 0
check "it took several attempts" grep -Eq "[0-9]{2,} attempts" "$T/load2.out"
check "the contexts were found (two coroutines)" \
	grep -Eq "coroutines: 2 stack\(s\) no thread runs on, 2 suspended context\(s\) found" "$T/load2.out"
check "first result from the old code" wait_match "$T/out2" "^r=1$"
check "new code afterwards" wait_match "$T/out2" "^r=2$"

# 3. suspended inside the new code: undo restores the jump but keeps the mapping
n=$(wc -l <"$T/out2")
kill -USR1 "$pid"
check "parked in the new code" wait_after "$T/out2" "$n" parked
"$QP_BIN/qpatch-load" --undo "$pid" >"$T/undo.out" 2>&1
check "undo succeeds" test $? -eq 0
check "says the mapping is kept for the coroutine" \
	grep -Eq "kept because a suspended coroutine .* will return into 'work' of patch" "$T/undo.out"
check "mapping still there" test "$(qp_maps "$pid")" -ge 1
"$QP_BIN/qpatch-load" --list "$pid" >"$T/list.out" 2>&1
check "listed as undone, still mapped" grep -q "(undone, mapping still in use)" "$T/list.out"
n=$(wc -l <"$T/out2")
kill -USR2 "$pid"
check "the coroutine returns through the new code" wait_after "$T/out2" "$n" "r=2"
check "then runs the old code again" wait_after "$T/out2" "$((n + 1))" "r=1"
check "target 2 alive" alive "$pid"

# 4. a later undo removes the kept mapping
"$QP_BIN/qpatch-load" "$pid" "$T/fix.qpatch" >"$T/load4.out" 2>&1
check "applied again" test $? -eq 0
"$QP_BIN/qpatch-load" --undo "$pid" >"$T/undo4.out" 2>&1
check "undone again" test $? -eq 0
check "no patch mapping left" test "$(qp_maps "$pid")" -eq 0
n=$(wc -l <"$T/out2")
check "old code still runs" wait_after "$T/out2" "$n" "r=1"
check "target 2 alive at the end" alive "$pid"

# 5. contexts where the search does not look (inside an 80 MiB mapping):
# undo judges the coroutine stacks word by word and keeps the mapping.
# "merged": that mapping lies right above the stack of the coroutine that
# parks, and the kernel merges the two into one large mapping (read
# before the stop, and again in the window as it held such a word)
for mode in 1 merged; do
	CORO_BIG=$mode start "$T/out5$mode" "$T/app/coro"
	pid=$TARGET_PID
	check "[$mode] target ready" wait_match "$T/out5$mode" "^r=1$"
	"$QP_BIN/qpatch-load" "$pid" "$T/fix.qpatch" >"$T/load5$mode.out" 2>&1
	check "[$mode] target patched" test $? -eq 0
	check "[$mode] the large mapping was not searched" \
		grep -Eq "2 stack\(s\) no thread runs on, 0 suspended context\(s\) found.*\(1 mapping\(s\) too large" "$T/load5$mode.out"
	check "[$mode] target runs the new code" wait_match "$T/out5$mode" "^r=2$"
	n=$(wc -l <"$T/out5$mode")
	kill -USR1 "$pid"
	check "[$mode] target parked in the new code" wait_after "$T/out5$mode" "$n" parked
	"$QP_BIN/qpatch-load" --undo "$pid" >"$T/undo5$mode.out" 2>&1
	check "[$mode] undo succeeds" test $? -eq 0
	check "[$mode] keeps the mapping: a stack with no known context points into it" \
		grep -Eq "kept because a stack with no known context \(0x[0-9a-f]+-0x[0-9a-f]+, a coroutine's\?\) holds an address in '(work|patch [0-9a-f]+)'" "$T/undo5$mode.out"
	n=$(wc -l <"$T/out5$mode")
	kill -USR2 "$pid"
	check "[$mode] target returns through the new code" wait_after "$T/out5$mode" "$n" "r=2"
	check "[$mode] target then runs the old code" wait_after "$T/out5$mode" "$((n + 1))" "r=1"
	check "[$mode] target alive" alive "$pid"
done
finish

#!/bin/bash
# Coroutines whose stacks come from malloc (inside [heap], or mapped by
# malloc on its own for a large stack: no guard page), switched with
# swapcontext (a ucontext_t) or with sigsetjmp/siglongjmp (a jmp_buf):
# one suspended inside the function being replaced blocks apply, named as
# a suspended coroutine with its stack; apply goes through when none
# is inside; undo keeps a mapping such a coroutine would return into; a
# search cut short by its limit keeps undone mappings.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/heapcoro
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/heapcoro" >"$T/build.out" 2>&1
check "patch built" grep -Eq "replaced +work" "$T/build.out"

kind() { if [ "$1" = 1 ]; then echo ucontext; else echo context; fi; }

# 1. coroutine 1 (swapcontext) or 2 (sigsetjmp) suspended in work() on a
# 64 KiB stack in [heap], a 512 KiB one malloc maps on its own, or a
# static array (no chunk: the uc_stack of a ucontext_t, else from its rsp
# up): refused
for mode in 64 512 static; do
	stack='stack 0x[0-9a-f]+-0x[0-9a-f]+ in \[heap\]'
	[ "$mode" = 512 ] && stack='stack 0x[0-9a-f]+-0x[0-9a-f]+ in an anonymous mapping'
	for who in 1 2; do
		# static: the ucontext_t's uc_stack is its stack; the jmp_buf's is guessed
		[ "$mode" = static ] && stack='stack 0x[0-9a-f]+-0x[0-9a-f]+ in (an anonymous mapping|the data of an object)'
		[ "$mode/$who" = static/2 ] && stack='stack at 0x[0-9a-f]+ in (an anonymous mapping|the data of an object)'
		if [ "$mode" = static ]; then
			HC_STATIC=1 start "$T/out1" "$T/app/heapcoro" "$who" park
		else
			HC_STACK_KB=$mode start "$T/out1" "$T/app/heapcoro" "$who" park
		fi
		check "[$mode/$who] target ready" wait_match "$T/out1" "^parked $who$"
		maps=$(cat "/proc/$TARGET_PID/maps")
		"$QP_BIN/qpatch-load" -r 20 -d 5 "$TARGET_PID" "$T/fix.qpatch" >"$T/load1.out" 2>&1
		check "[$mode/$who] refused while a coroutine is suspended in work()" test $? -ne 0
		check "[$mode/$who] names the coroutine, its stack and the function" \
			grep -Eq "a suspended coroutine \($stack, $(kind "$who") at 0x[0-9a-f]+\) will return into 'work' \(frame #[0-9]+" "$T/load1.out"
		check "[$mode/$who] target unchanged" test "$maps" = "$(cat "/proc/$TARGET_PID/maps")"
		n=$(wc -l <"$T/out1")
		kill -USR2 "$TARGET_PID"
		check "[$mode/$who] target goes on once the coroutine is let out" wait_after "$T/out1" "$n" "$who r=1"
		kill "$TARGET_PID"
	done
done

# 2. no coroutine inside: applied; 3 contexts (two ucontext_t, one
# jmp_buf); then each coroutine parked in the new code keeps the mapping
for who in 1 2; do
	start "$T/out2" "$T/app/heapcoro" "$who"
	pid=$TARGET_PID
	check "[$who] target ready" wait_match "$T/out2" "^$who r=1$"
	"$QP_BIN/qpatch-load" "$pid" "$T/fix.qpatch" >"$T/load2.out" 2>&1
	check "[$who] applied" test $? -eq 0
	check "[$who] the three contexts were found" \
		grep -Eq "coroutines: 0 stack\(s\) no thread runs on, 3 suspended context\(s\) found" "$T/load2.out"
	check "[$who] new code runs" wait_match "$T/out2" "^$who r=2$"
	n=$(wc -l <"$T/out2")
	kill -USR1 "$pid"
	check "[$who] parked in the new code" wait_after "$T/out2" "$n" "parked $who"
	"$QP_BIN/qpatch-load" --undo "$pid" >"$T/undo2.out" 2>&1
	check "[$who] undo succeeds" test $? -eq 0
	check "[$who] says the mapping is kept for the coroutine" \
		grep -Eq "kept because a suspended coroutine \(stack 0x[0-9a-f]+-0x[0-9a-f]+ in \[heap\], $(kind "$who") at 0x[0-9a-f]+\) will return into 'work' of patch" "$T/undo2.out"
	check "[$who] mapping still there" test "$(qp_maps "$pid")" -ge 1
	n=$(wc -l <"$T/out2")
	kill -USR2 "$pid"
	check "[$who] the coroutine returns through the new code" wait_after "$T/out2" "$n" "$who r=2"
	check "[$who] then runs the old code again" wait_after "$T/out2" "$n" "$who r=1"
	check "[$who] target alive" alive "$pid"
	kill "$pid"
done

# 3. the search limited to 1 MiB, the coroutines allocated after 8 MiB of
# heap: apply says what it did not search; undo keeps the mapping
HC_HEAP_MB=8 start "$T/out3" "$T/app/heapcoro" 1
pid=$TARGET_PID
check "[limit] target ready" wait_match "$T/out3" "^1 r=1$"
QPATCH_CORO_LIMIT_MB=1 "$QP_BIN/qpatch-load" "$pid" "$T/fix.qpatch" >"$T/load3.out" 2>&1
check "[limit] applied" test $? -eq 0
check "[limit] says the search stopped at its limit" \
	grep -Eq "the search stopped at its limit of 1 MiB: [0-9.]+ MiB of the heap" "$T/load3.out"
check "[limit] new code runs" wait_match "$T/out3" "^1 r=2$"
QPATCH_CORO_LIMIT_MB=1 "$QP_BIN/qpatch-load" --undo "$pid" >"$T/undo3.out" 2>&1
check "[limit] undo succeeds" test $? -eq 0
check "[limit] keeps the mapping: the heap was not searched in full" \
	grep -Eq "kept because the search for suspended coroutines stopped at its limit of 1 MiB" "$T/undo3.out"
check "[limit] mapping still there" test "$(qp_maps "$pid")" -ge 1
"$QP_BIN/qpatch-load" "$pid" "$T/fix.qpatch" >"$T/load4.out" 2>&1
check "[limit] applied again, searched in full" grep -Eq "3 suspended context\(s\) found" "$T/load4.out"
"$QP_BIN/qpatch-load" --undo "$pid" >"$T/undo4.out" 2>&1
check "[limit] undone in full without the limit" test "$(qp_maps "$pid")" -eq 0
n=$(wc -l <"$T/out3")
check "[limit] old code runs" wait_after "$T/out3" "$n" "1 r=1"
check "[limit] target alive" alive "$pid"
# 4. a program that imports no makecontext makes no coroutine of its own
# stack: its heap is not searched, so 8 MiB of it (made by a preloaded
# constructor) neither hits the 1 MiB limit nor makes undo keep the mapping
H=$QP_SRC/tests/integration/progs/hold
build_tree "$H/orig" "$T/hold" && "$QP_BIN/qpatch-build" -q "$T/hold" "$H/patched" \
	-o "$T/hold.qpatch" --target "$T/hold/hold" >"$T/hold.build" 2>&1
check "[no makecontext] patch built" test -s "$T/hold.qpatch"
printf '%s\n' '#include <stdlib.h>' '#include <string.h>' \
	'void *fill_kept[12000];' '__attribute__((constructor)) static void fill(void) {' \
	'	for (int i = 0; i < 12000; i++) fill_kept[i] = memset(malloc(1000), 1, 1000); }' >"$T/fill.c"
cc -shared -fPIC -o "$T/fill.so" "$T/fill.c"
check "[no makecontext] the target imports no makecontext" \
	sh -c "! nm -D '$T/hold/hold' '$T/fill.so' | grep -q makecontext"
LD_PRELOAD=$T/fill.so start "$T/out5" "$T/hold/hold" 0
pid=$TARGET_PID
check "[no makecontext] target runs" wait_match "$T/out5" "^r=1$"
heap_bytes() {
	local r
	r=$(awk '/\[heap\]/ { print $1 }' "/proc/$1/maps")
	[ -n "$r" ] && echo $((0x${r#*-} - 0x${r%-*}))
}
check "[no makecontext] its heap is over 8 MiB" test "$(heap_bytes "$pid")" -ge $((8 << 20))
QPATCH_CORO_LIMIT_MB=1 "$QP_BIN/qpatch-load" "$pid" "$T/hold.qpatch" >"$T/load5.out" 2>&1
check "[no makecontext] applied" test $? -eq 0
check "[no makecontext] no search, no limit reached" sh -c "! grep -q 'coroutines:' '$T/load5.out'"
QPATCH_CORO_LIMIT_MB=1 "$QP_BIN/qpatch-load" --undo "$pid" >"$T/undo5.out" 2>&1
check "[no makecontext] undone" test $? -eq 0
check "[no makecontext] the mapping removed" test "$(qp_maps "$pid")" -eq 0
check "[no makecontext] target alive" alive "$pid"
finish

#!/bin/bash
# Thread-local variables of the main program, reached from the patch with
# local-exec (%fs:offset) and initial-exec (GOT slot with the offset)
# accesses; every thread keeps its own values across the patch.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/tls
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
start "$T/out" "$T/app/tlsprog"
check "target prints" wait_lines "$T/out" 3
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/tlsprog" >"$T/build.out" 2>&1
check "both functions replaced" sh -c "grep -Eq 'replaced +step' '$T/build.out' && grep -Eq 'replaced +peek' '$T/build.out'"
check "local-exec reference in the patch" sh -c "'$QP_BIN/qpatch-dump' '$T/fix.qpatch' | grep -q 'R_X86_64_TPOFF32 *tls_calls'"
check "initial-exec reference in the patch" sh -c "'$QP_BIN/qpatch-dump' '$T/fix.qpatch' | grep -q 'R_X86_64_GOTTPOFF *tls_counter'"
field() { echo "$1" | sed -E "s/.*$2=([0-9]+).*/\1/"; }
before=$(tail -n 1 "$T/out")
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/load.out" 2>&1
check "applied" test $? -eq 0
n=$(wc -l <"$T/out")
wait_lines "$T/out" $((n + 3))
last2=$(tail -n 2 "$T/out") # one read: the file grows meanwhile
a=$(echo "$last2" | head -n 1)
b=$(echo "$last2" | tail -n 1)
check "counter now steps by 10 ($a / $b)" test $(($(field "$b" counter) - $(field "$a" counter))) -eq 10
check "initial-exec read sees this thread's counter" test "$(field "$b" peek)" -eq $(($(field "$b" counter) + 1000000))
check "local-exec state kept (calls $(field "$before" calls) -> $(field "$b" calls))" \
	test "$(field "$b" calls)" -gt "$(field "$before" calls)"
check "calls still count by one" test $(($(field "$b" calls) - $(field "$a" calls))) -eq 1
"$QP_BIN/qpatch-load" --undo "$TARGET_PID" >"$T/undo.out" 2>&1
check "undone" test $? -eq 0
n=$(wc -l <"$T/out")
wait_lines "$T/out" $((n + 3))
last2=$(tail -n 2 "$T/out") # one read: the file grows meanwhile
a=$(echo "$last2" | head -n 1)
b=$(echo "$last2" | tail -n 1)
check "old code again" test $(($(field "$b" counter) - $(field "$a" counter))) -eq 1 -a "$(field "$b" peek)" -eq "$(field "$b" counter)"
finish

#!/bin/bash
# qpatch-load --exec: a fix that a running process never lets go of (it
# changes the loop the program spends its life in) is refused in a running
# process, and goes in when the program is started under qpatch-load: traced
# from before its execve(), held at its entry point, patched, let go.  The
# launcher exits as the program does and passes SIGTERM on; a patch that
# does not apply means the program is not started.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/busyloop
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/busyloop" \
	>"$T/build.out" 2>&1
check "patch built" test -s "$T/fix.qpatch"

start "$T/run.out" "$T/app/busyloop"
check "running program prints" wait_lines "$T/run.out" 2
"$QP_BIN/qpatch-load" -r 20 -L 100 "$TARGET_PID" "$T/fix.qpatch" >"$T/load.out" 2>&1
check "refused in the running process" test $? -ne 0
check "because the loop is busy" grep -q "will return into\|is executing" "$T/load.out"
kill -9 "$TARGET_PID"

"$QP_BIN/qpatch-load" --exec "$T/fix.qpatch" -- "$T/app/busyloop" 5 >"$T/exec.out" 2>"$T/exec.err"
rc=$?
check "exits as the program does (3, got $rc)" test "$rc" -eq 3
check "every line from the first is the fixed one" \
	sh -c "[ \$(wc -l <'$T/exec.out') -eq 5 ] && [ \$(grep -c '^round [0-9] fixed\$' '$T/exec.out') -eq 5 ]"
check "says it applied at the entry point" grep -q "at its entry point" "$T/exec.err"

# a patch for another program: not started
printf 'int main(void) { return 0; }\n' >"$T/other.c"
cc -o "$T/other" "$T/other.c"
"$QP_BIN/qpatch-load" --exec "$T/fix.qpatch" -- "$T/other" >"$T/wrong.out" 2>"$T/wrong.err"
check "a patch that does not apply: exit 1" test $? -eq 1
check "and the program is not started" grep -q "not started" "$T/wrong.err"
"$QP_BIN/qpatch-load" --exec "$T/fix.qpatch" -- "$T/no-such-program" >/dev/null 2>"$T/none.err"
check "a program that cannot be run: exit 127" test $? -eq 127
"$QP_BIN/qpatch-load" --exec "$T/fix.qpatch" "$T/app/busyloop" >/dev/null 2>&1
check "no -- before the program: usage error" test $? -eq 2

# SIGTERM to the launcher reaches the program
"$QP_BIN/qpatch-load" --exec "$T/fix.qpatch" -- "$T/app/busyloop" >"$T/long.out" 2>/dev/null &
L=$!
PIDS+=("$L")
check "long run prints fixed lines" wait_match "$T/long.out" "^round [0-9]+ fixed$"
child=$(pgrep -P "$L")
kill -TERM "$L"
wait "$L"
rc=$?
check "the launcher ends as the program did (143, got $rc)" test "$rc" -eq 143
check "and the program is gone" sh -c "! kill -0 '${child:-0}' 2>/dev/null"
finish

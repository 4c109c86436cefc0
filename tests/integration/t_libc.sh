#!/bin/bash
# libc from the patch: a call through the program's PLT (printf), a libc
# function the program never called (getpid: no PLT entry, reached through
# a stub), an IFUNC the program never called (strlen: its resolver runs in
# the target, as the dynamic linker would run it), libc data through the
# program's copy (stderr), a new variable
# holding addresses (relocated by the loader), an existing static table.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/libc
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
"$T/app/libcuser" >"$T/out" 2>"$T/err" &
PIDS+=($!)
PID=$!
check "target prints" wait_lines "$T/out" 3
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/libcuser" >"$T/build.out" 2>&1
check "report replaced" grep -Eq "replaced +report" "$T/build.out"
check "new variables" sh -c "grep -Eq 'new variable +loud_names' '$T/build.out' && grep -Eq 'new variable +warnings' '$T/build.out'"
"$QP_BIN/qpatch-dump" "$T/fix.qpatch" >"$T/dump"
check "printf through the PLT" grep -q "printf@plt" "$T/dump"
check "getpid left to the loader" grep -Eq "EXTERNAL +getpid" "$T/dump"
check "strlen (an IFUNC) left to the loader" grep -Eq "EXTERNAL +strlen" "$T/dump"
check "stderr is the program's copy" grep -Eq "IN_TARGET +stderr" "$T/dump"
"$QP_BIN/qpatch-load" "$PID" "$T/fix.qpatch" >"$T/load.out" 2>&1
check "applied" test $? -eq 0
check "new table used, IFUNC strlen called" wait_match "$T/out" "report [0-9]+ (zero ZERO len=4|one ONE len=3|two TWO len=3)$"
check "stderr written with the pid" wait_match "$T/err" "^warning 1 from pid $PID$"
check "warnings count" wait_match "$T/err" "^warning 2 from pid $PID$"
"$QP_BIN/qpatch-load" --undo "$PID" >"$T/undo.out" 2>&1
check "undone" test $? -eq 0
n=$(wc -l <"$T/out")
wait_lines "$T/out" $((n + 2))
check "old code again" sh -c "tail -n 1 '$T/out' | grep -Eq '^report [0-9]+ (zero|one|two)$'"
finish

#!/bin/bash
# A build that maps its own directory to "." in debug info (Debian's
# -ffile-prefix-map=$PWD=.): qpatch-build keeps that map in force, so its
# original build is identical to the deployed one (same build-id), and
# relative source paths still let it recognise a __LINE__-only change.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/debmap
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
start "$T/out" "$T/app/prog"
check "target prints" wait_lines "$T/out" 2
"$QP_BIN/qpatch-build" "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/prog" >"$T/build.out" 2>&1
check "patch built" test -s "$T/fix.qpatch"
check "same build-id as deployed" sh -c "! grep -q 'only debug info differs' '$T/build.out'"
check "__LINE__-only function left out" grep -Eq "^  line only +check" "$T/build.out"
check "no diff noise" sh -c "! grep -q '^diff:' '$T/build.out'"
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/load.out" 2>&1
check "applied" test $? -eq 0
finish

#!/bin/bash
# Function pointers across a patch: a callback the process registered at
# start-up (the old address of step) must compare equal to step in the new
# code, and the new code's own references by address (to step, replaced,
# and to twice, new) must work; in a program (PC-relative lea) and in a
# shared library (addresses loaded from the GOT, R_X86_64_REX_GOTPCRELX).
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/funcptr
build_tree "$P/orig" "$T/app" || { fail "build the programs"; finish; exit 1; }

for bin in app libcb.so; do
	exe=app
	[ "$bin" = libcb.so ] && exe=applib
	start "$T/$exe.out" "$T/app/$exe"
	pid=$TARGET_PID
	check "$exe runs" wait_match "$T/$exe.out" "^step\(3\)=4 registered=1$"
	"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/$bin.qpatch" --binary "$bin" \
		--target "$T/app/$bin" >"$T/$bin-build.out" 2>&1
	check "$bin: patch built" test $? -eq 0
	check "$bin: step and report replaced, twice new" sh -c \
		"grep -Eq 'replaced +step ' '$T/$bin-build.out' && grep -Eq 'replaced +report ' '$T/$bin-build.out' && grep -Eq 'new function +twice ' '$T/$bin-build.out'"
	"$QP_BIN/qpatch-load" "$pid" "$T/$bin.qpatch" >"$T/$bin-load.out" 2>&1
	check "$bin: applied" test $? -eq 0
	check "$bin: the registered callback is still step, and every pointer works" \
		wait_match "$T/$exe.out" "^step\(3\)=5 registered=1 direct=5 twice=6$"
	check "$bin: never a mismatch" not grep -q "registered=0" "$T/$exe.out"
done
finish

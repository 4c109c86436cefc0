#!/bin/bash
# Thread-local variables of a shared library loaded at startup, reached
# initial-exec: by a patch to the library itself (its own code is built
# -ftls-model=initial-exec) and by a patch to the program (an extern
# __thread of the library).  Four threads each keep their own values.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/tlslib
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
start "$T/out" "$T/app/app"
check "target prints" wait_lines "$T/out" 8
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched-lib" -o "$T/lib.qpatch" --binary libtlsv.so \
	--target "$T/app/libtlsv.so" >"$T/build-lib.out" 2>&1
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched-exe" -o "$T/exe.qpatch" \
	--target "$T/app/app" >"$T/build-exe.out" 2>&1
check "lib_step replaced in the library" grep -Eq "replaced +lib_step" "$T/build-lib.out"
check "peek replaced in the program" grep -Eq "replaced +peek" "$T/build-exe.out"
"$QP_BIN/qpatch-dump" "$T/lib.qpatch" >"$T/lib.dump"
"$QP_BIN/qpatch-dump" "$T/exe.qpatch" >"$T/exe.dump"
check "library patch: initial-exec to its own variables" sh -c \
	"grep -q 'R_X86_64_GOTTPOFF *lib_count' '$T/lib.dump' && grep -q 'R_X86_64_GOTTPOFF *lib_calls' '$T/lib.dump'"
check "program patch: initial-exec to the library's variable" sh -c \
	"grep -Eq 'TLS +GLOBAL EXTERNAL +lib_count' '$T/exe.dump' && grep -q 'R_X86_64_GOTTPOFF *lib_count' '$T/exe.dump'"
check "before: every thread adds its own K" thread_rates "$T/out" 0 1

"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/lib.qpatch" >"$T/load-lib.out" 2>&1
check "library patch applied" test $? -eq 0
n=$(wc -l <"$T/out")
wait_lines "$T/out" $((n + 12))
check "library patch: every thread adds 10*K to its own counter" thread_rates "$T/out" "$n" 10

"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/exe.qpatch" >"$T/load-exe.out" 2>&1
check "program patch applied" test $? -eq 0
n=$(wc -l <"$T/out")
wait_lines "$T/out" $((n + 12))
# peek_is FROM ADD: every line after FROM has peek = real + ADD
peek_is() {
	tail -n +$(($1 + 1)) "$T/out" | awk -v add="$2" '
		/^t=/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
			if (v["peek"] != v["real"] + add) bad++; seen++ }
		END { exit bad || seen < 8 }'
}
check "program patch reads each thread's own library counter" peek_is "$n" 1000000
check "and the library patch still counts per thread" thread_rates "$T/out" "$n" 10

"$QP_BIN/qpatch-load" --undo "$TARGET_PID" >"$T/undo1.out" 2>&1 &&
	"$QP_BIN/qpatch-load" --undo "$TARGET_PID" >"$T/undo2.out" 2>&1
check "both undone" test $? -eq 0
n=$(wc -l <"$T/out")
wait_lines "$T/out" $((n + 12))
check "old code again: K per step" thread_rates "$T/out" "$n" 1
check "old peek again" peek_is "$n" 0
check "target alive" alive "$TARGET_PID"
finish

#!/bin/bash
# Thread-local variables of a library loaded with dlopen after the threads
# started (dynamic TLS, per-thread blocks from __tls_get_addr): a patch to
# it uses general-dynamic (TLSGD) and local-dynamic (TLSLD + DTPOFF32)
# accesses with the module id the dynamic linker gave the library.  Four
# threads each keep their own values.  An initial-exec reference to such a
# library is refused: it has no static TLS offset; TLS descriptors are
# refused when the patch is built.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/tlsdl
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
(cd "$T/app" && exec ./app ./libplug.so) >"$T/out" 2>&1 &
PIDS+=($!)
TARGET_PID=$!
check "target prints" wait_lines "$T/out" 8
check "the plugin is loaded" grep -q libplug.so "/proc/$TARGET_PID/maps"
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --binary libplug.so \
	--target "$T/app/libplug.so" >"$T/build.out" 2>&1
check "plug_step replaced" grep -Eq "replaced +plug_step" "$T/build.out"
"$QP_BIN/qpatch-dump" "$T/fix.qpatch" >"$T/dump"
check "general-dynamic reference" grep -q "R_X86_64_TLSGD *plug_count" "$T/dump"
check "local-dynamic references" sh -c "grep -q 'R_X86_64_TLSLD' '$T/dump' && grep -q 'R_X86_64_DTPOFF32 *plug_last' '$T/dump'"
check "calls to __tls_get_addr" grep -q "R_X86_64_PLT32 *__tls_get_addr" "$T/dump"
check "before: every thread adds its own K" thread_rates "$T/out" 0 1

# the same change built initial-exec: refused, nothing changed
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched-ie" -o "$T/ie.qpatch" --binary libplug.so \
	--target "$T/app/libplug.so" >"$T/build-ie.out" 2>&1
check "initial-exec patch built" grep -q "R_X86_64_GOTTPOFF" <("$QP_BIN/qpatch-dump" "$T/ie.qpatch")
maps=$(maps_of "$TARGET_PID")
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/ie.qpatch" >"$T/load-ie.out" 2>&1
check "initial-exec reference to dynamic TLS refused" test $? -eq 1
check "saying why" grep -q "of 'libplug.so' has no static TLS offset" "$T/load-ie.out"
check "target unchanged" test "$maps" = "$(maps_of "$TARGET_PID")"

# TLS descriptors (-mtls-dialect=gnu2) are refused by the builder
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched-desc" -o "$T/desc.qpatch" --binary libplug.so \
	--target "$T/app/libplug.so" >"$T/build-desc.out" 2>&1
check "TLS descriptors refused at build time" test $? -eq 1 -a ! -e "$T/desc.qpatch"
check "saying why" grep -q "TLS descriptors (-mtls-dialect=gnu2) are not supported" "$T/build-desc.out"

"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/load.out" 2>&1
check "applied" test $? -eq 0
n=$(wc -l <"$T/out")
wait_lines "$T/out" $((n + 12))
check "every thread adds 10*K to its own counter" thread_rates "$T/out" "$n" 10
"$QP_BIN/qpatch-load" --undo "$TARGET_PID" >"$T/undo.out" 2>&1
check "undone" test $? -eq 0
n=$(wc -l <"$T/out")
wait_lines "$T/out" $((n + 12))
check "old code again: K per step" thread_rates "$T/out" "$n" 1
check "target alive" alive "$TARGET_PID"
finish

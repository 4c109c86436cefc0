#!/bin/bash
# Hand-written patches as shared libraries (qpatch-load --so): a library
# built with a plain "cc -shared -fPIC" and qpatch/so.h is loaded into a
# running multi-threaded program with dlopen, redirects a global, a static
# named by its file, and a function that reads the program's static through
# QPATCH_SYM; --list shows it; undo restores the program and unloads the
# library.  Every refusal leaves the program as it was.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/sopatch
INC=$QP_SRC/format/include
LOAD=$QP_BIN/qpatch-load
CC=${CC:-cc}

# the program, as deployed: exports its functions (-rdynamic) so a library can call them
$CC -O2 -g -pthread -rdynamic -o "$T/soapp" "$P/main.c" "$P/a.c" "$P/b.c" ||
	{ fail "build the program"; finish; exit 1; }
for f in fix fix_slow fix_dlbusy bad_missing bad_ambiguous bad_target bad_undefined bad_interposed nosection; do
	$CC -shared -fPIC -O2 -I"$INC" -o "$T/$f.so" "$P/$f.c" || fail "build $f.so"
done
head -c 3000 "$T/fix.so" >"$T/truncated.so"
echo "not a library" >"$T/text.so"

start "$T/out" "$T/soapp"
APP=$TARGET_PID
check "target prints" wait_lines "$T/out" 3
check "4 threads" test "$(ls /proc/$APP/task | wc -l)" -eq 4
maps_has() { grep -q "$1" "/proc/$APP/maps"; }
lib_mapped() { grep -q " $T/fix.so\$" "/proc/$APP/maps"; }
orig_line='compute=42 a=101 b=201 counter=[0-9]+ status=-1'

# refusals: a clear reason, non-zero exit, the target untouched
refuse() { # refuse WHAT SO REGEX [PID]
	local n
	n=$(wc -l <"$T/out")
	"$LOAD" --so "$2" "${4:-$APP}" >"$T/refuse.out" 2>&1
	check "$1: refused" test $? -ne 0
	check "$1: says why" grep -Eq "$3" "$T/refuse.out"
	check "$1: nothing loaded" sh -c "! grep -q -e '$2' -e memfd:qpatch /proc/${4:-$APP}/maps"
	[ -n "${4:-}" ] && return
	check "$1: the program runs unchanged" wait_after "$T/out" "$n" "$orig_line"
}
refuse "missing symbol" "$T/bad_missing.so" "'no_such_function' is not a function of"
refuse "ambiguous static" "$T/bad_ambiguous.so" "'helper' is ambiguous .*a\.c, b\.c.*file\.c:helper"
refuse "wrong target" "$T/bad_target.so" "maps no object named 'not-soapp'"
refuse "not ELF" "$T/text.so" "is not a shared library.*not an ELF"
refuse "truncated" "$T/truncated.so" "is truncated"
refuse "no table" "$T/nosection.so" "has no .qpatch.so section"
cp "$T/soapp" "$T/exe.so"
refuse "an executable" "$T/exe.so" "is not a shared library"
refuse "dlopen fails" "$T/bad_undefined.so" "dlopen of .* failed .*undefined symbol: no_such_symbol_anywhere"
refuse "interposed replacement" "$T/bad_interposed.so" "not in the library's code.*make it static"
# a store whose policy requires signed patches: a library carries none
mkdir "$T/store" && chmod 755 "$T/store"
openssl genpkey -algorithm ed25519 -out "$T/store/k.pem" 2>/dev/null
openssl pkey -in "$T/store/k.pem" -pubout -out "$T/store/pub.pem" 2>/dev/null
printf 'require-signature\ntrusted-key pub.pem\n' >"$T/store/policy"
QPATCH_STORE=$T/store refuse "the store's policy requires signatures" "$T/fix.so" \
	"policy requires signed patches, and a hand-written .so carries no signature"
rm -rf "$T/store"

# a failure at each step (1 held .. 8 all jumps written): rolled back, the
# library unloaded, the record gone, the program unchanged
for step in 1 2 3 4 5 6 7 8; do
	n=$(wc -l <"$T/out")
	QPATCH_FAULT_AT=$step "$LOAD" --so "$T/fix.so" "$APP" >"$T/fault.out" 2>&1
	check "failure after step $step: refused" test $? -ne 0
	check "failure after step $step: rolled back" grep -q "injected failure after step $step" "$T/fault.out"
	check "failure after step $step: library unloaded, no record" \
		sh -c "! grep -q -e '$T/fix.so' -e memfd:qpatch /proc/$APP/maps"
	check "failure after step $step: the program runs unchanged" wait_after "$T/out" "$n" "$orig_line"
done

# apply
n=$(wc -l <"$T/out")
"$LOAD" --so "$T/fix.so" "$APP" >"$T/apply.out" 2>&1
check "applied" test $? -eq 0
cat "$T/apply.out"
check "3 functions redirected" grep -q "3 function(s) redirected" "$T/apply.out"
check "new code runs: compute triples, b.c's helper calls the program's call_a" \
	wait_after "$T/out" "$n" 'compute=63 a=101 b=1101 counter=[0-9]+ status=[0-9]+'
line=$(tail -n +"$((n + 1))" "$T/out" | grep -m1 -E 'compute=63')
c=$(echo "$line" | sed -E 's/.*counter=([0-9]+).*/\1/')
s=$(echo "$line" | sed -E 's/.*status=([0-9]+).*/\1/')
check "status() reads main.c's static counter through QPATCH_SYM ($s = $c)" test "$s" -eq "$c"
check "library mapped" lib_mapped
"$LOAD" --so "$T/fix.so" "$APP" >"$T/again.out" 2>&1
check "applied again: refused as already applied" grep -q "already applied" "$T/again.out"

"$LOAD" --list "$APP" >"$T/list.out" 2>&1
cat "$T/list.out"
check "--list: the patch" grep -q "patch 'fix.so' on 'soapp'" "$T/list.out"
check "--list: its library" grep -q "library $T/fix.so (dlopen handle 0x" "$T/list.out"
check "--list: compute redirected" grep -Eq "compute 0x[0-9a-f]+ -> 0x" "$T/list.out"
"$LOAD" --list --json "$APP" >"$T/list.json" 2>&1
check "--list --json: kind so" grep -q '"kind":"so","library":"'"$T/fix.so"'"' "$T/list.json"

# undo
n=$(wc -l <"$T/out")
"$LOAD" --undo "$APP" >"$T/undo.out" 2>&1
check "undone" test $? -eq 0
cat "$T/undo.out"
check "old code runs again" wait_after "$T/out" "$n" "$orig_line"
check "library unloaded" sh -c "! grep -q ' $T/fix.so\$' /proc/$APP/maps"
check "record removed" sh -c "! grep -q memfd:qpatch /proc/$APP/maps"
"$LOAD" --list "$APP" >"$T/list2.out" 2>&1
check "--list: nothing applied" grep -q "no patches applied" "$T/list2.out"

# apply again after undo: works, then undone again
"$LOAD" --so "$T/fix.so" "$APP" >"$T/apply2.out" 2>&1
check "applied a second time" test $? -eq 0
"$LOAD" --undo "$APP" fix.so >"$T/undo2.out" 2>&1
check "undone by id" test $? -eq 0
check "unloaded again" sh -c "! grep -q ' $T/fix.so\$' /proc/$APP/maps"

# undo while threads run inside the library: the old code is back at once,
# the library stays loaded (said so) until a later undo finds it unused
"$LOAD" --so "$T/fix_slow.so" "$APP" >"$T/slow.out" 2>&1
check "slow fix applied" test $? -eq 0
n=$(wc -l <"$T/out")
check "slow fix runs" wait_after "$T/out" "$n" 'compute=84 .*'
"$LOAD" --undo -r 1 "$APP" >"$T/slowundo.out" 2>&1
check "slow fix undone" test $? -eq 0
cat "$T/slowundo.out"
check "undo says the library is kept, and why" grep -Eq "kept because thread [0-9]+ .*fix_slow.so" "$T/slowundo.out"
check "the library is still mapped" grep -q " $T/fix_slow.so\$" "/proc/$APP/maps"
n=$(wc -l <"$T/out")
check "old code runs at once" wait_after "$T/out" "$n" "$orig_line"
"$LOAD" --so "$T/fix.so" "$APP" >/dev/null 2>&1 && "$LOAD" --undo "$APP" >"$T/undo3.out" 2>&1
check "a later undo unloads the kept library" sh -c "! grep -q '$T/fix_slow.so' /proc/$APP/maps"
check "... and every library" sh -c "! grep -q -e '$T/fix.so' -e memfd:qpatch /proc/$APP/maps"

# a thread inside dl_iterate_phdr holds the dynamic linker's lock: dlopen
# would wait for it, so no thread may run it
$CC -O2 -g -pthread -o "$T/dlbusy" "$P/dlbusy.c" || fail "build dlbusy"
start "$T/dout" "$T/dlbusy"
check "dlbusy ready" wait_lines "$T/dout" 1
sleep 0.2
refuse "a thread holds the dynamic linker's lock" "$T/fix_dlbusy.so" \
	"no thread of process [0-9]+ may run dlopen now: thread [0-9]+ is inside dl_iterate_phdr .*holds the dynamic linker's lock" "$TARGET_PID"

# examples/handwritten: the ledger's fee fixed by hand, statics through QPATCH_SYM
cp -a "$QP_SRC/examples/ledger/orig" "$T/ledger" && make -s -C "$T/ledger" >"$T/ledger.log" 2>&1 &&
	$CC -shared -fPIC -O2 -Wall -Wextra -Werror -I"$INC" -o "$T/fix_fee.so" \
		"$QP_SRC/examples/handwritten/fix_fee.c" || fail "build the ledger and fix_fee.so"
start "$T/lout" "$T/ledger/ledger" 20
check "ledger runs" wait_lines "$T/lout" 2
check "ledger: fee is 15%" grep -Eq "balance=10\.01 fee=1\.50\$" "$T/lout"
"$LOAD" --so "$T/fix_fee.so" "$TARGET_PID" >"$T/lapply.out" 2>&1
check "example applied" test $? -eq 0
n=$(wc -l <"$T/lout")
check "example: reports fixed" wait_after "$T/lout" "$n" "tick [0-9]+: deposits=[0-9]+ balance=[0-9.]+ fee=[0-9.]+ \(fixed by hand\)"
line=$(grep -m1 "fixed by hand" "$T/lout")
bal=$(echo "$line" | sed -E 's/.*balance=([0-9]+)\.([0-9]+).*/\1\2/')
fee=$(echo "$line" | sed -E 's/.*fee=([0-9]+)\.([0-9]+).*/\1\2/')
check "example: the fee is 1.5% of the balance the program kept ($fee of $bal)" \
	test "$((10#$fee))" -eq "$((10#$bal * 15 / 1000))"
"$LOAD" --undo "$TARGET_PID" >/dev/null 2>&1
check "example undone" test $? -eq 0

# a static program has no dlopen: a .qpatch is needed there
mkdir -p "$T/static"
if $CC -O2 -g -pthread -static -o "$T/static/soapp" "$P/main.c" "$P/a.c" "$P/b.c" 2>/dev/null; then
	start "$T/sout" "$T/static/soapp"
	check "static target prints" wait_lines "$T/sout" 2
	refuse "static program" "$T/fix.so" "has no dlopen .*build a .qpatch patch instead" "$TARGET_PID"
else
	echo "skip: no static C library to build a static program"
fi
finish

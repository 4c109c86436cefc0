#!/bin/bash
# The type check of hand-written .so patches: with DWARF on both sides
# (the library built with -g, the target's in the file or in a separate
# debug file), a replacement whose prototype differs from the old
# function's is refused, naming the function and the parameter, and the
# target is left as it was; one that matches applies; --no-type-check
# applies a mismatch anyway; without DWARF on either side the check is
# skipped, which --verbose says.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/sotype
INC=$QP_SRC/format/include
LOAD=$QP_BIN/qpatch-load
CC=${CC:-cc}

mkdir -p "$T/g" "$T/strip" "$T/dbg"
# exported (-rdynamic): the stripped copies keep the names in .dynsym
$CC -O2 -g -rdynamic -o "$T/g/sotype" "$P/main.c" || { fail "build the program"; finish; exit 1; }
# the same program stripped, once with no DWARF at all, once with its
# DWARF in a separate file found by its .gnu_debuglink
strip -o "$T/strip/sotype" "$T/g/sotype"
objcopy --only-keep-debug "$T/g/sotype" "$T/dbg/sotype.debug" &&
	(cd "$T/dbg" && strip -o sotype "$T/g/sotype" && objcopy --add-gnu-debuglink=sotype.debug sotype) ||
	fail "separate debug file"
for f in fix_ok fix_params fix_ret fix_struct; do
	$CC -shared -fPIC -O2 -g -I"$INC" -o "$T/$f.so" "$P/$f.c" || fail "build $f.so"
done
mkdir -p "$T/nog" && $CC -shared -fPIC -O2 -I"$INC" -o "$T/nog/fix_ok.so" "$P/fix_ok.c" ||
	fail "build fix_ok.so without -g"
check "the library built without -g has no DWARF" sh -c "! readelf -S '$T/nog/fix_ok.so' | grep -q debug_info"

orig='scale=42 area=12'
run() { # run DIR: start that build of the program
	start "$T/out.$1" "$T/$1/sotype"
	APP=$TARGET_PID
	wait_lines "$T/out.$1" 2 || fail "$1: the program runs"
}
refuse() { # refuse WHAT SO REGEX [OPTIONS...]
	local what=$1 so=$2 re=$3 n before
	shift 3
	n=$(wc -l <"$OUT")
	before=$(maps_of "$APP")
	"$LOAD" "$@" --so "$so" "$APP" >"$T/r.out" 2>&1
	check "$what: refused" test $? -ne 0
	check "$what: says why" grep -Eq "$re" "$T/r.out"
	check "$what: the target is as it was" test "$before" = "$(maps_of "$APP")"
	check "$what: the old code runs" wait_after "$OUT" "$n" "$orig"
}
apply() { # apply WHAT SO EXPECT [OPTIONS...]: applied, EXPECT runs, undone
	local what=$1 so=$2 want=$3 n
	shift 3
	"$LOAD" "$@" --so "$so" "$APP" >"$T/a.out" 2>&1
	check "$what: applied" test $? -eq 0
	n=$(wc -l <"$OUT")
	check "$what: the new code runs" wait_after "$OUT" "$n" "$want"
	"$LOAD" --undo "$APP" >/dev/null 2>&1
	check "$what: undone" test $? -eq 0
}

# 1. DWARF in the program's file
run g
OUT=$T/out.g
check "runs" wait_match "$OUT" "^$orig\$"
refuse "(int) for (long, char *)" "$T/fix_params.so" \
	"type check: the replacement for 'scale' in '$T/fix_params.so' does not match it: parameter 1 is 'long int' \(signed integer, 8 bytes\) in the target, 'int' \(signed integer, 4 bytes\) in the replacement \(target: scale\(long int, char \*\), replacement: \(int\)\); --no-type-check applies it anyway"
refuse "int returned for long" "$T/fix_ret.so" \
	"replacement for 'scale' .* the return type is 'long int' \(signed integer, 8 bytes\) in the target, 'int' \(signed integer, 4 bytes\)"
refuse "struct rect for struct box" "$T/fix_struct.so" \
	"replacement for 'area' .* parameter 1 is 'struct box' \(struct, 8 bytes\) in the target, 'struct rect' \(struct, 8 bytes\) in the replacement"
apply "matching prototypes (typedef, const)" "$T/fix_ok.so" "scale=63 area=120" --verbose
cat "$T/a.out"
check "--verbose: both checked" grep -q "type check: 2 replacement(s) have the old function's prototype" "$T/a.out"
check "--verbose: nothing skipped" sh -c "! grep -q 'note: ' '$T/a.out'"
"$LOAD" --so "$T/fix_ok.so" "$APP" >"$T/a2.out" 2>&1
check "without --verbose, no type line" sh -c "! grep -q 'type check' '$T/a2.out'"
"$LOAD" --undo "$APP" >/dev/null 2>&1
apply "--no-type-check applies a mismatch" "$T/fix_params.so" "scale=63 area=12" --no-type-check -v
check "--verbose says the check was not made" grep -q "note: type check not made (--no-type-check)" "$T/a.out"
apply "library without -g: applied" "$T/nog/fix_ok.so" "scale=63 area=120" --verbose
check "--verbose says the check was skipped, and why" \
	grep -q "note: type check skipped: '$T/nog/fix_ok.so' has no DWARF (build it with -g)" "$T/a.out"

# 2. DWARF in a separate debug file: the check is made
run dbg
OUT=$T/out.dbg
check "the stripped program has no DWARF of its own" sh -c "! readelf -S '$T/dbg/sotype' | grep -q debug_info"
refuse "separate debug file: (int) for (long, char *)" "$T/fix_params.so" \
	"replacement for 'scale' .* parameter 1 is 'long int'"
apply "separate debug file: matching" "$T/fix_ok.so" "scale=63 area=120" -v
check "separate debug file: both checked" grep -q "type check: 2 replacement(s)" "$T/a.out"

# 3. no DWARF for the program: skipped, said with --verbose
run strip
OUT=$T/out.strip
apply "program without DWARF: applied" "$T/fix_params.so" "scale=63 area=12" --verbose
check "--verbose names the program without DWARF" \
	grep -q "note: type check skipped: '$T/strip/sotype' has no DWARF, in the file or a separate debug file" "$T/a.out"
finish

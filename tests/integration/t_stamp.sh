#!/bin/bash
# A tree shaped like redis: the top Makefile builds deps/lib/ into
# libfoo.a once, behind a stamp file (.make-prerequisites), and links the
# program against it.  A fix in deps/lib/x.c, or in deps/lib/foo.h, is not
# recompiled by make; qpatch-build compiles the objects that read the
# changed files again with the commands qpatch-cc recorded, compares them
# with the archive members the program was linked from, and the patch
# works live.  A changed source that no recorded compilation reads, and a
# fix that does not compile, are named in the error.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/stamp
build_tree "$P" "$T/app" || { fail "build the program"; finish; exit 1; }
# fixed trees: copies of the original with one change each
variant() { # variant NAME FILE SED
	cp -a "$P" "$T/$1" && sed -i "$3" "$T/$1/$2"
}
variant fix-x deps/lib/x.c 's/v \* 2/v * 3/'
variant fix-h deps/lib/foo.h 's/OFFSET 1/OFFSET 5/'
variant fix-extra deps/lib/extra.c 's/scale(1)/scale(2)/'
variant fix-bad deps/lib/x.c 's/v \* 2;/v * ;/'

start "$T/out" "$T/app/prog"
check "program runs" wait_match "$T/out" "^scale\(10\)=20 offset\(\)=1$"

# 1. the fix in deps/lib/x.c
"$QP_BIN/qpatch-build" "$T/app" "$T/fix-x" -o "$T/x.qpatch" --target "$T/app/prog" \
	-w "$T/work" >"$T/x-build.out" 2>&1
check "x.c fix: patch built" test $? -eq 0
check "x.c fix: x.o compiled again, which make did not" \
	grep -q "recompiling 'deps/lib/x.o' (it reads 'deps/lib/x.c', which changed)" "$T/x-build.out"
check "x.c fix: compared with the archive member" \
	grep -q "'deps/lib/x.o': the target's archive member is still the original object" "$T/x-build.out"
check "x.c fix: scale replaced" grep -Eq "^ +replaced +scale .*deps/lib/x\.o$" "$T/x-build.out"
check "x.c fix: only scale" test "$(grep -Ec '^ +(replaced|new function)' "$T/x-build.out")" -eq 1
check "x.c fix: the report counts it" grep -q "objects compared: 1; compiled again by qpatch-build (the build did not): 1" \
	"$T/x-build.out"
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/x.qpatch" >"$T/x-load.out" 2>&1
check "x.c fix: applied" test $? -eq 0
check "x.c fix: the program runs the fixed scale()" wait_match "$T/out" "^scale\(10\)=30 offset\(\)=1$"
"$QP_BIN/qpatch-load" --undo "$TARGET_PID" >"$T/x-undo.out" 2>&1
check "x.c fix: undone" test $? -eq 0
# a line whose scale() ran after the undo: from the second line printed after it
N=$(wc -l <"$T/out")
check "x.c fix: the old scale() again" wait_after "$T/out" $((N + 1)) 'scale\(10\)=20 offset\(\)=1'

# 2. a fixed header: the objects whose compilation read it (y.o), from
# their dependency files; the warm work directory puts x.o back first
"$QP_BIN/qpatch-build" "$T/app" "$T/fix-h" -o "$T/h.qpatch" --target "$T/app/prog" \
	-w "$T/work" >"$T/h-build.out" 2>&1
check "foo.h fix: patch built" test $? -eq 0
check "foo.h fix: y.o compiled again" \
	grep -q "recompiling 'deps/lib/y.o' (it reads 'deps/lib/foo.h', which changed)" "$T/h-build.out"
check "foo.h fix: offset replaced" grep -Eq "^ +replaced +offset .*deps/lib/y\.o$" "$T/h-build.out"
check "foo.h fix: scale untouched" not grep -Eq "^ +replaced +scale" "$T/h-build.out"
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/h.qpatch" >"$T/h-load.out" 2>&1
check "foo.h fix: applied" test $? -eq 0
check "foo.h fix: the program runs the fixed offset()" wait_match "$T/out" "^scale\(10\)=20 offset\(\)=5$"
"$QP_BIN/qpatch-load" --undo "$TARGET_PID" >"$T/h-undo.out" 2>&1
check "foo.h fix: undone" test $? -eq 0
N=$(wc -l <"$T/out")
check "foo.h fix: the old offset() again" wait_after "$T/out" $((N + 1)) 'scale\(10\)=20 offset\(\)=1'

# 3. a changed source that the build never compiles
"$QP_BIN/qpatch-build" "$T/app" "$T/fix-extra" -o "$T/extra.qpatch" --target "$T/app/prog" \
	-w "$T/work" >"$T/extra-build.out" 2>&1
check "extra.c: refused" test $? -ne 0
check "extra.c: no patch written" test ! -e "$T/extra.qpatch"
check "extra.c: the message names the file" grep -q \
	"qpatch-build: .*nothing to compare: the change is in 'deps/lib/extra.c', which no compilation that qpatch-cc recorded reads" \
	"$T/extra-build.out"
check "extra.c: not the misleading message" not grep -q "recompiled nothing" "$T/extra-build.out"

# 4. a fix that does not compile: the object and the compiler's error
"$QP_BIN/qpatch-build" "$T/app" "$T/fix-bad" -o "$T/bad.qpatch" --target "$T/app/prog" \
	-w "$T/work" >"$T/bad-build.out" 2>&1
check "broken fix: refused" test $? -ne 0
check "broken fix: the message names the object and the compiler's error" grep -q \
	"qpatch-build: patched build: recompiling 'deps/lib/x.o' with the command recorded for it: .*x.c:[0-9]*:[0-9]*: error:" \
	"$T/bad-build.out"

# 5. a tree deployed without records (an older qpatch-cc): x.c cannot be
# compiled again, and the program is linked from an x.o
cp -a "$T/app" "$T/old" && find "$T/old" -name .qpatch-cc -prune -exec rm -rf {} +
"$QP_BIN/qpatch-build" "$T/old" "$T/fix-x" -o "$T/old.qpatch" --target "$T/app/prog" \
	>"$T/old-build.out" 2>&1
check "no records: refused" test $? -ne 0
check "no records: the message names the file and why" grep -q \
	"qpatch-build: .*'deps/lib/x.c' changed and .*, but no compilation of it was recorded" \
	"$T/old-build.out"

# 6. one tree for both versions (--no-namespace): the same, and the next
# run puts the original x.o back before the header fix
"$QP_BIN/qpatch-build" --no-namespace "$T/app" "$T/fix-x" -o "$T/nx.qpatch" \
	--target "$T/app/prog" -w "$T/work1" >"$T/nx-build.out" 2>&1
check "one tree, x.c fix: scale replaced" grep -Eq "^ +replaced +scale .*deps/lib/x\.o$" "$T/nx-build.out"
"$QP_BIN/qpatch-build" --no-namespace "$T/app" "$T/fix-h" -o "$T/nh.qpatch" \
	--target "$T/app/prog" -w "$T/work1" >"$T/nh-build.out" 2>&1
check "one tree, then foo.h fix: offset replaced" grep -Eq "^ +replaced +offset " "$T/nh-build.out"
check "one tree, then foo.h fix: x.o is the original again" not grep -Eq "scale" "$T/nh-build.out"
finish

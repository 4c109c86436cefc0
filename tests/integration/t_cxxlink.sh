#!/bin/bash
# A make tree whose two programs are linked by the C++ driver ($(CXX)),
# deployed with make CC=qpatch-cc CXX=qpatch-c++.  qpatch-build's own make
# gets both wrappers, so qpatch-c++ logs the links: the fix's object of
# the other program (tool.c) is left out as not linked into prog, and the
# patch applies live.  Deployed and built with the plain C++ compiler as
# the linker, no link of prog is seen.  A compile-and-link command with a C and a C++ source
# is split as qpatch-cc splits one.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/cxxlink
cp -a "$P/orig" "$T/app"
make -s -C "$T/app" CC="$QP_BIN/qpatch-cc" CXX="$QP_BIN/qpatch-c++" >"$T/deploy.log" 2>&1
check "deployed build" test -x "$T/app/prog"
start "$T/out" "$T/app/prog"
check "target prints" wait_match "$T/out" "^compute\([0-9]+\)=[0-9]+$"

"$QP_BIN/qpatch-build" "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/prog" \
	--binary prog >"$T/build.out" 2>&1
check "patch built" test $? -eq 0
check "compute replaced" grep -Eq "^ +replaced +compute " "$T/build.out"
check "the link of prog is known" not grep -q "no link of" "$T/build.out"
check "tool.o left out: not linked into prog" \
	grep -q "1 recompiled object not linked into 'prog': left out" "$T/build.out"
check "one object compared" grep -q "objects compared: 1;" "$T/build.out"

n=$(wc -l <"$T/out")
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/load.out" 2>&1
check "applied" test $? -eq 0
check "new code runs" sh -c "sleep 0.3; tail -n +$((n + 2)) '$T/out' | grep -Eq '=[0-9]*1[0-9]{6}$'"

check "the deployed link is recorded beside prog" grep -q "	$T/app/calc.o" "$T/app/.qpatch-cc/prog.link"

# deployed and built with the plain C++ compiler as the linker: no link seen
cp -a "$P/orig" "$T/plain"
make -s -C "$T/plain" CC="$QP_BIN/qpatch-cc" CXX=c++ >"$T/plain.log" 2>&1
check "plain c++: no link record" test ! -e "$T/plain/.qpatch-cc/prog.link"
"$QP_BIN/qpatch-build" "$T/plain" "$P/patched" -o "$T/fix2.qpatch" --binary prog \
	--build-cmd 'make CXX=c++' >"$T/build2.out" 2>&1
check "plain c++: no link of prog seen" grep -q "no link of 'prog' seen" "$T/build2.out"

# one command compiling a C and a C++ source and linking them: the C
# source is compiled to an object of its own (logged), the C++ one by the
# link (logged too)
M=$T/mixed
mkdir -p "$M"
printf 'extern "C" int val(void) { return 41; }\n' >"$M/val.cpp"
printf '#include <stdio.h>\nextern "C" int val(void);\nint main(void) { printf("%%d\\n", val() + 1); return 0; }\n' >"$M/m.c"
(cd "$M" && QPATCH_CC_LOG="$M/log" "$QP_BIN/qpatch-c++" -O2 -o mixed m.c val.cpp) >"$M/out" 2>&1
check "c++ -o mixed m.c val.cpp builds" test $? -eq 0
check "and runs" test "$("$M/mixed")" = 42
check "m.c compiled to an object and logged" grep -q "$M/m.c	$M/.qpatch-cc/mixed-m.o" "$M/log"
check "the link logged" grep -q "^$M	$M/mixed	$M/.qpatch-cc/mixed-m.o" "$M/log.links"
check "and recorded" grep -q "^$M	$M/mixed	$M/.qpatch-cc/mixed-m.o" "$M/.qpatch-cc/mixed.link"
check "no record of the compilation (qpatch-build would compile it as C)" \
	test ! -e "$M/.qpatch-cc/mixed-m.o.cmd"
finish

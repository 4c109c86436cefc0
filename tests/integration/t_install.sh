#!/bin/bash
# "cmake --install" of this build into a fresh prefix: programs in bin/, the
# agent library in lib/qpatch/,
# every docs/man page in share/man/manN with the version filled in, the
# docs the pages point at, and installed programs that work together
# (qpatch-build finds the qpatch-cc installed next to it).
. "$(dirname "$0")/lib.sh"

BUILD=$(dirname "$QP_BIN")
P=$T/prefix
want=$(sed -nE 's/^project\(qpatch VERSION ([0-9.]+).*/\1/p' "$QP_SRC/CMakeLists.txt")
cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1
check "cmake --install succeeds" test $? -eq 0

for prog in "$QP_BIN"/qpatch*; do
	name=$(basename "$prog")
	check "$name installed in bin/ or sbin/, executable" \
		sh -c "test -x '$P/bin/$name' || test -x '$P/sbin/$name'"
done
check "the agent library installed in lib/qpatch/" test -f "$P/lib/qpatch/libqpatch-agent.so"
check "installed qpatch-load --version" test "$("$P/bin/qpatch-load" --version)" = "qpatch-load (qpatch) $want"
n=0
for page in "$QP_SRC"/docs/man/*.[1-8]; do
	base=$(basename "$page")
	inst=$P/share/man/man${base##*.}/$base
	n=$((n + 1))
	check "man page $base installed in man${base##*.}" test -f "$inst"
	check "$base: version filled in" grep -q "^\.TH .*\"qpatch $want\"" "$inst"
	check "$base: no @...@ left" not grep -q '@[A-Z_]*@' "$inst"
done
check "docs/man has pages ($n)" test "$n" -ge 5
check "format.md, which qpatch-format(5) points at, installed" test -f "$P/share/doc/qpatch/format.md"
if [ -f "$QP_SRC/loader/host/qpatchd.service" ]; then
	check "qpatchd.service installed" test -f "$P/lib/systemd/system/qpatchd.service"
else
	check "no systemd unit without loader/host/qpatchd.service" not test -e "$P/lib/systemd"
fi

check "qpatch/so.h installed in include/" test -f "$P/include/qpatch/so.h"
echo '#include <qpatch/so.h>
QPATCH_TARGET("prog");
static int f(int x) { return x; }
QPATCH_REPLACE(g, f);' >"$T/fix.c"
check "a .so patch builds against the installed header alone" \
	${CC:-cc} -shared -fPIC -I"$P/include" -o "$T/fix.so" "$T/fix.c"

# the installed qpatch-build uses the installed qpatch-cc
EX=$QP_SRC/examples/ledger
cp -a "$EX/orig" "$T/app" && make -s -C "$T/app" CC="$P/bin/qpatch-cc" >"$T/app.log" 2>&1
check "ledger built with the installed qpatch-cc" test -x "$T/app/ledger"
"$P/bin/qpatch-build" -q "$T/app" "$EX/patched" -o "$T/fix.qpatch" --target "$T/app/ledger" \
	>"$T/build.out" 2>&1
check "installed qpatch-build makes the patch" test -s "$T/fix.qpatch"
check "installed qpatch-dump reads it" sh -c "'$P/bin/qpatch-dump' '$T/fix.qpatch' | grep -q 'tool version:   $want'"
finish

#!/bin/bash
# A tree configured where it is, whose Makefile names the source tree by
# absolute path (autotools' abs_srcdir, meson, CMake in-tree), with the fix
# in a header.  qpatch-build builds at the original tree's path in a
# private mount namespace: the header's fix is compiled in, the build is
# the deployed one (same build-id), the user's tree is not touched and no
# mount is left behind.  With --no-namespace the copy would compile
# against the original tree's header (make does not see the fix; the
# object that read the header, from its dependency file, compiled again,
# names the original tree): refused, saying so.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/intree
cp -a "$P/orig" "$T/app"
(cd "$T/app" && CC="$QP_BIN/qpatch-cc" ./configure && make) >"$T/deploy.log" 2>&1 ||
	{ fail "deploy build"; finish; exit 1; }
tree_sum() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum; find . -printf '%p %T@\n' | sort); }
tree_sum "$T/app" >"$T/sum.before"
mounts_before=$(grep -c "" /proc/self/mountinfo)

start "$T/out" "$T/app/prog"
check "target prints the old fee" wait_match "$T/out" "^fee\(1000\)=150$"

"$QP_BIN/qpatch-build" "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/prog" \
	--build-cmd make -w "$T/work" >"$T/build.out" 2>&1
check "patch built from a header-only fix" test $? -eq 0
check "fee replaced" grep -Eq "^ +replaced +fee " "$T/build.out"
check "no fallback to the work tree's path" not grep -q "not at the original tree's path" "$T/build.out"
check "same build-id as the deployed program (nothing to excuse)" not grep -q "only debug info differs" "$T/build.out"
check "the user's tree is untouched" diff -q <(tree_sum "$T/app") "$T/sum.before"
check "no mount left behind" test "$(grep -c "" /proc/self/mountinfo)" -eq "$mounts_before"
check "nothing mounted at the tree" not grep -q " $T/app " /proc/self/mountinfo

"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/load.out" 2>&1
check "applied" test $? -eq 0
check "the header's fix runs" wait_match "$T/out" "^fee\(1000\)=20$"

# a warm run: the same work directory, the original build updated
"$QP_BIN/qpatch-build" "$T/app" "$P/patched" -o "$T/fix2.qpatch" --target "$T/app/prog" \
	--build-cmd make -w "$T/work" >"$T/build2.out" 2>&1
check "warm run builds the same patch" cmp -s "$T/fix.qpatch" "$T/fix2.qpatch"

"$QP_BIN/qpatch-build" --no-namespace "$T/app" "$P/patched" -o "$T/nons.qpatch" \
	--target "$T/app/prog" --build-cmd make >"$T/nons.out" 2>&1
check "--no-namespace: refused" test $? -ne 0
check "--no-namespace: says the copy builds against the original tree" \
	grep -q "the build of the copy refers to the original tree ('-I$T/app/include')" "$T/nons.out"
check "--no-namespace: no patch written" test ! -e "$T/nons.qpatch"
check "the user's tree is still untouched" diff -q <(tree_sum "$T/app") "$T/sum.before"
finish

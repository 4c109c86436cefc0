#!/bin/bash
# An autoconf/automake project (configure honours CC, config.h, automake's
# depcomp), patched live in the two ways such trees are deployed:
#  1. configured and built inside the source tree: the default build
#     command (make CC=qpatch-cc) rebuilds the configured copy;
#  2. a clean source tree deployed from a separate build directory
#     (../src/configure): --build-cmd './configure && make' configures
#     qpatch-build's own copy; the deployed binary's debug info names its
#     build directory, so its code is what is checked.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/autotools
if ! command -v autoreconf >/dev/null || ! command -v automake >/dev/null; then
	fail "autoreconf and automake are needed (scripts/install-deps.sh installs them)"
	finish
	exit 1
fi

# live NAME BINARY BUILD-ARGS...: start BINARY, patch it, check the output.
live() {
	local name=$1 bin=$2
	shift 2
	start "$T/$name.out" "$bin"
	check "$name: target prints" wait_match "$T/$name.out" "^compute\(3\)=22$"
	"$QP_BIN/qpatch-build" "$@" -o "$T/$name.qpatch" --target "$bin" >"$T/$name.build" 2>&1
	check "$name: compute replaced" grep -Eq "replaced +compute +src/calc.c:4" "$T/$name.build"
	"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/$name.qpatch" >"$T/$name.load" 2>&1
	check "$name: applied" test $? -eq 0
	check "$name: new code runs" wait_match "$T/$name.out" "^compute\(3\)=1021$"
	[ "$FAILED" -gt 0 ] && cat "$T/$name.build" "$T/$name.load"
}

# 1. configured in the tree
cp -a "$P/orig" "$T/intree"
(cd "$T/intree" && autoreconf -i && ./configure CC="$QP_BIN/qpatch-cc" && make) >"$T/intree.log" 2>&1
check "in-tree build" test -x "$T/intree/autoapp"
live intree "$T/intree/autoapp" "$T/intree" "$P/patched"

# 2. clean source, separate build directory, configure run by qpatch-build
cp -a "$P/orig" "$T/src"
(cd "$T/src" && autoreconf -i) >"$T/src.log" 2>&1
mkdir "$T/deploy"
(cd "$T/deploy" && ../src/configure CC="$QP_BIN/qpatch-cc" && make) >"$T/deploy.log" 2>&1
check "out-of-tree build" test -x "$T/deploy/autoapp"
check "the source tree stays clean" test ! -e "$T/src/config.status"
live outtree "$T/deploy/autoapp" "$T/src" "$P/patched" --build-cmd './configure && make' --binary autoapp
check "code checked, not the build-id" grep -q "only debug info differs" "$T/outtree.build"
finish

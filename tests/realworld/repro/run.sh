#!/bin/bash
# Runs one reduced reproduction of a failure the real-world suite met:
#   tests/realworld/repro/run.sh NAME [BIN_DIR]
# Builds NAME/orig with qpatch-cc in a scratch copy (the deployed program),
# starts it, builds NAME/orig -> NAME/patched with qpatch-build, applies the
# patch with qpatch-load and shows the program's output before and after.
# Exit status 0 when the patch was built, applied and changed the output.
set -u
here=$(cd "$(dirname "$0")" && pwd)
name=${1:?usage: run.sh NAME [BIN_DIR]}
bin=${2:-${QP_BIN:-$here/../../../build/bin}}
bin=$(cd "$bin" && pwd) || exit 2
case=$here/$name
[ -d "$case/orig" ] || { echo "no reproduction '$name'" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qp-repro-$name.XXXXXX")
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

cp -a "$case/orig" "$tmp/orig"
make -s -C "$tmp/orig" CC="$bin/qpatch-cc" >"$tmp/deploy.log" 2>&1 ||
	{ cat "$tmp/deploy.log"; echo "deploy build failed"; exit 1; }
"$tmp/orig/prog" >"$tmp/out" 2>&1 &
pid=$!
sleep 0.5
echo "before: $(tail -n1 "$tmp/out")"
echo "\$ qpatch-build orig patched -o fix.qpatch --target orig/prog"
if ! "$bin/qpatch-build" "$tmp/orig" "$case/patched" -o "$tmp/fix.qpatch" \
	--target "$tmp/orig/prog" -w "$tmp/work" >"$tmp/build.out" 2>&1; then
	cat "$tmp/build.out"
	echo "RESULT: qpatch-build failed"
	exit 1
fi
cat "$tmp/build.out"
# NAME/expect-build: lines (extended regexps) qpatch-build's output must hold
if [ -f "$case/expect-build" ]; then
	while IFS= read -r re; do
		[ -n "$re" ] && ! grep -Eq -- "$re" "$tmp/build.out" && {
			echo "RESULT: qpatch-build's report lacks /$re/"
			exit 1
		}
	done <"$case/expect-build"
fi
"$bin/qpatch-dump" "$tmp/fix.qpatch" | sed -n '/^src symbols/,/^$/p'
echo "\$ qpatch-load PID fix.qpatch"
if ! "$bin/qpatch-load" "$pid" "$tmp/fix.qpatch" 2>&1; then
	echo "RESULT: qpatch-load failed"
	exit 1
fi
before=$(tail -n1 "$tmp/out")
sleep 0.5
after=$(tail -n1 "$tmp/out")
echo "after: $after"
if [ "$before" = "$after" ] && [ "$(sed -n 1p "$tmp/out")" = "$after" ]; then
	echo "RESULT: patch applied but the output did not change"
	exit 1
fi
echo "RESULT: ok"

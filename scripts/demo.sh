#!/bin/bash
# The qpatch demo: a running program keeps its state while a bug in it is
# fixed live.  Usage: scripts/demo.sh [BUILD_DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(cd "${1:-$ROOT/build}" && pwd)/bin
EX=$ROOT/examples/ledger
W=$(mktemp -d /tmp/qpatch-demo.XXXXXX)
trap 'kill $PID 2>/dev/null || true; rm -rf "$W"' EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { sed 's/^/    | /' "$@"; }

say "build the ledger service with qpatch-cc and start it"
cp -a "$EX/orig" "$W/app"
make -s -C "$W/app" CC="$BIN/qpatch-cc"
"$W/app/ledger" 200 >"$W/out" &
PID=$!
sleep 1.5
echo "ledger running as pid $PID; its fee should be 1.5% but is 15%:"
tail -n 3 "$W/out" | show

say "the fix (examples/ledger/patched vs orig)"
diff -u "$EX/orig/ledger.c" "$EX/patched/ledger.c" | show || true

say "qpatch-build: both trees built, objects compared, patch written"
"$BIN/qpatch-build" "$W/app" "$EX/patched" -o "$W/fix.qpatch" --target "$W/app/ledger"
"$BIN/qpatch-dump" "$W/fix.qpatch" | sed -n '1,12p' | show
echo "    readelf -S sees the sections:"
readelf -SW "$W/fix.qpatch" | grep -E '\.qpatch' | show

say "qpatch-load: patch the running process"
tail -n 1 "$W/out" | sed 's/^/before: /'
"$BIN/qpatch-load" "$PID" "$W/fix.qpatch"
sleep 1.2
echo "after (same process, tick and balance continue, fee fixed):"
tail -n 4 "$W/out" | show
"$BIN/qpatch-load" --list "$PID" | show

say "undo: the old code runs again, state still intact"
"$BIN/qpatch-load" --undo "$PID"
sleep 0.8
tail -n 3 "$W/out" | show
kill "$PID"
say "demo finished"

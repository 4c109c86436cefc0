#!/bin/bash
# A cloud host in miniature: 20 processes of one service (the ledger
# example) run; a fix goes into the patch store and qpatchd applies it to
# all 20; 5 new processes start and have the fix from their first report;
# a process of another build of the service stays untouched; removing the
# fix from the store takes it away everywhere.
#
# Usage: examples/cloud-host/walkthrough.sh [BIN_DIR]   (default: build/bin,
# else the installed programs).  Run as root.  Exits 1 if any step fails.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/build/bin}
[ -x "$BIN/qpatchd" ] || BIN=$(dirname "$(command -v qpatch-load)")
QPATCHD=$BIN/qpatchd
[ -x "$QPATCHD" ] || QPATCHD=$(command -v qpatchd)
EX=$ROOT/examples/ledger
W=$(mktemp -d /tmp/qpatch-cloud.XXXXXX)
S=$W/store
PIDS=()
FAILED=0
cleanup() {
	[ ${#PIDS[@]} -gt 0 ] && kill "${PIDS[@]}" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
expect() { # expect WHAT COMMAND...
	local what=$1
	shift
	if "$@"; then echo "   ok: $what"; else echo "   FAILED: $what"; FAILED=$((FAILED + 1)); fi
}
last_report() { tail -n 1 "$W/out.$1"; }
fixed() { last_report "$1" | grep -q "(fixed, report"; }
unfixed() { ! last_report "$1" | grep -q "fixed"; }
count() { # count PREDICATE: how many of the processes 1..N satisfy it
	local n=0 i
	for i in $(seq "$2"); do "$1" "$i" && n=$((n + 1)); done
	echo "$n"
}

say "the service, built twice: the deployed build and another build"
cp -a "$EX/orig" "$W/ledger" && make -s -C "$W/ledger" CC="$BIN/qpatch-cc"
cp -a "$EX/orig" "$W/ledger-b" && make -s -C "$W/ledger-b" CC="$BIN/qpatch-cc" CFLAGS="-O1 -g"
"$BIN/qpatch-build" -q --id ledger-fee-fix "$W/ledger" "$EX/patched" -o "$W/fix.qpatch" \
	--target "$W/ledger/ledger" | sed 's/^/   /'

say "20 processes of the deployed build, 1 of the other build"
for i in $(seq 20); do
	"$W/ledger/ledger" 100 >"$W/out.$i" 2>&1 &
	PIDS+=($!)
done
"$W/ledger-b/ledger" 100 >"$W/out.other" 2>&1 &
OTHER=$!
PIDS+=("$OTHER")
sleep 1
echo "   process 1: $(last_report 1)"

say "store the fix and start qpatchd"
"$BIN/qpatch" --store "$S" add "$W/fix.qpatch" | sed 's/^/   /'
"$QPATCHD" --store "$S" >"$W/qpatchd.log" 2>&1 &
DAEMON=$!
PIDS+=("$DAEMON")
for _ in $(seq 100); do
	"$BIN/qpatch" --store "$S" status >/dev/null 2>&1 && break
	sleep 0.1
done
sed 's/^/   | /' "$W/qpatchd.log"
sleep 0.5
expect "all 20 processes run the fix" test "$(count fixed 20)" -eq 20
echo "   process 1: $(last_report 1)"

say "5 new processes start: each gets the fix, if qpatchd wins the race before its first instruction"
for i in $(seq 21 25); do
	"$W/ledger/ledger" 100 >"$W/out.$i" 2>&1 &
	PIDS+=($!)
done
sleep 1
new_first=0
for i in $(seq 21 25); do
	head -n 1 "$W/out.$i" | grep -q "(fixed, report 1)" && new_first=$((new_first + 1))
done
grep "after exec" "$W/qpatchd.log" | sed 's/^/   | /'
expect "the 5 new processes run the fix" test "$(count fixed 25)" -eq 25
echo "   $new_first of 5 had it from their first report (held at their entry point; a small"
echo "   program's dynamic linking takes a millisecond, so on a busy machine some start first)"

say "the other build is left alone"
echo "   other build: $(tail -n 1 "$W/out.other")"
expect "the other build runs its own code" unfixed other
expect "and has no patch" sh -c "! grep -q memfd:qpatch: /proc/$OTHER/maps"
"$BIN/qpatch" --store "$S" status --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("   status: %d processes, %d up to date" % (r["summary"]["processes"], r["summary"]["up_to_date"]))'

say "remove the fix from the store: qpatchd undoes it everywhere"
"$BIN/qpatch" --store "$S" remove ledger-fee-fix | sed 's/^/   /'
sleep 1.5
expect "all 25 processes run the old code again" test "$(count unfixed 25)" -eq 25
echo "   process 1: $(last_report 1)"
echo "   qpatchd: $(grep -c "undid removed" "$W/qpatchd.log") undo lines"
kill -TERM "$DAEMON"
wait "$DAEMON"
say "walkthrough finished: $FAILED failure(s)"
[ "$FAILED" -eq 0 ]

#!/bin/bash
# Call frame information of patch code: a thread blocks in depth_b(),
# called by step_a() as a first patch replaced it, so its stack runs
# through patch code; the loader unwinds through that frame with the CFI
# the patch carries (.qpatch.eh_frame).  Then
#  - a patch replacing an unrelated function goes in, although a word on
#    that stack, above the patch frame, points into the function (without
#    the patch's CFI the walk stops at the patch frame and that word blocks
#    it: shown with QPATCH_NO_PATCH_CFI);
#  - a patch replacing step_a again is refused: the thread will return into
#    the first patch's step_a, which is named;
#  - undoing the first patch restores the old code but keeps its mapping,
#    naming the frame that will return into it.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/cfi
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
for x in a a2 c; do
	"$QP_BIN/qpatch-build" -q --id "p-$x" "$T/app" "$P/patched-$x" -o "$T/$x.qpatch" \
		--target "$T/app/chain" >"$T/build-$x.out" 2>&1
done
check "three patches built" test -s "$T/a.qpatch" -a -s "$T/a2.qpatch" -a -s "$T/c.qpatch"
check "the patch carries the CFI of step_a" sh -c \
	"'$QP_BIN/qpatch-dump' '$T/a.qpatch' | grep -Eq 'FDE image\+0x[0-9a-f]+\.\.0x[0-9a-f]+ step_a'"
check "the CFI is a section of the image" sh -c \
	"'$QP_BIN/qpatch-dump' '$T/a.qpatch' | grep -Eq '\.qpatch\.eh_frame +0x[0-9a-f]+ +0x[0-9a-f]+ +8 A-- '"
: >"$T/out"
start "$T/out" "$T/app/chain"
check "target runs" wait_match "$T/out" "unrelated\(2\)=7"
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/a.qpatch" >"$T/load-a.out" 2>&1
check "first patch (step_a) applied" test $? -eq 0
kill -USR1 "$TARGET_PID"
check "worker blocked in depth_b, called by the new step_a" wait_match "$T/out" "worker: in depth_b"
worker=$(ls "/proc/$TARGET_PID/task" | grep -v "^$TARGET_PID$" | head -n 1)

QPATCH_NO_PATCH_CFI=1 "$QP_BIN/qpatch-load" -r 5 -d 2 "$TARGET_PID" "$T/c.qpatch" >"$T/nocfi.out" 2>&1
check "without the patch's CFI: blocked by the word pointing into unrelated" sh -c \
	"grep -q \"thread $worker may return into 'unrelated' (its stack holds an address in it at 0x[0-9a-f]*, beyond what could be unwound)\" '$T/nocfi.out'"
"$QP_BIN/qpatch-load" -r 5 -d 2 "$TARGET_PID" "$T/c.qpatch" >"$T/load-c.out" 2>&1
check "with it: the unrelated patch goes in" test $? -eq 0
n=$(wc -l <"$T/out")
wait_lines "$T/out" $((n + 2))
line=$(tail -n 1 "$T/out")
i=$(echo "$line" | sed -E 's/.*unrelated\(([0-9]+)\)=.*/\1/')
v=$(echo "$line" | sed -E 's/.*=([0-9]+)$/\1/')
check "unrelated($i) = 3*$i + 2 now ($v)" test "$v" -eq $((3 * i + 2))

maps=$(maps_of "$TARGET_PID")
"$QP_BIN/qpatch-load" -r 5 -d 2 "$TARGET_PID" "$T/a2.qpatch" >"$T/load-a2.out" 2>&1
check "replacing step_a again is refused" test $? -eq 1
check "naming the thread and the first patch's step_a" grep -Eq \
	"thread $worker will return into 'step_a' of patch 'p-a' \(frame #[0-9]+, pc 0x" "$T/load-a2.out"
check "target unchanged" test "$maps" = "$(maps_of "$TARGET_PID")"

"$QP_BIN/qpatch-load" --undo "$TARGET_PID" >"$T/undo-c.out" 2>&1
rc=$?
check "undo the unrelated patch: its mapping goes" sh -c \
	"test $rc -eq 0 && ! grep -q 'memfd:qpatch:p-c' /proc/$TARGET_PID/maps"
# the first bytes of step_a in the process, and in the file
step_a_bytes() {
	local base off
	base=$(awk -v p="$T/app/chain" '$6 == p && $3 == "00000000" {print $1; exit}' "/proc/$TARGET_PID/maps" | cut -d- -f1)
	off=$(nm "$T/app/chain" | awk '$3 == "step_a" {print $1}')
	dd if="/proc/$TARGET_PID/mem" bs=1 skip=$((16#$base + 16#$off)) count=8 2>/dev/null | od -An -tx1
}
file_bytes=$(dd if="$T/app/chain" bs=1 skip=$((16#$(nm "$T/app/chain" | awk '$3 == "step_a" {print $1}'))) count=8 2>/dev/null | od -An -tx1)
check "step_a jumps to the patch before the undo" sh -c "echo '$(step_a_bytes)' | grep -q '^ *e9'"
"$QP_BIN/qpatch-load" -r 20 -d 2 --undo "$TARGET_PID" >"$T/undo-a.out" 2>&1
check "undo the first patch succeeds" test $? -eq 0
check "old code of step_a back" test "$(step_a_bytes)" = "$file_bytes"
check "its mapping kept, the frame named" grep -Eq \
	"kept because thread $worker will return into 'step_a' of patch 'p-a' \(frame #[0-9]+," "$T/undo-a.out"
check "listed as still in use" sh -c "'$QP_BIN/qpatch-load' --list $TARGET_PID | grep -q \"patch 'p-a' on 'chain' (undone, mapping still in use)\""
check "target alive" alive "$TARGET_PID"
finish

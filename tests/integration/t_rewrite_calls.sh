#!/bin/bash
# qpatch-load --rewrite-calls: the direct calls to a replaced function are
# made to call the new code; the old function's jump stays for the call
# through a pointer.  The sites (two of them pages away from the others)
# are read back from /proc/PID/mem; a direct call is shown to reach the new
# code with the jump taken out by hand; a failure in the middle of the
# site writes (step 9) and of the undo leaves the target as it was; undo
# puts every byte back.
. "$(dirname "$0")/lib.sh"

P=$QP_SRC/tests/integration/progs/rewritecalls
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/rewritecalls" \
	>"$T/build.out" 2>&1
check "patch built" test -s "$T/fix.qpatch"
start "$T/out" "$T/app/rewritecalls"
PID=$TARGET_PID
check "target prints" wait_match "$T/out" "^direct=21 pointer=21 sum=8$"

BASE=$((16#$(awk -v p="$T/app/rewritecalls" '$6 == p && $3 == "00000000" {print $1; exit}' \
	"/proc/$PID/maps" | cut -d- -f1)))
WORK=$((BASE + 16#$(nm "$T/app/rewritecalls" | awk '$3 == "work" {print $1}')))
# the direct branches to work, by objdump: their addresses in the process
SITES=$(objdump -d "$T/app/rewritecalls" |
	awk '/\t(call|jmp|j[a-z]+) +[0-9a-f]+ <work>$/ {sub(":", "", $1); print $1}')
check "objdump finds direct calls to work" test -n "$SITES"
# far_pair's sites are pages away from the others: written apart (step 9
# below stops after the first write, the others not yet written)
lo=$(for s in $SITES; do echo $((16#$s)); done | sort -n | head -n 1)
hi=$(for s in $SITES; do echo $((16#$s)); done | sort -n | tail -n 1)
check "the sites lie more than a page apart" test $((hi / 4096 - lo / 4096)) -ge 2

mem() { # mem ADDR N: N bytes of the process at ADDR, as hex
	dd if="/proc/$PID/mem" bs=1 skip="$1" count="$2" iflag=skip_bytes 2>/dev/null | od -An -tx1 | tr -d ' \n'
}
poke() { # poke ADDR HEX: write bytes into the process, stopped meanwhile
	kill -STOP "$PID"
	wait_state "$PID" T
	printf '%b' "$(echo "$2" | sed 's/../\\x&/g')" |
		dd of="/proc/$PID/mem" bs=1 seek="$1" oflag=seek_bytes conv=notrunc 2>/dev/null
	kill -CONT "$PID"
}
# where the instruction at ADDR (call/jmp e8/e9, or 0f 8x) branches to
dest() {
	local a=$1 b rel off=1
	b=$(mem "$a" 6)
	case $b in 0f8*) off=2 ;; esac
	rel=$(echo "${b:$((off * 2)):8}" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/')
	rel=$((16#$rel))
	[ "$rel" -ge $((1 << 31)) ] && rel=$((rel - (1 << 32)))
	echo $((a + off + 4 + rel))
}
state() { # the map, the function's first bytes and every site
	local s
	cat "/proc/$PID/maps"
	mem "$WORK" 8
	echo
	for s in $SITES; do echo "$s $(mem $((BASE + 16#$s)) 6)"; done
}
n_lines() { wc -l <"$T/out"; }

before=$(state)
orig_work=$(mem "$WORK" 5)
for s in $SITES; do
	check "site $s calls work before" test "$(dest $((BASE + 16#$s)))" -eq "$WORK"
done

# a failure after the first site is written: every site put back
QPATCH_FAULT_AT=9 "$QP_BIN/qpatch-load" --rewrite-calls "$PID" "$T/fix.qpatch" >"$T/f9.out" 2>&1
check "apply fails after the first site (step 9)" grep -q "injected failure after step 9" "$T/f9.out"
check "target unchanged after step 9" test "$before" = "$(state)"
for step in 6 7 8; do
	QPATCH_FAULT_AT=$step "$QP_BIN/qpatch-load" --rewrite-calls "$PID" "$T/fix.qpatch" >"$T/f$step.out" 2>&1
	check "apply fails at step $step" grep -q "injected failure after step $step" "$T/f$step.out"
	check "target unchanged after step $step" test "$before" = "$(state)"
done
n=$(n_lines)
check "old behaviour after the failures" wait_after "$T/out" "$n" "direct=21 pointer=21 sum=8"

"$QP_BIN/qpatch-load" --rewrite-calls "$PID" "$T/fix.qpatch" >"$T/apply.out" 2>&1
check "applied with --rewrite-calls" test $? -eq 0
check "the output counts the sites" grep -qx "$(echo "$SITES" | wc -w) call site(s) rewritten to call the new code" "$T/apply.out"
check "new behaviour" wait_after "$T/out" "$n" "direct=22 pointer=22 sum=10"
"$QP_BIN/qpatch-load" --list "$PID" >"$T/list.out" 2>&1
nsites=$(echo "$SITES" | wc -w)
check "--list: work has its jump and $nsites call site(s)" \
	grep -Eq "^   work 0x[0-9a-f]+ -> 0x[0-9a-f]+ \(jump \+ call sites \($nsites\)\)$" "$T/list.out"
"$QP_BIN/qpatch-load" --list --json "$PID" >"$T/list.json" 2>&1
check "--list --json: method and count" \
	grep -q "\"method\":\"jump+call sites\",\"padding\":0,\"call_sites\":$nsites" "$T/list.json"
NEW=$((16#$(sed -n 's/.*"new":"0x\([0-9a-f]*\)".*/\1/p' "$T/list.json")))
for s in $SITES; do
	check "site $s now calls the new code" test "$(dest $((BASE + 16#$s)))" -eq "$NEW"
done
applied=$(state)
check "the jump is still at work" test "$(mem "$WORK" 1)" = e9

# take the jump out by hand: the direct call still reaches the new code,
# the call through the pointer gets the old one
jump=$(mem "$WORK" 5)
poke "$WORK" "$orig_work"
n=$(n_lines)
check "without the jump: the direct call is new, the pointer call old" \
	wait_after "$T/out" "$n" "direct=22 pointer=21 sum=10"
"$QP_BIN/qpatch-load" --undo "$PID" >"$T/undo-refused.out" 2>&1
check "undo refused while the jump is gone" grep -q "no longer jumps to this patch" "$T/undo-refused.out"
poke "$WORK" "$jump"
check "jump back: patched state as applied" test "$applied" = "$(state)"

# a site that no longer holds what was written: undo refused, nothing changed
s1=$(echo "$SITES" | head -n 1)
site_now=$(mem $((BASE + 16#$s1)) 5)
site_before=$(echo "$before" | awk -v s="$s1" '$1 == s {print substr($2, 1, 10)}')
poke $((BASE + 16#$s1)) "$site_before"
"$QP_BIN/qpatch-load" --undo "$PID" >"$T/undo-site.out" 2>&1
check "undo refused while a site was changed" grep -q "no longer reaches this patch" "$T/undo-site.out"
poke $((BASE + 16#$s1)) "$site_now"
check "site back: patched state as applied" test "$applied" = "$(state)"

for step in 11 12 13; do
	QPATCH_FAULT_AT=$step "$QP_BIN/qpatch-load" --undo "$PID" >"$T/u$step.out" 2>&1
	check "undo fails at step $step" grep -q "injected failure after step $step" "$T/u$step.out"
	check "patched state unchanged after undo step $step" test "$applied" = "$(state)"
done

n=$(n_lines)
"$QP_BIN/qpatch-load" --undo "$PID" >"$T/undo.out" 2>&1
check "undone" test $? -eq 0
check "old behaviour again" wait_after "$T/out" "$n" "direct=21 pointer=21 sum=8"
check "every byte back" test "$before" = "$(state)"

# stacked: a second fix of work, applied without --rewrite-calls, must
# take over the sites the first one rewrote (else the direct calls would
# keep running the first fix); undoing it gives them back to the first
cp -a "$P/patched" "$T/patched2"
sed -i 's/x \* 2 + 2/x * 2 + 3/' "$T/patched2/work.c"
"$QP_BIN/qpatch-build" -q "$T/app" "$T/patched2" -o "$T/fix2.qpatch" --target "$T/app/rewritecalls" \
	>"$T/build2.out" 2>&1
check "second patch built" test -s "$T/fix2.qpatch"
n=$(n_lines)
"$QP_BIN/qpatch-load" --rewrite-calls "$PID" "$T/fix.qpatch" >"$T/apply1.out" 2>&1
"$QP_BIN/qpatch-load" "$PID" "$T/fix2.qpatch" >"$T/apply2.out" 2>&1
check "second patch applied over the first" test $? -eq 0
check "second fix reached directly and through the pointer" \
	wait_after "$T/out" "$n" "direct=23 pointer=23 sum=12"
"$QP_BIN/qpatch-load" --list --json "$PID" >"$T/list2.json" 2>&1
NEW1=$((16#$(grep -o '"new":"0x[0-9a-f]*"' "$T/list2.json" | sed -n '1s/.*0x\([0-9a-f]*\)"/\1/p')))
NEW2=$((16#$(grep -o '"new":"0x[0-9a-f]*"' "$T/list2.json" | sed -n '2s/.*0x\([0-9a-f]*\)"/\1/p')))
check "--list: the second patch took over the $nsites sites" \
	sh -c "grep -o '\"call_sites\":[0-9]*' '$T/list2.json' | sed -n 2p | grep -qx '\"call_sites\":$nsites'"
for s in $SITES; do
	check "site $s calls the second fix" test "$(dest $((BASE + 16#$s)))" -eq "$NEW2"
done
"$QP_BIN/qpatch-load" --undo "$PID" "$(grep -o '"id":"[^"]*"' "$T/list2.json" | sed -n '1s/"id":"\(.*\)"/\1/p')" \
	>"$T/undo-below.out" 2>&1
check "the first patch cannot come out under the second" grep -q "undo '.*' first" "$T/undo-below.out"
n=$(n_lines)
"$QP_BIN/qpatch-load" --undo "$PID" >"$T/undo2.out" 2>&1
check "second patch undone: the first fix again" wait_after "$T/out" "$n" "direct=22 pointer=22 sum=10"
for s in $SITES; do
	check "site $s calls the first fix again" test "$(dest $((BASE + 16#$s)))" -eq "$NEW1"
done
n=$(n_lines)
"$QP_BIN/qpatch-load" --undo "$PID" >"$T/undo1.out" 2>&1
check "first patch undone" wait_after "$T/out" "$n" "direct=21 pointer=21 sum=8"
check "every byte back again" test "$before" = "$(state)"

# every process of the binary (--all) takes the option too
n=$(n_lines)
"$QP_BIN/qpatch-load" --all --rewrite-calls "$T/fix.qpatch" >"$T/all.out" 2>&1
check "--all --rewrite-calls applied" grep -q "process $PID (.*): applied" "$T/all.out"
check "--all: new behaviour" wait_after "$T/out" "$n" "direct=22 pointer=22 sum=10"
"$QP_BIN/qpatch-load" --list "$PID" >"$T/list-all.out" 2>&1
check "--all: the sites rewritten" grep -Eq "^   work .* \(jump \+ call sites \($nsites\)\)$" "$T/list-all.out"
"$QP_BIN/qpatch-load" --undo --all "$(grep -o "applied '[^']*'" "$T/all.out" | head -n 1 | cut -d"'" -f2)" \
	>"$T/undo-all.out" 2>&1
n=$(n_lines)
check "--undo --all: old behaviour" wait_after "$T/out" "$n" "direct=21 pointer=21 sum=8"
check "--undo --all: every byte back" test "$before" = "$(state)"
check "still running" alive "$PID"
[ "$FAILED" -gt 0 ] && for f in apply.out list.out undo.out f9.out; do sed "s/^/  $f: /" "$T/$f"; done
finish

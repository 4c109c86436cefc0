#!/bin/bash
# The ledger fix on the same program built other ways: a position-dependent
# executable (-no-pie: the patch maps below 4 GiB and its 32-bit absolute
# references are relocated), and with CET (-fcf-protection: functions start
# with endbr64, which stays; the jump follows it).
. "$(dirname "$0")/lib.sh"

EX=$QP_SRC/examples/ledger
variant() { # NAME CFLAGS CHECK-CMD
	local name=$1 pid
	export CFLAGS="$2"
	build_tree "$EX/orig" "$T/$name" || { fail "$name: build"; return; }
	start "$T/$name.out" "$T/$name/ledger" 20
	pid=$TARGET_PID
	wait_lines "$T/$name.out" 3
	"$QP_BIN/qpatch-build" -q "$T/$name" "$EX/patched" -o "$T/$name.qpatch" --target "$T/$name/ledger" \
		>"$T/$name.build" 2>&1
	check "$name: patch built" test -s "$T/$name.qpatch"
	check "$name: $3" eval "$4"
	"$QP_BIN/qpatch-load" "$pid" "$T/$name.qpatch" >"$T/$name.load" 2>&1
	check "$name: applied" test $? -eq 0
	check "$name: new code runs" wait_match "$T/$name.out" "fixed, report 2\)"
	"$QP_BIN/qpatch-load" --undo "$pid" >/dev/null 2>&1
	check "$name: undone" test $? -eq 0
	unset CFLAGS
}
variant nopie "-O2 -g -fno-pie -no-pie" "an ET_EXEC with 32-bit absolute references in the patch" \
	"readelf -h '$T/nopie/ledger' | grep -q EXEC && '$QP_BIN/qpatch-dump' '$T/nopie.qpatch' | grep -q QP_R_IMAGE32"
variant cet "-O2 -g -fcf-protection=full" "functions start with endbr64" \
	"objdump -d '$T/cet/ledger' | grep -A1 '<ledger_report>:' | grep -q endbr64"
finish

#!/bin/bash
# A target that plants a forged patch record in its own memory (a mapping
# named like the loader's, progs/hostile "forge KIND"): wrong counts, a
# region larger than its mapping, new code outside the mapping, a jump of
# 4000 bytes, a jump site in unmapped memory, a bad version.  --list,
# apply and undo must not crash, must say the record is corrupted, and do
# nothing that depends on it; the target goes on as it was.  Strings
# without their NUL are cut, not read past.
. "$(dirname "$0")/lib.sh"

hostile_setup || { fail "build the program and its patch"; finish; exit 1; }
declare -A WHY=(
	[count]="4294967295 functions \(at most 65536\)"
	[size]="region of 1099511627776 bytes in a mapping of 8192"
	[newaddr]="function 0 \('work'\): new code at 0x[0-9a-f]+ \(0 bytes\) is not inside the patch mapping"
	[len]="function 0 \('work'\): a jump of 4000 bytes"
	[site]="function 0 \('work'\): jump site 0x10 is not in executable memory, or its object was unloaded"
	[magic]="version 77 \(1, 2 or 3 known\)"
)
for kind in count size newaddr len site magic; do
	: >"$T/$kind.target"
	start "$T/$kind.target" "$T/app/hostile" "$T/ctl" forge "$kind"
	P=$TARGET_PID
	check "$kind: target runs" wait_match "$T/$kind.target" "^result=1014$"
	maps_of "$P" >"$T/$kind.maps"
	for op in list apply undo; do
		case $op in
		list) "$QP_BIN/qpatch-load" --list "$P" >"$T/$kind.$op" 2>&1 ;;
		apply) "$QP_BIN/qpatch-load" "$P" "$T/fix.qpatch" >"$T/$kind.$op" 2>&1 ;;
		undo) "$QP_BIN/qpatch-load" --undo "$P" >"$T/$kind.$op" 2>&1 ;;
		esac
		rc=$?
		check "$kind: $op refused (exit $rc, not a crash)" test "$rc" -eq 1
		check "$kind: $op says the record is corrupted ($(cat "$T/$kind.$op"))" \
			grep -Eq "process $P: corrupted patch record at 0x[0-9a-f]+ \(${WHY[$kind]}\)" "$T/$kind.$op"
	done
	check "$kind: memory map unchanged" sh -c "maps_of() { cat /proc/\$1/maps; }; maps_of $P | cmp -s - '$T/$kind.maps'"
	check "$kind: old code still runs" result_is "$T/$kind.target" 1014
	kill -9 "$P"
done

# names without NUL: cut to their fields; the forged "applied" patch is
# listed, and an undo of it is refused (its jump is not there), the
# process untouched
start "$T/strings.target" "$T/app/hostile" "$T/ctl" forge strings
P=$TARGET_PID
check "strings: target runs" wait_match "$T/strings.target" "^result=1014$"
"$QP_BIN/qpatch-load" --list "$P" >"$T/strings.list" 2>&1
check "strings: listed, the id cut to 63 bytes" grep -q "^1\. patch 'i\{63\}' on 't\{255\}'" "$T/strings.list"
maps_of "$P" >"$T/strings.maps"
"$QP_BIN/qpatch-load" --undo "$P" >"$T/strings.undo" 2>&1
check "strings: undo refused ($(cat "$T/strings.undo"))" grep -q "no longer jumps to this patch; not undoing" "$T/strings.undo"
maps_of "$P" >"$T/strings.maps2"
check "strings: memory map unchanged" cmp -s "$T/strings.maps" "$T/strings.maps2"
check "strings: old code still runs" result_is "$T/strings.target" 1014
finish

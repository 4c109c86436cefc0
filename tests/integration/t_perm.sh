#!/bin/bash
# No permission: a user without ptrace rights over the target (root's
# process, patched by "nobody") gets a clear message and exit status 1, for
# apply, list and undo; the target keeps running, unchanged.  Then the same
# patch applied by root works (the refusal left nothing behind).
. "$(dirname "$0")/lib.sh"

command -v setpriv >/dev/null || { fail "setpriv (util-linux) is needed"; finish; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "t_perm: needs root to start a process another user cannot trace: skipped"; exit 0; }
P=$QP_SRC/tests/integration/progs/statics
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
"$QP_BIN/qpatch-build" -q "$T/app" "$P/patched" -o "$T/fix.qpatch" --target "$T/app/statics" >"$T/build.out" 2>&1
check "patch built" test $? -eq 0
# the tools and the patch where "nobody" can reach them (the build tree
# may sit under a directory only root can enter)
PUB=$(mktemp -d /tmp/qp-perm.XXXXXX)
trap 'rm -rf "$PUB"; cleanup' EXIT
cp "$QP_BIN/qpatch-load" "$T/fix.qpatch" "$PUB/" && chmod 755 "$PUB" "$PUB/qpatch-load" &&
	chmod 644 "$PUB/fix.qpatch" || { fail "copy the tools to $PUB"; finish; exit 1; }
start "$T/out" "$T/app/statics"
check "target prints" wait_lines "$T/out" 3
maps_of "$TARGET_PID" >"$T/maps.before"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

for op in apply list undo; do
	case $op in
	apply) args=("$TARGET_PID" "$PUB/fix.qpatch") ;;
	list) args=(--list "$TARGET_PID") ;;
	undo) args=(--undo "$TARGET_PID") ;;
	esac
	as_nobody "$PUB/qpatch-load" "${args[@]}" >"$T/$op.out" 2>&1
	check "$op as nobody: exit status 1" test $? -eq 1
	check "$op as nobody: says permission is denied" grep -q "Permission denied" "$T/$op.out"
	check "$op as nobody: names the process" grep -q "process $TARGET_PID" "$T/$op.out"
done
check "target still running" alive "$TARGET_PID"
check "target's maps unchanged" diff -q <(maps_of "$TARGET_PID") "$T/maps.before"
check "target not left traced" grep -q "^TracerPid:[[:space:]]*0$" "/proc/$TARGET_PID/status"
n=$(wc -l <"$T/out")
check "target still prints" wait_lines "$T/out" $((n + 2))
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/fix.qpatch" >"$T/root.out" 2>&1
check "as root: applied" test $? -eq 0
check "as root: new code runs" wait_match "$T/out" "b=10[0-9]{5}$"
finish

#!/bin/bash
# Root loads only what no other user can change (the rule of sshd's
# StrictModes): a patch file, a store or a store entry that another user
# owns or may write is refused with a message naming it and why, and the
# target is left as it was.  A sticky directory (/tmp) is fine for a file
# root owns.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root"; exit 0; }
OTHER_UID=$(id -u nobody)
OTHER_GID=$(id -g nobody)
P=$QP_SRC/tests/integration/progs/hold
build_tree "$P/orig" "$T/app" || { fail "build the program"; finish; exit 1; }
"$QP_BIN/qpatch-build" -q --id trust-fix "$T/app" "$P/patched" -o "$T/fix.qpatch" \
	--target "$T/app/hold" >/dev/null 2>&1
check "patch built" test -s "$T/fix.qpatch"
start "$T/out" "$T/app/hold" 0
check "target runs" wait_match "$T/out" "^r=1$"
before=$(maps_of "$TARGET_PID")


cp "$T/fix.qpatch" "$T/ww.qpatch" && chmod 666 "$T/ww.qpatch"
refused_cmd "world-writable patch" "'$T/ww.qpatch' is writable by any user \(mode 0666\)" \
	"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/ww.qpatch"
refused_cmd "world-writable patch, --all" "writable by any user" "$QP_BIN/qpatch-load" --all "$T/ww.qpatch"
cp "$T/fix.qpatch" "$T/theirs.qpatch" && chown "$OTHER_UID" "$T/theirs.qpatch"
refused_cmd "patch owned by another user" "owned by uid $OTHER_UID, not root" \
	"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/theirs.qpatch"
mkdir "$T/gw" && chgrp "$OTHER_GID" "$T/gw" && chmod 775 "$T/gw" && cp "$T/fix.qpatch" "$T/gw/"
refused_cmd "patch in a directory another group may write" "'$T/gw' is writable by group $OTHER_GID" \
	"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/gw/fix.qpatch"
ln -s "$T/ww.qpatch" "$T/link.qpatch"
refused_cmd "symlink to a world-writable patch" "writable by any user" \
	"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/link.qpatch"

mkdir "$T/sticky" && chmod 1777 "$T/sticky" && cp "$T/fix.qpatch" "$T/sticky/"
"$QP_BIN/qpatch-load" "$TARGET_PID" "$T/sticky/fix.qpatch" >"$T/ok.out" 2>&1
check "root's patch in a sticky directory is applied" test $? -eq 0
check "new code runs" wait_match "$T/out" "^r=2$"
"$QP_BIN/qpatch-load" --undo "$TARGET_PID" >/dev/null 2>&1
check "undone" test $? -eq 0

# the store
S=$T/store
mkdir "$S" && chmod 777 "$S"
refused_cmd "world-writable store: list" "store '$S' refused: '$S' is writable by any user" \
	"$QP_BIN/qpatch" --store "$S" list
refused_cmd "world-writable store: add" "writable by any user" "$QP_BIN/qpatch" --store "$S" add "$T/fix.qpatch"
refused_cmd "world-writable store: qpatchd" "writable by any user" "$QP_BIN/qpatchd" --store "$S" --once
chmod 755 "$S"
"$QP_BIN/qpatch" --store "$S" add "$T/fix.qpatch" >/dev/null 2>&1
check "a sound store takes the patch" test $? -eq 0
entry=$(ls "$S"/*/0001-*.qpatch)
chown "$OTHER_UID" "$entry"
refused_cmd "store entry owned by another user: list" "store entry refused: '$entry' is owned by uid $OTHER_UID" \
	"$QP_BIN/qpatch" --store "$S" list
"$QP_BIN/qpatchd" --store "$S" --once >"$T/d.out" 2>&1
check "qpatchd --once with a bad entry: exit 1" test $? -eq 1
check "qpatchd ignores a store with a bad entry" grep -q "store entry refused: '$entry' is owned by uid $OTHER_UID.*store ignored" "$T/d.out"
check "and patches nothing" test "$before" = "$(maps_of "$TARGET_PID")"
chown 0 "$entry" && chmod 666 "$entry"
refused_cmd "world-writable store entry" "'$entry' is writable by any user" "$QP_BIN/qpatch" --store "$S" list
chmod 644 "$entry"
"$QP_BIN/qpatchd" --store "$S" --once >"$T/d2.out" 2>&1
check "sound again: qpatchd --once applies it" grep -q "applied 'trust-fix' to process $TARGET_PID " "$T/d2.out"
check "new code runs again" sh -c "n=\$(wc -l <'$T/out'); sleep 0.2; tail -n 1 '$T/out' | grep -q '^r=2$'"
finish

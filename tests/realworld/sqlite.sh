#!/bin/bash
# Real-world case: Debian's sqlite3 3.40, two real fixes against one
# deployed libsqlite3 that lacks both:
#
# * "Fix a bug in the NOT NULL/IS NULL optimization that can cause invalid
#   data" (debian/patches/41-fix_a_bug_in_the_NOT_NULL-IS_NULL_
#   optimization.patch, src/expr.c and an assert in src/vdbe.c): in 3.40.0
#   and 3.40.1, `x IS NOT NULL` on a value just read from a table marks
#   that read as "type only"; when the value sits on an overflow page and
#   the same register is written back (UPDATE t SET b=b with CHECK(b IS NOT
#   NULL)), the row gets an empty value: data is lost.  Applied live to a
#   running sqlite3 shell, in the library (libsqlite3.so) it has loaded.
# * CVE-2025-6965 (debian/patches/42-CVE-2025-6965.patch): "the number of
#   aggregate terms could exceed the number of columns available"; the fix
#   widens two fields of struct AggInfo_col (i16 -> int, inside struct
#   AggInfo) in src/sqliteInt.h, which most objects of the library use:
#   qpatch-build must refuse it, saying why.
#
# The trees: shipped (both fixes), orig (both reverted), fixed-41 and
# fixed-CVE-2025-6965 (the other one reverted).  Built as Debian does
# (autotools configure in the tree, libtool, --disable-amalgamation,
# Debian's CFLAGS and feature defines; shared library only, without Tcl),
# deployed in the tree; the shell is .libs/sqlite3 with the tree's
# libsqlite3.so.0.
#
# The shell reads commands from a FIFO and holds an open transaction (a
# temporary table of 10000 rows, uncommitted) and a long recursive query
# runs while the patch goes in.  The probe: a 5000-byte value updated in
# place, read back: its length is 0 before the fix, 5000 after.
. "$(dirname "$0")/lib.sh"

PKG=sqlite3
FIX1=NOTNULL FIX1_PATCH=41-fix_a_bug_in_the_NOT_NULL-IS_NULL_optimization.patch
FIX2=CVE-2025-6965 FIX2_PATCH=42-CVE-2025-6965.patch
ROW_PROGRAM=$PKG
ROW_FIX="NOT NULL/IS NULL optimization data loss, $FIX1_PATCH (src/expr.c, src/vdbe.c)"
DEPLOY_CMD=$RW_SQLITE_DEPLOY_CMD
# qpatch-build's: make in the copy of that configured tree (at the original
# tree's path, so configure's absolute TOP names the copy)
QPB_CMD=make

step fetch
for c in tclsh; do
	command -v "$c" >/dev/null || die "missing: $c (scripts/install-realworld-deps.sh installs it)"
done
fetch_case $PKG

step prepare
if [ ! -f "$D/prepared" ]; then
	rm -rf "$D" && mkdir -p "$D"
	unpack_source "$SRC_DSC" "$D/shipped"
	for p in "$FIX1_PATCH" "$FIX2_PATCH"; do
		[ -f "$D/shipped/debian/patches/$p" ] || die "no debian/patches/$p in $PKG $VER"
	done
	cp "$D/shipped/debian/patches/$FIX1_PATCH" "$D/$FIX1.patch"
	cp "$D/shipped/debian/patches/$FIX2_PATCH" "$D/$FIX2.patch"
	for t in "$FIX1:$FIX2" "$FIX2:$FIX1"; do
		cp -a "$D/shipped" "$D/fixed-${t%%:*}" &&
			patch -d "$D/fixed-${t%%:*}" -R -p1 -s <"$D/${t#*:}.patch" ||
			die "cannot revert ${t#*:} in the shipped tree"
	done
	touch "$D/prepared"
fi
make_orig() {
	cp -a "$D/fixed-$FIX1" "$1" &&
		patch -d "$1" -R -p1 -s <"$D/$FIX1.patch" || die "cannot revert $FIX1_PATCH"
}

step "deploy build"
deploy_build "$D/orig" "$DEPLOY_CMD" make_orig
LIBREL=$(cd "$D/orig" && ls .libs/libsqlite3.so.*.*.* 2>/dev/null | head -n1)
[ -n "$LIBREL" ] && [ -x "$D/orig/.libs/sqlite3" ] || die "no .libs/libsqlite3.so.X.Y.Z or .libs/sqlite3 in the deployed build"
LIB=$D/orig/$LIBREL

step "refused fix"
refused_fix "$FIX2" "src/expr.c, src/sqliteInt.h" "$D/orig" "$D/fixed-$FIX2" "$LIBREL" \
	"$QPB_CMD" "$LIB" AggInfo_col

# probe: a 5000-byte value (on an overflow page) updated in place and
# read back
NPROBE=0
probe() {
	local n
	NPROBE=$((NPROBE + 1))
	n=$(sq "INSERT INTO probe VALUES($NPROBE, printf('%.5000c','x')); UPDATE probe SET b=b WHERE k=$NPROBE; SELECT length(b) FROM probe WHERE k=$NPROBE;") ||
		die "the shell stopped answering: $(tail -n3 "$SHOUT")"
	case $n in
	0) PROBE_OUT="value lost (length 0 after UPDATE b=b)" ;;
	5000) PROBE_OUT="value kept (length 5000)" ;;
	*) die "the probe read '$n'" ;;
	esac
}
SCHEMA=$SQ_SCHEMA

step start
shell_start "$D/orig" live
[ "$(sq "$SCHEMA SELECT count(*) FROM data;")" = 20000 ] || die "cannot fill the database"
DIGEST0=$(sq "$SQ_DIGEST")
grep -q "$D/orig/.libs/libsqlite3.so" "/proc/$PID/maps" || die "the shell did not load the deployed libsqlite3"
say "pid $PID: sqlite3 shell with $LIBREL, data $DIGEST0"
# the open transaction the patch must not disturb
sq "$SQ_PENDING" >/dev/null ||
	die "cannot open the transaction"

step "probe (original)"
probe
P0=$PROBE_OUT
say "probe: $P0"
[[ $P0 == "value lost"* ]] || die "the original library answers '$P0' to the probe"

step qpatch-build
qp_build "$D/orig" "$D/fixed-$FIX1" "$RW_LOG/fix.qpatch" "$LIBREL" "$QPB_CMD" "$LIB"
LINEONLY=$(awk '$1 == "line" && $2 == "only" { printf "%s%s", s, $3; s = ", " }' "$QPB_LOG")

step "reference (fixed build)"
REFDIR=$(dirname "$(dirname "$(ref_bin "$LIBREL")")") || die "no fixed build in qpatch-build's work directory '$RW_WORK'"
LIVE=("$PID" "$SHOUT")
exec 7>&-
shell_start "$REFDIR" ref-fixed
sq "$SCHEMA" >/dev/null
probe
PFIX=$PROBE_OUT
sq_send ".quit"
exec 7>&-
wait "$PID" 2>/dev/null
PID=${LIVE[0]} SHOUT=${LIVE[1]}
exec 7<>"$RW_LOG/live.fifo"
say "fixed build answers '$PFIX'"
[[ $PFIX == "value kept"* ]] || die "the fixed build answers '$PFIX' to the probe"

step qpatch-load
# a long query runs in the shell while the patch goes in
from=$(wc -l <"$SHOUT")
sq_send "$SQ_BUSY"
sleep 0.3
grep -q "^busy " <(tail -n +"$((from + 1))" "$SHOUT") && say "note: the long query ended before the patch"
qp_load "$PID" "$RW_LOG/fix.qpatch"
ID=$(patch_id "$RW_LOG/fix.qpatch")
expect "patch $ID listed in the process" qp_listed "$PID" "$ID"
"$QP_BIN/qpatch-load" --list "$PID" >"$RW_LOG/qpatch-list.log" 2>&1
sed 's/^/    /' "$RW_LOG/qpatch-list.log"
SQ_WAIT=120 sq "SELECT 'waited';" >/dev/null || die "the shell stopped answering after the patch"
expect "the query running during the patch gave the right sum" \
	grep -qx "$SQ_BUSY_OUT" <(tail -n +"$((from + 1))" "$SHOUT")

step "fixed code runs"
probe
P1=$PROBE_OUT
say "probe: $P1"
[ "$P1" = "$PFIX" ] || die "after the patch the probe gives '$P1', the fixed build '$PFIX' (before: '$P0')"
expect "the open transaction kept its 10000 rows" test "$(sq "SELECT count(*) || ':' || sum(k) FROM pending;")" = "10000:50005000"

step undo
qp_undo "$PID"
expect "no patch left in the process" qp_none "$PID"
probe
P2=$PROBE_OUT
say "probe: $P2"
[ "$P2" = "$P0" ] || die "after undo the probe gives '$P2', before the patch '$P0'"

step stop
expect "the transaction commits" test "$(sq "COMMIT; SELECT count(*) FROM pending;")" = 10000
expect "the data is unchanged" test "$(sq "$SQ_DIGEST")" = "$DIGEST0"
expect "the database is sound" test "$(sq "PRAGMA integrity_check;")" = ok
sq_send ".quit"
exec 7>&-
wait "$PID"
rc=$?
[ $rc -eq 0 ] || die "the shell exited with status $rc: $(tail -n3 "$SHOUT")"
ROW_RESULT="ok: probe '$P0' → '$P1' (as the fixed build) → undo → '$P2'; a 6M-row recursive query ran through the patch with the right sum, an open transaction (10000 rows) kept and committed, data and integrity_check unchanged${LINEONLY:+; left out as __LINE__-only: $LINEONLY}"
row_write
say "$ROW_RESULT"
[ "$REFUSED_RC" -eq 0 ] || { say "the refused fix failed: see its row"; exit 1; }

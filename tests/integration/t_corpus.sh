#!/bin/bash
# Every case of the diff corpus (tests/fixtures/diff), end to end with the
# real tools.  A case whose expect file has no "refused" or "error" line
# yields a patch, and must say with a "live BEFORE AFTER" line what its
# running program prints before and after: the orig tree is built with
# qpatch-cc (tests/integration/corpus.mk), started, patched with
# qpatch-build and qpatch-load; a line matching AFTER must follow, then
# --undo must bring BEFORE back; "listed NAME [REGEX]" lines are checked
# against qpatch-load --list while the patch is applied, a "size-at-most
# BYTES" line against the size of the patch file, and every patch must be
# read by readelf -a without a warning.  A case with a "patched2" tree
# and a "stacked AFTER2" line gets a second patch, orig to patched2,
# applied on top of the first while it is in: AFTER2 must follow, and its
# undo must bring AFTER back before the first is undone.  A case that is
# refused must be refused by qpatch-build too, with each expected reason
# (and "where" location) in its report, and write no patch.  CASES="a b"
# runs only those.
. "$(dirname "$0")/lib.sh"

FIX=$QP_SRC/tests/fixtures/diff
MK=$QP_SRC/tests/integration/corpus.mk

# expect_lines CASE VERB: the rest of every "VERB ..." line of the case.
expect_lines() { sed -n "s/^$2 //p" "$FIX/$1/expect"; }

# build_case CASE DIR: the orig program of CASE, built as a user would
# (with the compiler flags of the case's "cflags" file and the link flags
# of its "ldflags" file, if it has them).
build_case() {
	cp -a "$FIX/$1/orig" "$2" && cp "$MK" "$2/Makefile" &&
		{ [ ! -f "$FIX/$1/cflags" ] || cp "$FIX/$1/cflags" "$2/cflags"; } &&
		{ [ ! -f "$FIX/$1/ldflags" ] || cp "$FIX/$1/ldflags" "$2/ldflags"; } &&
		make -s -C "$2" CC="$QP_BIN/qpatch-cc" >"$2.build.log" 2>&1
}

# keep_args CASE: --keep-value options for the case's "keep" lines.
keep_args() {
	local v
	for v in $(expect_lines "$1" keep | awk '{print $1}'); do printf -- '--keep-value %s ' "$v"; done
}

live_case() { # live_case CASE BEFORE AFTER
	local c=$1 before=$2 after=$3 w=$T/$1 n pid
	mkdir -p "$w"
	build_case "$c" "$w/app" || { fail "$c: build the program"; return; }
	start "$w/out" "$w/app/prog"
	pid=$TARGET_PID
	check "$c: prints /$before/" wait_after "$w/out" 0 "$before"
	check "$c: not /$after/ before the patch" sh -c "! grep -Eq '^($after)\$' '$w/out'"
	# shellcheck disable=SC2046
	"$QP_BIN/qpatch-build" -q "$w/app" "$FIX/$c/patched" -o "$w/fix.qpatch" --target "$w/app/prog" \
		$(keep_args "$c") >"$w/build.out" 2>&1
	check "$c: patch built" test -s "$w/fix.qpatch"
	check "$c: readelf -a reads the patch without a warning" \
		sh -c "readelf -aW '$w/fix.qpatch' 2>&1 >/dev/null | grep . >&2 && exit 1 || exit 0"
	for n in $(expect_lines "$c" size-at-most); do
		check "$c: patch of at most $n bytes ($(stat -c %s "$w/fix.qpatch"))" \
			test "$(stat -c %s "$w/fix.qpatch")" -le "$n"
	done
	n=$(wc -l <"$w/out")
	"$QP_BIN/qpatch-load" "$pid" "$w/fix.qpatch" >"$w/load.out" 2>&1
	check "$c: applied" test $? -eq 0
	check "$c: then prints /$after/" wait_after "$w/out" "$n" "$after"
	"$QP_BIN/qpatch-load" --list "$pid" >"$w/list.out" 2>&1
	while read -r name re; do
		check "$c: --list: $name ${re:-(nothing more)}" \
			grep -Eq "^   $name 0x[0-9a-f]+ -> 0x[0-9a-f]+${re:+ $re}\$" "$w/list.out"
	done < <(expect_lines "$c" listed)
	stacked_case "$c" "$w" "$pid" "$after"
	n=$(wc -l <"$w/out")
	"$QP_BIN/qpatch-load" --undo "$pid" >"$w/undo.out" 2>&1
	check "$c: undone" test $? -eq 0
	check "$c: prints /$before/ again" wait_after "$w/out" "$n" "$before"
	check "$c: still running" alive "$pid"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	if [ "$FAILED" -gt 0 ]; then
		for f in build.out load.out list.out undo.out; do sed "s/^/  $c $f: /" "$w/$f"; done
		tail -n 5 "$w/out" | sed "s/^/  $c out: /"
	fi
}

stacked_case() { # stacked_case CASE W PID AFTER: the second fix on top of the first
	local c=$1 w=$2 pid=$3 after=$4 after2 n
	after2=$(expect_lines "$c" stacked)
	[ -d "$FIX/$c/patched2" ] && [ -n "$after2" ] || return 0
	"$QP_BIN/qpatch-build" -q -w "$w/work2" "$w/app" "$FIX/$c/patched2" -o "$w/fix2.qpatch" \
		--target "$w/app/prog" >"$w/build2.out" 2>&1
	check "$c: second patch built" test -s "$w/fix2.qpatch"
	n=$(wc -l <"$w/out")
	"$QP_BIN/qpatch-load" "$pid" "$w/fix2.qpatch" >"$w/load2.out" 2>&1
	check "$c: second patch applied on top" test $? -eq 0
	check "$c: then prints /$after2/" wait_after "$w/out" "$n" "$after2"
	n=$(wc -l <"$w/out")
	"$QP_BIN/qpatch-load" --undo "$pid" >"$w/undo2.out" 2>&1
	check "$c: second patch undone" test $? -eq 0
	check "$c: prints /$after/ again" wait_after "$w/out" "$n" "$after"
	[ "$FAILED" -gt 0 ] && for f in build2.out load2.out undo2.out; do sed "s/^/  $c $f: /" "$w/$f"; done
	return 0
}

refused_case() { # refused_case CASE: qpatch-build must refuse with the reasons
	local c=$1 w=$T/$1 why
	mkdir -p "$w"
	build_case "$c" "$w/app" || { fail "$c: build the program"; return; }
	# shellcheck disable=SC2046
	"$QP_BIN/qpatch-build" -q "$w/app" "$FIX/$c/patched" -o "$w/fix.qpatch" --target "$w/app/prog" \
		$(keep_args "$c") >"$w/build.out" 2>&1
	check "$c: qpatch-build fails" test $? -ne 0
	check "$c: no patch written" test ! -e "$w/fix.qpatch"
	while read -r name why; do
		check "$c: refuses $name: $why" grep -Eq "REFUSED +$name .*$why" "$w/build.out"
	done < <(expect_lines "$c" refused)
	while read -r name why; do
		check "$c: $name at $why" grep -Eq " $name .*$why" "$w/build.out"
	done < <(expect_lines "$c" where)
	while read -r why; do
		check "$c: error says '$why'" grep -Fq "$why" "$w/build.out"
	done < <(expect_lines "$c" error)
	[ "$FAILED" -gt 0 ] && sed "s/^/  $c build.out: /" "$w/build.out"
}

cases=${CASES:-$(cd "$FIX" && ls)}
nlive=0
for c in $cases; do
	[ -f "$FIX/$c/expect" ] || { fail "$c: no expect file"; continue; }
	if grep -Eq '^(refused|error) ' "$FIX/$c/expect"; then
		refused_case "$c"
		continue
	fi
	live=$(expect_lines "$c" live)
	if [ -z "$live" ]; then
		fail "$c yields a patch but its expect file has no 'live BEFORE AFTER' line"
		continue
	fi
	# shellcheck disable=SC2086
	live_case "$c" $live
	nlive=$((nlive + 1))
done
echo "live cases: $nlive"
finish

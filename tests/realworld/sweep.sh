#!/bin/bash
# The sweep: every debian/patches file of Debian 12's redis, lua5.4 and
# sqlite3 that changes C code, built into a live patch of the running
# program and applied while it is busy, or refused (docs/sweep.md).
#
#   tests/realworld/sweep.sh [PKG...]     PKG: redis lua5.4 sqlite3 (default: all)
#   tests/realworld/sweep.sh --table      only write docs/sweep.md from the
#                                         rows of the last runs
#
# For each such patch P (the N-th of the package's series):
#   * the vulnerable tree is the package's source with the series applied up
#     to P, P not included; the fixed tree is the same with P applied: the
#     package as it was before the update that brought P, and after;
#   * the vulnerable tree is deployed with qpatch-cc, at one path for all the
#     package's patches: the first by a full build, each next one by
#     applying the patches in between to the deployed tree and running the
#     build again, as a user updating it would; cached per patch; and
#     qpatch-build makes the patch from the two trees;
#   * a patch is applied with qpatch-load to the program started from the
#     deployed build, under the load of the case scripts (redis: 4 INCR
#     clients and redis-benchmark; lua5.4: the busy interpreter of
#     lua/server.lua; sqlite3: an open transaction and a long query), which
#     must go on undisturbed, then undone;
#   * a refusal is compared with the judgement of that fix in
#     sweep.judged (written by reading the fix).
# Each patch gives one row; a package's rows are kept in
# $QP_RW_CACHE/sweep/PKG.rows (its last run), and docs/sweep.md is written
# from the rows of every package swept so far (QP_RW_DOC=0: only printed).
#
# Environment: as run.sh (QP_BIN, QP_RW_CACHE, QP_RW_OUT, QP_RW_JOBS,
# QP_RW_DOC, QP_RW_LABEL); QP_SWEEP_ONLY: a pattern (grep -E) naming the
# patches to sweep (default: all).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ALL_PKGS="redis lua5.4 sqlite3"
export QP_BIN=${QP_BIN:-$ROOT/build/bin}
export QP_RW_CACHE=${QP_RW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qpatch-realworld}
export QP_RW_OUT=${QP_RW_OUT:-$QP_RW_CACHE/runs/sweep}
export QP_RW_JOBS=${QP_RW_JOBS:-2}
QP_RW_DOC=${QP_RW_DOC:-1}
for t in qpatch-cc qpatch-build qpatch-load qpatch-dump; do
	[ -x "$QP_BIN/$t" ] || { echo "sweep.sh: no $t in '$QP_BIN' (build qpatch, or set QP_BIN)" >&2; exit 2; }
done
QP_BIN=$(cd "$QP_BIN" && pwd)
. "$HERE/cachelock.sh"
rw_lock_cache sweep.sh
[ "${1:-}" = --table ] || rm -rf "$QP_RW_OUT"
mkdir -p "$QP_RW_OUT"
. "$HERE/lib.sh"

pkgs=("$@")
TABLE_ONLY=0
[ "${1:-}" = --table ] && TABLE_ONLY=1 pkgs=()
[ ${#pkgs[@]} -eq 0 ] && [ $TABLE_ONLY = 0 ] && read -r -a pkgs <<<"$ALL_PKGS"
for p in "${pkgs[@]+"${pkgs[@]}"}"; do
	[[ " $ALL_PKGS " == *" $p "* ]] || { echo "sweep.sh: unknown package '$p' ($ALL_PKGS)" >&2; exit 2; }
done
SW_CACHE=$QP_RW_CACHE/sweep
JUDGED=$HERE/sweep.judged
mkdir -p "$SW_CACHE"

# --- the packages ----------------------------------------------------------------

# pkg_setup PKG: how PKG builds and runs: SW_CMD (deploy build), SW_QPB_CMD
# (qpatch-build's, also the one that updates a deployed build), SW_BIN (the target in the tree; sqlite3: found after the
# build), SW_NOT_APPLIED (series patches left out of every tree), SW_LIVE
# (the function that runs the patch live).
pkg_setup() {
	SW_NOT_APPLIED="" SW_BIN=""
	case $1 in
	redis)
		# redis's Makefile builds deps/ (the bundled Lua) once, and make
		# never looks at them again: a fix there would not be recompiled
		# (qpatch-build: "the patched build recompiled nothing").  So once
		# built, the bundled Lua is made again first, as its own Makefile
		# does it (what changed), and redis-server is linked again when
		# liblua.a changed.
		# shellcheck disable=SC2016 # expanded by the build's sh -c
		SW_CMD='export DEB_BUILD_MAINT_OPTIONS=hardening=+all; export CFLAGS="$(dpkg-buildflags --get CFLAGS)" CPPFLAGS="$(dpkg-buildflags --get CPPFLAGS)" LDFLAGS="$(dpkg-buildflags --get LDFLAGS)"; if [ -f deps/.make-cflags ]; then make -C deps lua CC="$CC" MALLOC=libc && { [ ! deps/lua/src/liblua.a -nt src/redis-server ] || rm -f src/redis-server; }; fi && make CC="$CC" MALLOC=libc'
		SW_QPB_CMD=$SW_CMD SW_BIN=src/redis-server SW_LIVE=live_redis ;;
	lua5.4)
		# the upstream Makefile, as lua.sh builds it
		SW_CMD=$RW_LUA_BUILD_CMD SW_QPB_CMD=$RW_LUA_BUILD_CMD SW_BIN=src/lua
		SW_NOT_APPLIED=0001-build-system.patch SW_LIVE=live_lua ;;
	sqlite3)
		SW_CMD=$RW_SQLITE_DEPLOY_CMD SW_QPB_CMD=make SW_LIVE=live_sqlite ;;
	esac
}

# prepare_trees PKG: the source trees SRC/K (K = 0, 1, ...: the series
# applied up to its K-th patch, not included) in $SWD/src, made once from one
# unpacking, and $SWD/series: "K PATCH" for each patch applied.
prepare_trees() {
	local k=0 p prev
	[ -f "$SWD/src.prepared" ] && return 0
	rm -rf "$SWD/src" && mkdir -p "$SWD/src"
	(cd "$(dirname "$SRC_DSC")" && dpkg-source -q --no-check --skip-patches -x "$(basename "$SRC_DSC")" "$SWD/src/0") \
		>"$RW_LOG/dpkg-source.log" 2>&1 || die "dpkg-source -x of $1 failed (see $RW_LOG/dpkg-source.log)"
	[ "$1" = lua5.4 ] && lua_multiarch_h "$SWD/src/0"
	: >"$SWD/series"
	prev=$SWD/src/0
	while read -r p; do
		[[ " $SW_NOT_APPLIED " == *" $p "* ]] && continue
		echo "$k $p" >>"$SWD/series"
		k=$((k + 1))
		cp -a "$prev" "$SWD/src/$k" &&
			patch -d "$SWD/src/$k" -p1 -s --no-backup-if-mismatch <"$SWD/src/0/debian/patches/$p" \
				>"$RW_LOG/patch.log" 2>&1 || die "$p does not apply after the patches before it"
		prev=$SWD/src/$k
	done < <(series_patches "$SWD/src/0")
	touch "$SWD/src.prepared"
}

# deploy_at K NAME: the deployed build of SRC/K, for patch NAME, at
# $SWD/deploy: the one path where every patch of the package is deployed, so
# that one deployed build can become the next (sets FULL_BUILD_S and
# DEPLOY_HOW).  In order: the build cached for NAME ($SWD/fix/NAME/deployed,
# copied back); the deployed build of an earlier patch updated as a user
# updating that tree would: the patches in between applied to it, then
# qpatch-build's build command (make recompiles what they changed); a full
# build of SRC/K.
deploy_at() {
	local k=$1 p=$SWD/deploy cache=$SWD/fix/$2/deployed want at i t0 n
	want="$(cc_identity) $SW_CMD"
	if [ -d "$cache" ] && [ -f "$cache.stamp" ] && [ "$(sed -n 2p "$cache.stamp")" = "$want" ]; then
		if [ "$(cat "$p.at" 2>/dev/null)" != "$k $want" ]; then
			rm -rf "$p" "$p.at"
			cp -a "$cache" "$p" || die "cannot copy the cached deployed build"
			echo "$k $want" >"$p.at"
		fi
		FULL_BUILD_S=$(sed -n 1p "$cache.stamp") DEPLOY_HOW=$(sed -n 3p "$cache.stamp")
		say "deployed build cached (${DEPLOY_HOW}: ${FULL_BUILD_S} s)"
		return 0
	fi
	at=$(cat "$p.at" 2>/dev/null)
	i=${at%% *}
	rm -f "$p.at"
	t0=$(now_s)
	if [ -n "$at" ] && [ "${at#* }" = "$want" ] && [ "$i" -le "$k" ]; then
		DEPLOY_HOW="the one before, $((k - i)) patch$([ $((k - i)) = 1 ] || echo es) applied and rebuilt"
		while [ "$i" -lt "$k" ]; do
			n=$(awk -v i="$i" '$1 == i { print $2 }' "$SWD/series")
			say "updating the deployed build: $n"
			patch -d "$p" -p1 -s --no-backup-if-mismatch <"$SWD/src/0/debian/patches/$n" \
				>"$RW_LOG/patch.log" 2>&1 || die "$n does not apply to the deployed tree"
			i=$((i + 1))
		done
		(cd "$p" && CC="$QP_BIN/qpatch-cc" sh -c "$SW_QPB_CMD") >"$RW_LOG/deploy-build.log" 2>&1 ||
			die "update of the deployed build failed (see $RW_LOG/deploy-build.log)"
	else
		DEPLOY_HOW="full build"
		rm -rf "$p"
		cp -a "$SWD/src/$k" "$p" || die "cannot copy the source tree"
		say "building the tree with qpatch-cc: $SW_CMD"
		(cd "$p" && CC="$QP_BIN/qpatch-cc" sh -c "$SW_CMD") >"$RW_LOG/deploy-build.log" 2>&1 ||
			die "build of the tree failed (see $RW_LOG/deploy-build.log)"
	fi
	FULL_BUILD_S=$(elapsed "$t0")
	DEPLOYED_NOW=1
	echo "$k $want" >"$p.at"
	rm -rf "$cache" "$cache.stamp"
	mkdir -p "$(dirname "$cache")"
	cp -a "$p" "$cache" && printf '%s\n%s\n%s\n' "$FULL_BUILD_S" "$want" "$DEPLOY_HOW" >"$cache.stamp"
	say "deployed ($DEPLOY_HOW): ${FULL_BUILD_S} s"
}

# --- running a patch live ----------------------------------------------------------

# live_redis ORIG FIX: redis-server of the deployed build, 100000 keys, 4
# INCR clients and redis-benchmark; the patch applied, checked, undone.
live_redis() {
	CLI=$1/src/redis-cli BENCH=$1/src/redis-benchmark
	step start
	start_redis "$1/src/redis-server" live
	redis_fill 100000
	redis_load_start 4 "$RW_LOG/live"
	sleep 1
	step qpatch-load
	qp_load "$PID" "$2"
	expect "patch listed in the process" qp_listed "$PID" "$(patch_id "$2")"
	sleep 1
	expect "redis-server answers" rcli_quiet ping
	expect "redis-benchmark still running" kill -0 "$BPID"
	step undo
	qp_undo "$PID"
	expect "no patch left in the process" qp_none "$PID"
	expect "redis-server answers" rcli_quiet ping
	step "nothing lost"
	redis_load_check
	rcli shutdown nosave >/dev/null 2>&1
	wait "$PID" 2>/dev/null
	LIVE_RESULT="4 clients ($REPLIES INCRs) + redis-benchmark (~$BRPS req/s) connected throughout, 0 errors, $N1 keys and digest unchanged"
}

# live_lua ORIG FIX: the busy interpreter of lua/server.lua.
live_lua() {
	local s0 s1 s2 rc
	step start
	RUN=$RW_LOG/run
	rm -rf "$RUN" && mkdir -p "$RUN"
	spawn "$RW_LOG/server.out" "$1/src/lua" "$RW_HERE/lua/server.lua" "$RUN"
	PID=$SPAWNED
	lua_cmd stats || die "interpreter does not answer: $(cat "$RW_LOG/server.out")"
	s0=$OUT
	step qpatch-load
	qp_load "$PID" "$2"
	expect "patch listed in the process" qp_listed "$PID" "$(patch_id "$2")"
	sleep 1
	lua_cmd stats || die "interpreter stopped answering after the patch: $(cat "$RW_LOG/server.out")"
	s1=$OUT
	expect "nothing lost: work went on, every error caught, state intact" lua_stats_ok "$s0" "$s1"
	step undo
	qp_undo "$PID"
	expect "no patch left in the process" qp_none "$PID"
	lua_cmd stats || die "interpreter stopped answering after undo"
	s2=$OUT
	expect "nothing lost after undo" lua_stats_ok "$s1" "$s2"
	lua_cmd quit
	wait "$PID"
	rc=$?
	[ $rc -eq 0 ] || die "interpreter exited with status $rc: $(cat "$RW_LOG/server.out")"
	LIVE_RESULT="$(sed 's/.*iter=\([0-9]*\).*/\1/' <<<"$s2") iterations of the busy loop, no error lost, state intact"
}

# live_sqlite ORIG FIX: the sqlite3 shell on the deployed library, an open
# transaction, a long query running while the patch goes in.
live_sqlite() {
	local digest0 from rc
	step start
	shell_start "$1" live
	[ "$(sq "$SQ_SCHEMA SELECT count(*) FROM data;")" = 20000 ] || die "cannot fill the database"
	digest0=$(sq "$SQ_DIGEST")
	grep -q "$1/.libs/libsqlite3.so" "/proc/$PID/maps" || die "the shell did not load the deployed libsqlite3"
	sq "$SQ_PENDING" >/dev/null || die "cannot open the transaction"
	step qpatch-load
	from=$(wc -l <"$SHOUT")
	sq_send "$SQ_BUSY"
	sleep 0.3
	qp_load "$PID" "$2"
	expect "patch listed in the process" qp_listed "$PID" "$(patch_id "$2")"
	SQ_WAIT=120 sq "SELECT 'waited';" >/dev/null || die "the shell stopped answering after the patch"
	expect "the query running during the patch gave the right sum" \
		grep -qx "$SQ_BUSY_OUT" <(tail -n +"$((from + 1))" "$SHOUT")
	expect "the open transaction kept its 10000 rows" test "$(sq "SELECT count(*) || ':' || sum(k) FROM pending;")" = "10000:50005000"
	step undo
	qp_undo "$PID"
	expect "no patch left in the process" qp_none "$PID"
	expect "the transaction commits" test "$(sq "COMMIT; SELECT count(*) FROM pending;")" = 10000
	expect "the data is unchanged" test "$(sq "$SQ_DIGEST")" = "$digest0"
	expect "the database is sound" test "$(sq "PRAGMA integrity_check;")" = ok
	sq_send ".quit"
	exec 7>&-
	wait "$PID"
	rc=$?
	[ $rc -eq 0 ] || die "the shell exited with status $rc: $(tail -n3 "$SHOUT")"
	LIVE_RESULT="a 6M-row query ran through the patch with the right sum, an open transaction (10000 rows) kept and committed, data and integrity_check unchanged"
}

# --- one patch ---------------------------------------------------------------------

# judged PKG PATCH: the judgement of that fix in sweep.judged ("patch",
# "refuse" or "nothing") and, in WHY, the reason given there.
judged() {
	local line
	line=$(awk -F'\t' -v p="$1" -v f="$2" '$1 == p && $2 == f { print $3 "\t" $4; exit }' "$JUDGED" 2>/dev/null)
	JUDGED_AS=${line%%$'\t'*} WHY=${line#*$'\t'}
	[ -n "$line" ] || WHY=""
}

# sweep_one K PATCH: the row of the K-th patch (a subshell: its failure is
# its row's, and the sweep goes on).  Row: package, patch (C files),
# verdict, functions, size, times, stop, result; OUTCOME (the last column,
# for the counts): applied, refused-ok, nothing-ok, wrong.
sweep_one() {
	local k=$1 p=$2 name=${2%.patch}
	(
	trap rw_cleanup EXIT
	RW_CASE=$PKG RW_LOG=$QP_RW_OUT/$PKG/$name
	mkdir -p "$RW_LOG"
	FD=$SWD/deploy RW_WORK=$SWD/fix/$name/work
	ROW_PROGRAM="$PKG" ROW_FIX="$p ($(patch_c_files "$SWD/src/0/debian/patches/$p" '[ch]' | sed 's|.*/||' | paste -sd, | sed 's/,/, /g'))"
	ROW_FUNCS="" ROW_SIZE="" ROW_BUILD="" ROW_STOP="" ROW_RESULT=""
	OUTCOME=wrong
	judged "$PKG" "$p"
	row_write() {
		printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$ROW_PROGRAM" "$ROW_FIX" \
			"${ROW_FUNCS:--}" "${ROW_SIZE:--}" "${ROW_BUILD:--}" "${ROW_STOP:--}" \
			"$ROW_RESULT" "$OUTCOME" >"$RW_LOG/row"
	}
	step "deploy build"
	deploy_at "$k" "$name"
	bin=$SW_BIN
	if [ -z "$bin" ]; then
		bin=$(cd "$FD" && ls .libs/libsqlite3.so.*.*.* 2>/dev/null | head -n1)
		[ -n "$bin" ] || die "no .libs/libsqlite3.so.X.Y.Z in the deployed build"
	fi
	step qpatch-build
	qp_build_run "$FD" "$SWD/src/$((k + 1))" "$RW_LOG/fix.qpatch" "$bin" "$SW_QPB_CMD" "$FD/$bin"
	QPB_PATCHED_S=$(sed -n 's/.*patched build \(done in \)\{0,1\}\([0-9.]*\) s.*/\2/p' "$QPB_LOG" | tail -n1)
	ROW_BUILD="$QPB_TOTAL_S s (incremental build ${QPB_PATCHED_S:-?} s) / $FULL_BUILD_S s ($DEPLOY_HOW)"
	if [ "$QPB_RC" -ne 0 ]; then
		[ -e "$RW_LOG/fix.qpatch" ] && die "qpatch-build failed but wrote a patch"
		qpb_refusals "$RW_LOG/refusals.tsv"
		if [ -s "$RW_LOG/refusals.tsv" ]; then
			ROW_RESULT="refused: $QPB_REFUSALS"
			[ "$JUDGED_AS" = refuse ] && OUTCOME=refused-ok
		elif grep -q 'nothing to patch\|does not touch it\|recompiled nothing' <<<"$QPB_ERROR"; then
			ROW_RESULT="nothing to patch: $QPB_ERROR"
			[ "$JUDGED_AS" = nothing ] && OUTCOME=nothing-ok
		else
			ROW_RESULT="**error**: $QPB_ERROR"
		fi
		case $OUTCOME:$JUDGED_AS in
		wrong:) ROW_RESULT="$ROW_RESULT (**not judged yet**)" ;;
		wrong:*) ROW_RESULT="$ROW_RESULT (**wrong**: judged '$JUDGED_AS': $WHY)" ;;
		*) ROW_RESULT="$ROW_RESULT (correct: $WHY)" ;;
		esac
		ROW_RESULT=$(printf '%s' "$ROW_RESULT" | tr '\n|' ' /')
		row_write
		say "$ROW_RESULT"
		exit 0
	fi
	PATCH_FUNCS=$(awk '$1 == "replaced" { printf "%s%s", sep, $2; sep = ", " }
		$1 == "new" && $2 == "function" { printf "%s%s (new)", sep, $3; sep = ", " }' "$QPB_LOG")
	ROW_FUNCS="$(awk '$1 == "replaced" || ($1 == "new" && $2 == "function") { n++ } END { print n + 0 }' "$QPB_LOG"): $PATCH_FUNCS"
	ROW_SIZE="$(sed -n "s/^patch '.*': id [^,]*, \([0-9]*\) bytes.*/\1/p" "$QPB_LOG") B"
	# die from here on: a patch that does not go in live is a bug
	ROW_RESULT=""
	"$SW_LIVE" "$FD" "$RW_LOG/fix.qpatch"
	OUTCOME=applied
	ROW_RESULT="applied live and undone: $LIVE_RESULT"
	if [ "$JUDGED_AS" = refuse ]; then
		OUTCOME=wrong
		ROW_RESULT="$ROW_RESULT (**wrong**: judged 'refuse': $WHY)"
	fi
	row_write
	say "$ROW_RESULT"
	)
	[ -f "$QP_RW_OUT/$PKG/$name/row" ] ||
		printf '| %s | %s | | | | | **FAIL**: stopped without a result; see its log | wrong |\n' "$PKG" "$p" \
			>"$QP_RW_OUT/$PKG/$name/row"
	cat "$QP_RW_OUT/$PKG/$name/row" >>"$QP_RW_OUT/$PKG.rows"
}

# --- the sweep -----------------------------------------------------------------------

# which qpatch: the commit of this tree when the tools were built from it
case $QP_BIN/ in
"$ROOT"/*)
	rev="qpatch $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
	[ -n "$(git -C "$ROOT" status --porcelain -- builder loader format libdecode 2>/dev/null)" ] &&
		rev="$rev with local changes"
	;;
*) rev="qpatch tools of $QP_BIN" ;;
esac
rev=${QP_RW_LABEL:-$rev}
t0=$(now_s)
for PKG in "${pkgs[@]+"${pkgs[@]}"}"; do
	echo "=== $PKG"
	p0=$(now_s)
	RW_CASE=$PKG RW_LOG=$QP_RW_OUT/$PKG
	mkdir -p "$RW_LOG"
	: >"$QP_RW_OUT/$PKG.rows"
	pkg_setup "$PKG"
	(
	step fetch
	fetch_source "$PKG"
	VER=$(dsc_version "$SRC_DSC")
	SWD=$SW_CACHE/$PKG-${VER#*:}
	mkdir -p "$SWD"
	step prepare
	prepare_trees "$PKG"
	echo "$VER" >"$QP_RW_OUT/$PKG.version"
	while read -r k p; do
		[ -n "$(patch_c_files "$SWD/src/0/debian/patches/$p")" ] || continue
		[ -z "${QP_SWEEP_ONLY:-}" ] || grep -qE -- "$QP_SWEEP_ONLY" <<<"$p" || continue
		echo "--- $PKG: $p"
		f0=$(now_s)
		sweep_one "$k" "$p"
		echo "--- $PKG: $p: $(tail -n1 "$QP_RW_OUT/$PKG.rows" | awk -F' [|] ' '{ print $NF }' | tr -d ' |') in $(elapsed "$f0") s"
	done <"$SWD/series"
	)
	secs=$(elapsed "$p0")
	{
		echo "$PKG $(cat "$QP_RW_OUT/$PKG.version" 2>/dev/null || echo '?')"
		echo "$(date -u +%Y-%m-%d) $secs $rev"
		cat "$QP_RW_OUT/$PKG.rows"
	} >"$SW_CACHE/$PKG.rows"
	echo "=== $PKG: $(wc -l <"$QP_RW_OUT/$PKG.rows") patches in $secs s"
done
total=$(elapsed "$t0")

# --- the table -------------------------------------------------------------------------


table=$QP_RW_OUT/sweep.md
{
	cat <<'EOF'
# The sweep

Written by `tests/realworld/sweep.sh` (`make sweep`); never edited by hand.

Every `debian/patches` file of Debian 12's `redis`, `lua5.4` and `sqlite3`
source packages that changes C code, as `qpatch-build` and `qpatch-load`
take it:

* the *vulnerable* tree is the package's source with its patch series
  applied up to that patch, the patch not included: the package as it was
  before the update that brought the patch (later fixes absent, as they
  were then).  The fixed tree is the same with the patch applied.  Unlike
  reverting the patch from the package as shipped, this never fails on a
  later patch touching the same lines, and each fix meets the code it was
  written against;
* the vulnerable tree is built with `qpatch-cc` as the case scripts build
  it (Debian's compiler flags; redis `make MALLOC=libc`: no TLS, no
  jemalloc, no systemd, and, since redis's Makefile builds `deps/` once
  and never looks at it again, the bundled Lua made again first and
  redis-server linked again when it changed: else a fix there is never
  recompiled; lua5.4 the upstream Makefile, Debian's
  `0001-build-system.patch` left out of every tree; sqlite3 configured and
  built in place, the target being `libsqlite3.so`) and `qpatch-build`
  makes the patch from the two trees.  All the patches of a package are
  deployed at one path, so that one deployed build becomes the next as a
  user's would: the patches in between applied to the built tree, and the
  build command run again, which recompiles what they changed (only the
  first patch of a package needs a full build); each patch's deployed
  build is also kept in the cache, for the next run;
* a patch is applied with `qpatch-load` to the program started from that
  build while it is under the case scripts' load (redis: 100000 keys, 4
  clients sending INCR and counting the replies, redis-benchmark with 20
  connections; lua5.4: the busy interpreter of `lua/server.lua`; sqlite3:
  an open transaction of 10000 rows and a 6M-row recursive query running
  through the patch); the program must keep answering and nothing may be
  lost, and the patch is undone.  Unlike the case scripts (docs/realworld.md),
  the sweep does not check each fix's own behaviour: it has no probe per fix;
* a refusal, or "nothing to patch", is compared with the judgement of that
  fix written in `tests/realworld/sweep.judged` from reading it: a fix
  that changes data the running process already holds (a type's layout, an
  initialised variable) must be refused; one whose change does not reach
  the target (a file not built in this configuration, a separate program)
  has nothing to patch.

Last column: *applied* (built, applied live and undone with nothing lost),
*refused-ok* and *nothing-ok* (as judged), *wrong* (an error, a refusal
or "nothing to patch" judged wrong or not judged yet, or a patch that failed
live).  Times: `qpatch-build` with a new work directory (its incremental
build of the fixed tree in brackets) / the deploy build with `qpatch-cc`
(a full build, or the one before updated), as long as it took when it was
made: a run that finds it in the cache reuses it, and its own time (after
each package's name) does not include it.

EOF
	n=0 na=0 nr=0 nn=0 nw=0
	for PKG in $ALL_PKGS; do
		f=$SW_CACHE/$PKG.rows
		[ -f "$f" ] || continue
		read -r _ ver <"$f"
		read -r day secs label < <(sed -n 2p "$f")
		echo "## $PKG $ver"
		echo
		echo "Swept on $day ($label, $(nproc) CPUs, make -j$QP_RW_JOBS) in $secs s."
		echo
		echo "| package | patch (C files and headers) | functions in the patch | patch size | qpatch-build / deploy build | target stopped | result | outcome |"
		echo "|---|---|---|---|---|---|---|---|"
		tail -n +3 "$f"
		echo
		while IFS= read -r row; do
			n=$((n + 1))
			case ${row##*| } in
			applied*) na=$((na + 1)) ;;
			refused-ok*) nr=$((nr + 1)) ;;
			nothing-ok*) nn=$((nn + 1)) ;;
			*) nw=$((nw + 1)) ;;
			esac
		done < <(tail -n +3 "$f" | sed 's/ |$//')
	done
	echo "## Count"
	echo
	echo "$n patches: $na applied live, $nr refused correctly, $nn correctly found to change nothing in the target, $nw wrong (errors, wrong refusals, failures live)."
	missing=""
	for PKG in $ALL_PKGS; do [ -f "$SW_CACHE/$PKG.rows" ] || missing="$missing $PKG"; done
	[ -z "$missing" ] || { echo; echo "Not swept yet:$missing."; }
} >"$table"
cat "$table"
if [ "$QP_RW_DOC" = 1 ]; then
	cp "$table" "$ROOT/docs/sweep.md"
	echo "written into docs/sweep.md"
fi
echo "logs: $QP_RW_OUT"
echo "sweep: $total s"

# Shared helpers of the real-world suite (sourced by the case scripts).
#
# A case script runs one program through the whole story: fetch the Debian
# source package, build the vulnerable version with qpatch-cc, start it,
# build the real fix with qpatch-build, apply it with qpatch-load while the
# program is busy, check the new behaviour and that nothing was lost, undo,
# and write one row of the results table.
#
# Environment (set by run.sh):
#   QP_BIN       bin directory of a qpatch build (qpatch-cc, qpatch-build, ...)
#   QP_RW_CACHE  cache directory (sources, deployed builds), kept between runs
#   QP_RW_OUT    directory of this run: logs, result rows
#   QP_RW_JOBS   parallel jobs for the programs' builds (default 2)
set -u
set -o pipefail
: "${QP_BIN:?QP_BIN must point at the bin directory of a qpatch build}"
: "${QP_RW_CACHE:?}"
: "${QP_RW_OUT:?}"
QP_RW_JOBS=${QP_RW_JOBS:-2}
# the programs' builds, also those qpatch-build runs
export MAKEFLAGS=-j$QP_RW_JOBS
# shellcheck disable=SC2034 # used by the case scripts
RW_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RW_CASE=$(basename "$0" .sh)
RW_LOG=$QP_RW_OUT/$RW_CASE
mkdir -p "$RW_LOG"
RW_PIDS=()
RW_STEP=setup
# Row fields, filled as the case goes.
ROW_PROGRAM="" ROW_FIX="" ROW_FUNCS="" ROW_SIZE="" ROW_BUILD="" ROW_STOP="" ROW_RESULT=""

say() { printf '[%s] %s\n' "$RW_CASE" "$*"; }
step() { RW_STEP=$1; say "-- $1"; }

rw_cleanup() {
	local p
	for p in "${RW_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${RW_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
}
trap rw_cleanup EXIT

# spawn OUTFILE CMD...: start a process in the background, remember its pid.
spawn() {
	local out=$1; shift
	"$@" >"$out" 2>&1 &
	SPAWNED=$!
	RW_PIDS+=("$SPAWNED")
}

# stop_pid PID: stop one process we started and reap it.
stop_pid() {
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# row_write: the table row of this case, for run.sh to collect; a case
# with several rows (one per fix) puts the others in ROWS_AFTER.
ROWS_AFTER=""
row_write() {
	{
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$ROW_PROGRAM" "$ROW_FIX" \
			"${ROW_FUNCS:--}" "${ROW_SIZE:--}" "${ROW_BUILD:--}" "${ROW_STOP:--}" \
			"$ROW_RESULT"
		printf '%s' "$ROWS_AFTER"
	} >"$QP_RW_OUT/$RW_CASE.row"
}

# die MESSAGE: the case failed at the current step; record it and stop.
die() {
	local msg
	msg=$(printf '%s' "$*" | tr '\n|' ' /' | sed 's/  */ /g; s/ *$//')
	say "FAIL ($RW_STEP): $msg"
	ROW_RESULT="**FAIL** at $RW_STEP: $msg"
	row_write
	exit 1
}

# expect DESCRIPTION COMMAND...: the command must succeed.
expect() {
	local what=$1; shift
	if "$@"; then
		say "ok: $what"
	else
		die "$what"
	fi
}

# wait_for SECONDS COMMAND...: poll until the command succeeds.
wait_for() {
	local t=$1 i; shift
	for ((i = 0; i < t * 20; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

# --- sources -----------------------------------------------------------------

# The Debian mirrors this machine uses (deb822 or one-line sources), with
# deb.debian.org as the default; QP_RW_MIRROR / QP_RW_SECURITY_MIRROR win.
rw_mirrors() {
	local f main="" sec=""
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		eval "$(awk '
			/^URIs:/ { u = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) s[$i] = 1 }
			/^$/ { emit() }
			END { emit() }
			function emit() {
				if (u != "" && ("bookworm-security" in s)) print "sec=" u
				else if (u != "" && ("bookworm" in s)) print "main=" u
				u = ""; delete s
			}' "$f")"
	done
	if [ -f /etc/apt/sources.list ]; then
		[ -n "$main" ] || main=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list)
		[ -n "$sec" ] || sec=$(awk '$1 == "deb" && $3 == "bookworm-security" { print $2; exit }' /etc/apt/sources.list)
	fi
	RW_MIRROR=${QP_RW_MIRROR:-${main:-http://deb.debian.org/debian}}
	RW_SECURITY_MIRROR=${QP_RW_SECURITY_MIRROR:-${sec:-http://deb.debian.org/debian-security}}
}

rw_apt() {
	local a=$QP_RW_CACHE/apt
	local opts=(-o "Dir::Etc::SourceList=$a/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache" -o Debug::NoLocking=1)
	[ "$(id -u)" -eq 0 ] && opts+=(-o APT::Sandbox::User=root)
	apt-get "${opts[@]}" "$@"
}

# fetch_source PKG: download PKG's bookworm source package (once) into
# $QP_RW_CACHE/dl/PKG and set SRC_DSC to its .dsc.  Debian's archive keeps
# only current versions, so the version is whatever bookworm ships when the
# cache is first filled; delete the directory to take a newer one.
fetch_source() {
	local pkg=$1 dir=$QP_RW_CACHE/dl/$1 a=$QP_RW_CACHE/apt
	SRC_DSC=$(ls "$dir"/*.dsc 2>/dev/null | head -n1)
	if [ -n "$SRC_DSC" ]; then
		say "source of $pkg cached: $(basename "$SRC_DSC")"
		return 0
	fi
	rw_mirrors
	mkdir -p "$a/lists/partial" "$a/cache/archives/partial" "$dir"
	printf 'deb-src %s bookworm main\ndeb-src %s bookworm-security main\n' \
		"$RW_MIRROR" "$RW_SECURITY_MIRROR" >"$a/sources.list"
	say "fetching $pkg from $RW_MIRROR and $RW_SECURITY_MIRROR"
	rw_apt -q update >"$RW_LOG/apt-update.log" 2>&1 ||
		die "apt-get update failed (see $RW_LOG/apt-update.log)"
	(cd "$dir" && rw_apt -q source --download-only "$pkg") >"$RW_LOG/apt-source.log" 2>&1 ||
		die "apt-get source $pkg failed (see $RW_LOG/apt-source.log)"
	SRC_DSC=$(ls "$dir"/*.dsc 2>/dev/null | head -n1)
	[ -n "$SRC_DSC" ] || die "no .dsc for $pkg"
}

# fetch_case PKG: fetch_source PKG, then the case's names: VER (the
# package's Debian version), ROW_PROGRAM, D (its directory in the cache)
# and RW_WORK (qpatch-build's work directory, kept there).
fetch_case() {
	fetch_source "$1"
	VER=$(dsc_version "$SRC_DSC")
	ROW_PROGRAM="$1 $VER"
	D=$QP_RW_CACHE/$1-${VER#*:}
	RW_WORK=$D/work
}

# dsc_version DSC: the Debian version of a source package.
dsc_version() { awk '/^Version:/ { print $2; exit }' "$1"; }

# unpack_source DSC DIR: dpkg-source -x (Debian's patches applied) into DIR.
unpack_source() {
	local dl tmp
	dl=$(dirname "$1")
	tmp=unpacked.$$
	rm -rf "$2" "${dl:?}/$tmp"
	mkdir -p "$(dirname "$2")"
	(cd "$dl" && dpkg-source -q --no-check -x "$(basename "$1")" "$tmp") \
		>"$RW_LOG/dpkg-source.log" 2>&1 ||
		die "dpkg-source -x $(basename "$1") failed (see $RW_LOG/dpkg-source.log)"
	mv "$dl/$tmp" "$2"
	rm -rf "$2/.pc"
}

# debian_patch TREE WORD: the debian/patches file of TREE named in its
# series whose name or content mentions WORD (e.g. a CVE number).
debian_patch() {
	local tree=$1 word=$2 p
	while read -r p _; do
		case $p in '' | '#'*) continue ;; esac
		if [[ $p == *"$word"* ]] || grep -q -- "$word" "$tree/debian/patches/$p" 2>/dev/null; then
			echo "$tree/debian/patches/$p"
			return 0
		fi
	done <"$tree/debian/patches/series"
	return 1
}

# --- building ----------------------------------------------------------------

# Identity of the compiler wrapper: a deployed build made with another
# qpatch-cc is rebuilt (its objects would not compare with new ones).
cc_identity() { sha256sum "$QP_BIN/qpatch-cc" | cut -c1-16; }

# deploy_build TREE CMD MAKE_TREE: build TREE with qpatch-cc as a user
# deploying the program would (`sh -c CMD` with CC set, and CXX to
# qpatch-c++), once; later runs
# reuse it.  MAKE_TREE (a function) creates the unbuilt tree first.  Sets
# FULL_BUILD_S to the time that full build took.
deploy_build() {
	local tree=$1 cmd=$2 stamp=$1.deployed want t0
	want="$(cc_identity) $cmd"
	if [ -f "$stamp" ] && [ "$(sed -n 2p "$stamp")" = "$want" ]; then
		FULL_BUILD_S=$(sed -n 1p "$stamp")
		say "deployed build cached (full build took ${FULL_BUILD_S} s)"
		return 0
	fi
	rm -rf "$tree" "$stamp"
	"$3" "$tree"
	say "building the original tree with qpatch-cc: $cmd"
	t0=$(now_s)
	(cd "$tree" && CC="$QP_BIN/qpatch-cc" CXX="$QP_BIN/qpatch-c++" sh -c "$cmd") >"$RW_LOG/deploy-build.log" 2>&1 ||
		die "build of the original tree failed (see $RW_LOG/deploy-build.log)"
	FULL_BUILD_S=$(elapsed "$t0")
	DEPLOYED_NOW=1
	printf '%s\n%s\n' "$FULL_BUILD_S" "$want" >"$stamp"
	say "full build: ${FULL_BUILD_S} s"
}

# qp_build ORIG PATCHED FIX BINARY CMD [TARGET]: run qpatch-build with the
# work directory $RW_WORK, kept between runs (qpatch-build reuses its
# original build, and it holds the fixed build: see ref_bin), and parse its
# report into PATCH_FUNCS (replaced and new functions), PATCH_NFUNCS,
# PATCH_BYTES, QPB_TOTAL_S, QPB_PATCHED_S.  BINARY is the program in the
# build tree, TARGET the deployed one (default ORIG/BINARY).
qp_build() {
	qp_build_run "$@"
	if [ "$QPB_RC" -ne 0 ]; then
		die "qpatch-build: $QPB_ERROR"
	fi
	PATCH_FUNCS=$(awk '$1 == "replaced" { printf "%s%s", sep, $2; sep = ", " }
		$1 == "new" && $2 == "function" { printf "%s%s (new)", sep, $3; sep = ", " }' "$QPB_LOG")
	PATCH_NFUNCS=$(awk '$1 == "replaced" || ($1 == "new" && $2 == "function") { n++ } END { print n + 0 }' "$QPB_LOG")
	PATCH_BYTES=$(sed -n "s/^patch '.*': id [^,]*, \([0-9]*\) bytes.*/\1/p" "$QPB_LOG")
	QPB_PATCHED_S=$(sed -n 's/.*patched build \([0-9.]*\) s.*/\1/p' "$QPB_LOG")
	ROW_FUNCS="$PATCH_NFUNCS: $PATCH_FUNCS"
	ROW_SIZE="$PATCH_BYTES B"
	ROW_BUILD="$QPB_TOTAL_S s (incremental build $QPB_PATCHED_S s) / $FULL_BUILD_S s"
}

# qp_build_run ORIG PATCHED FIX BINARY CMD [TARGET]: run qpatch-build as
# qp_build does, its output in $RW_LOG/$QPB_LOGNAME.log (default
# qpatch-build.log); sets QPB_RC, QPB_TOTAL_S, QPB_LOG, and QPB_ERROR to its
# first error or refusal when it failed.
qp_build_run() {
	local orig=$1 patched=$2 fix=$3 binary=$4 cmd=$5 target=${6:-$1/$4} t0
	local out=$RW_LOG/${QPB_LOGNAME:-qpatch-build}.log
	# a work directory of an earlier deployed build is of no use
	[ "${DEPLOYED_NOW:-0}" = 1 ] && rm -rf "$RW_WORK"
	DEPLOYED_NOW=0
	# nor one that does not say which tree it builds (older qpatch-build)
	[ -f "$RW_WORK/source" ] || rm -rf "$RW_WORK"
	rm -f "$fix"
	t0=$(now_s)
	"$QP_BIN/qpatch-build" "$orig" "$patched" -o "$fix" --target "$target" \
		--binary "$binary" --build-cmd "$cmd" -w "$RW_WORK" >"$out" 2>&1
	QPB_RC=$?
	QPB_TOTAL_S=$(elapsed "$t0")
	QPB_LOG=$out
	sed 's/^/    /' "$out"
	QPB_ERROR=""
	# the error is qpatch-build's last line (the others are progress)
	[ "$QPB_RC" -eq 0 ] ||
		QPB_ERROR=$({ grep '^qpatch-build: ' "$out" | tail -n1 | sed 's/^qpatch-build: //'; } ||
			grep -m1 'REFUSED' "$out")
	return 0
}

# qpb_refusals TSV: the refusals in qpatch-build's report $QPB_LOG, written
# to TSV as "NAME<TAB>WHY<TAB>OBJECT" lines, and summed up in QPB_REFUSALS:
# one entry per name and reason with its objects (basenames), layouts
# first.
qpb_refusals() {
	# the report's lines are KIND NAME WHERE SIZE bytes  WHY[  OBJECT]
	awk '$1 == "REFUSED" {
		rest = substr($0, index($0, " bytes") + 6); n = split(rest, p, /  +/)
		print $2 "\t" p[2] "\t" (n >= 3 ? p[3] : $3) }' "$QPB_LOG" >"$1"
	QPB_REFUSALS=$(awk -F'\t' '
		{ k = $1 "\t" $2; o = $3; sub(/.*\//, "", o); if (!(k in objs)) order[++n] = k
		  if (++nobj[k] <= 3) objs[k] = objs[k] (objs[k] == "" ? "" : ", ") o
		  else more[k] = " and " (nobj[k] - 3) " more objects" }
		END {
			for (pass = 1; pass <= 2; pass++)
				for (i = 1; i <= n; i++) {
					split(order[i], f, "\t")
					if ((f[2] ~ /layout/) != (pass == 1))
						continue
					printf "%s%s: %s (%s%s)", (m++ ? "; " : ""), f[1], f[2], objs[order[i]], more[order[i]]
				}
		}' "$1")
}

# refused_fix FIX FILES ORIG FIXED BINARY CMD TARGET TYPE: a real fix that
# must not be applied to a running process: qpatch-build of ORIG -> FIXED
# (work directory $RW_WORK.refused-FIX) must fail, write no patch, and list
# a refusal saying that the layout of TYPE changed.  Runs in a subshell so
# the case goes on if it fails; its row (with its refusals as result) is
# added to ROWS_AFTER, and REFUSED_RC is its status.
refused_fix() {
	local fix=$1 files=$2
	(
	ROW_FIX="$fix ($files)" ROW_FUNCS="" ROW_SIZE="" ROW_STOP=""
	RW_WORK=$RW_WORK.refused-$fix
	QPB_LOGNAME=qpatch-build-$fix
	qp_build_run "$3" "$4" "$RW_LOG/$fix.qpatch" "$5" "$6" "$7"
	QPB_PATCHED_S=$(sed -n 's/.*patched build \(done in \)\{0,1\}\([0-9.]*\) s.*/\2/p' "$QPB_LOG" | tail -n1)
	ROW_BUILD="$QPB_TOTAL_S s (incremental build ${QPB_PATCHED_S:-?} s) / $FULL_BUILD_S s"
	if [ "$QPB_RC" -eq 0 ]; then
		ROW_SIZE="$(sed -n "s/^patch '.*': id [^,]*, \([0-9]*\) bytes.*/\1/p" "$QPB_LOG") B"
		die "qpatch-build made a patch instead of refusing: the fix changes the layout of $8, which the running process's data keeps"
	fi
	[ -e "$RW_LOG/$fix.qpatch" ] && die "qpatch-build failed but wrote '$RW_LOG/$fix.qpatch'"
	qpb_refusals "$RW_LOG/$fix.refusals.tsv"
	awk -F'\t' -v t="$8" '$1 == t && $2 ~ /layout/ { ok = 1 } END { exit !ok }' "$RW_LOG/$fix.refusals.tsv" ||
		die "qpatch-build refused, but not saying that the layout of $8 changed: $QPB_ERROR"
	local refusals=$QPB_REFUSALS
	ROW_RESULT="refused, as it must be: $refusals; no patch written"
	row_write
	say "$ROW_RESULT"
	)
	REFUSED_RC=$?
	ROWS_AFTER=$ROWS_AFTER$(cat "$QP_RW_OUT/$RW_CASE.row" 2>/dev/null)$'\n'
}

# ref_bin REL: the program as the fixed tree builds it, from qpatch-build's
# work directory: WORK/ptree (the patched version's own tree, when it
# builds at the original tree's path), else WORK/tree (one tree for both,
# the patched version built last), or WORK/patched (older qpatch-build).
ref_bin() {
	local d
	for d in ptree tree patched; do
		[ -x "$RW_WORK/$d/$1" ] && { echo "$RW_WORK/$d/$1"; return 0; }
	done
	return 1
}

# qp_load [OPTION...] PID FIX (or any qpatch-load apply arguments, e.g.
# --so LIB PID): apply, its output in $RW_LOG/qpatch-load.log; sets STOP_US
# from "target stopped for N us".
qp_load() {
	local out=$RW_LOG/qpatch-load.log
	"$QP_BIN/qpatch-load" "$@" >"$out" 2>&1
	local rc=$?
	sed 's/^/    /' "$out"
	[ $rc -eq 0 ] || die "qpatch-load: $(sed -n 's/^qpatch-load: //p' "$out" | head -n1)"
	STOP_US=$(sed -n 's/^target stopped for \([0-9]*\) us.*/\1/p' "$out")
	ROW_STOP="$STOP_US µs"
}

# qp_undo PID: undo the last patch.
qp_undo() {
	local out=$RW_LOG/qpatch-undo.log
	"$QP_BIN/qpatch-load" --undo "$1" >"$out" 2>&1
	local rc=$?
	sed 's/^/    /' "$out"
	[ $rc -eq 0 ] || die "qpatch-load --undo: $(sed -n 's/^qpatch-load: //p' "$out" | head -n1)"
}

# qp_listed PID ID: the patch is recorded in the process.
qp_listed() { "$QP_BIN/qpatch-load" --list "$1" 2>/dev/null | grep -q "patch '$2'"; }
qp_none() { "$QP_BIN/qpatch-load" --list "$1" 2>&1 | grep -q "no patches applied"; }
patch_id() { "$QP_BIN/qpatch-dump" "$1" | sed -n "1s/^patch '\(.*\)'.*/\1/p"; }

# --- sweeps: a package's debian/patches one at a time --------------------------

# series_patches TREE: the patches of TREE's debian/patches/series, in order.
series_patches() { awk '$1 !~ /^#/ && NF { print $1 }' "$1/debian/patches/series"; }

# patch_c_files PATCH [EXT]: the .c files (EXT: a regular expression, e.g.
# '[ch]') PATCH changes (paths without their first component, as patch -p1
# applies them), one a line.
patch_c_files() {
	awk -v ext="${2:-c}" '/^\+\+\+ / { p = $2; sub(/^[^\/]*\//, "", p); if (p ~ "\\." ext "$") print p }' "$1" | sort -u
}

# --- the programs: build commands and how they run ----------------------------

# redis: Debian's compiler flags (hardening=+all as debian/rules asks), a
# minimal configuration (bundled Lua, no jemalloc, no TLS, no systemd).
# shellcheck disable=SC2016 # expanded by the build's sh -c
RW_REDIS_BUILD_CMD='export DEB_BUILD_MAINT_OPTIONS=hardening=+all; CFLAGS="$(dpkg-buildflags --get CFLAGS)" CPPFLAGS="$(dpkg-buildflags --get CPPFLAGS)" LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" make CC="$CC" MALLOC=libc'
# lua5.4: the upstream Makefile (Debian's libtool build-system patch left
# out) with Debian's compiler flags.
# shellcheck disable=SC2016
RW_LUA_BUILD_CMD='make linux CC="$CC -std=gnu99" MYCFLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" MYLDFLAGS="$(dpkg-buildflags --get LDFLAGS)"'
# sqlite3: configured and built in the tree as debian/rules does (autotools,
# libtool, --disable-amalgamation, Debian's CFLAGS and feature defines; the
# shared library only, without Tcl); qpatch-build runs make in its copy.
RW_SQLITE_FLAGS='-fno-strict-aliasing -DSQLITE_SECURE_DELETE -DSQLITE_ENABLE_COLUMN_METADATA -DSQLITE_ENABLE_FTS3 -DSQLITE_ENABLE_FTS3_PARENTHESIS -DSQLITE_ENABLE_RTREE=1 -DSQLITE_SOUNDEX=1 -DSQLITE_ENABLE_UNLOCK_NOTIFY -DSQLITE_OMIT_LOOKASIDE=1 -DSQLITE_ENABLE_DBSTAT_VTAB -DSQLITE_ALLOW_ROWID_IN_VIEW -DSQLITE_ENABLE_UPDATE_DELETE_LIMIT=1 -DSQLITE_ENABLE_LOAD_EXTENSION -DSQLITE_ENABLE_JSON1 -DSQLITE_LIKE_DOESNT_MATCH_BLOBS -DSQLITE_THREADSAFE=1 -DSQLITE_ENABLE_FTS3_TOKENIZER=1 -DSQLITE_USE_URI=1 -DSQLITE_MAX_SCHEMA_RETRY=25 -DSQLITE_ENABLE_PREUPDATE_HOOK -DSQLITE_ENABLE_SESSION -DSQLITE_ENABLE_STMTVTAB -DSQLITE_MAX_VARIABLE_NUMBER=250000'
RW_SQLITE_DEPLOY_CMD="export DEB_BUILD_MAINT_OPTIONS=hardening=+all; ./configure --disable-static --disable-amalgamation --disable-tcl --enable-threadsafe --enable-load-extension --enable-fts5 CFLAGS=\"\$(dpkg-buildflags --get CFLAGS) $RW_SQLITE_FLAGS\" CPPFLAGS=\"\$(dpkg-buildflags --get CPPFLAGS)\" LDFLAGS=\"\$(dpkg-buildflags --get LDFLAGS) -Wl,--as-needed\" && make"

# lua_multiarch_h TREE: the header Debian's luaconf.h patch includes.
lua_multiarch_h() {
	printf '#ifndef _LUA_DEB_MULTIARCH_\n#define _LUA_DEB_MULTIARCH_\n#define DEB_HOST_MULTIARCH "%s"\n#endif\n' \
		"$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)" \
		>"$1/src/lua5.4-deb-multiarch.h"
}

# free_port: a TCP port nobody listens on.
free_port() {
	local p i
	for i in $(seq 50); do
		p=$((20000 + RANDOM % 20000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
	done
	return 1
}

# start_redis BINARY NAME: redis-server with a config file in $RW_LOG/NAME;
# sets PORT, PID, LOGFILE.  CLI is the redis-cli to talk to it with.
start_redis() {
	local dir=$RW_LOG/$2
	rm -rf "$dir" && mkdir -p "$dir"
	PORT=$(free_port) || die "no free TCP port"
	LOGFILE=$dir/redis.log
	cat >"$dir/redis.conf" <<-EOC
		port $PORT
		bind 127.0.0.1
		dir $dir
		logfile $LOGFILE
		save ""
		appendonly no
		daemonize no
		# DEBUG POPULATE and DEBUG DIGEST
		enable-debug-command local
	EOC
	# newproxy(), which redis.sh's probe uses, where the server has the
	# setting (a fix of the package added it: older builds refuse it)
	grep -q lua-enable-deprecated-api "$1" &&
		echo "lua-enable-deprecated-api yes" >>"$dir/redis.conf"
	spawn "$dir/stdout" "$1" "$dir/redis.conf"
	PID=$SPAWNED
	wait_for 20 rcli_quiet ping || die "redis-server did not start: $(tail -n3 "$LOGFILE" "$dir/stdout" 2>/dev/null)"
}
rcli() { "$CLI" -p "$PORT" "$@"; }
rcli_quiet() { [ "$("$CLI" -p "$PORT" "$@" 2>/dev/null)" = PONG ]; }
redis_conns() { rcli info clients | sed -n 's/^connected_clients:\([0-9]*\).*/\1/p'; }

# redis_fill NKEYS: DEBUG POPULATE; sets N0 (keys) and DIG0 (digest).
redis_fill() {
	[ "$(rcli debug populate "$1" key 32)" = OK ] || die "DEBUG POPULATE failed"
	N0=$(rcli dbsize)
	DIG0=$(rcli debug digest)
}

# redis_load_start NCLIENTS DIR: NCLIENTS clients (redis/client.sh: INCR
# client:I in database 2 every 20 ms, counting the replies) and
# redis-benchmark (20 connections, database 1; its tests RL_TESTS, default
# set,get,incr,lpush,hset) on the server at $PORT, their
# output in DIR; sets CLIENT_PIDS, BPID, CONN0, RL_STOP, RL_DIR, RL_N.
redis_load_start() {
	local i
	RL_N=$1 RL_DIR=$2 RL_STOP=$2/stop-clients
	rm -f "$RL_STOP"
	CLIENT_PIDS=()
	for i in $(seq "$RL_N"); do
		spawn "$RL_DIR/client.$i.out" "$RW_HERE/redis/client.sh" "$CLI" "$PORT" 2 "client:$i" "$RL_STOP"
		CLIENT_PIDS+=("$SPAWNED")
	done
	spawn "$RL_DIR/benchmark.out" "$BENCH" -p "$PORT" --dbnum 1 -c 20 -n 2000000000 -r 100000 \
		-t "${RL_TESTS:-set,get,incr,lpush,hset}" -q
	BPID=$SPAWNED
	redis_connected() { [ "$(redis_conns)" -ge $((RL_N + 21)) ]; }
	wait_for 20 redis_connected || die "clients and redis-benchmark did not connect"
	CONN0=$(redis_conns)
	say "$CONN0 connections, redis-benchmark running"
}

# redis_load_check: stop the load of redis_load_start and check that
# nothing was lost: redis-benchmark ran throughout without an error, every
# client's INCR replies are all counted in its key (each reply one more
# than the one before), no connection dropped,
# and the keys of redis_fill (N0, DIG0) are unchanged.  Sets REPLIES, BRPS,
# CONN1, N1.
redis_load_check() {
	local p i out n bad v berr seq_bad
	# redis-benchmark exits at the first error or lost connection
	expect "redis-benchmark ran throughout" kill -0 "$BPID"
	CONN1=$(redis_conns)
	touch "$RL_STOP"
	for p in "${CLIENT_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	stop_pid "$BPID"
	tr '\r' '\n' <"$RL_DIR/benchmark.out" >"$RL_DIR/benchmark.txt"
	berr=$(grep -ci 'error\|closed\|reset\|refused' "$RL_DIR/benchmark.txt")
	[ "$berr" -eq 0 ] || die "redis-benchmark reported errors: $(grep -i -m1 'error\|closed\|reset\|refused' "$RL_DIR/benchmark.txt")"
	BRPS=$(sed -n 's/.*rps=[0-9.]* (overall: \([0-9.]*\)).*/\1/p' "$RL_DIR/benchmark.txt" | tail -n1 |
		awk '{ printf "%.0f", $1 }')
	REPLIES=0
	for i in $(seq "$RL_N"); do
		out=$RL_DIR/client.$i.out
		n=$(grep -c '^[0-9][0-9]*$' "$out")
		bad=$(grep -vc '^[0-9][0-9]*$' "$out")
		v=$(rcli -n 2 get "client:$i")
		[ "$bad" -eq 0 ] || die "client $i got errors: $(grep -v -m1 '^[0-9][0-9]*$' "$out")"
		# each reply one more than the one before, from 1: none lost or repeated
		seq_bad=$(awk '$0 != NR { print "reply " NR " is " $0; exit }' "$out")
		[ -z "$seq_bad" ] || die "client $i: $seq_bad"
		[ "$n" -gt 0 ] && [ "$v" = "$n" ] || die "client $i: $n replies but client:$i = $v"
		REPLIES=$((REPLIES + n))
	done
	say "ok: $RL_N clients, $REPLIES INCR replies, all counted, each one more than the one before; $CONN0 connections before, $CONN1 after"
	[ "$CONN1" -ge "$CONN0" ] || die "connections dropped: $CONN0 before, $CONN1 after"
	rcli -n 1 flushdb >/dev/null && rcli -n 2 flushdb >/dev/null
	N1=$(rcli dbsize)
	[ "$N1" = "$N0" ] || die "$N0 keys before, $N1 after"
	[ "$(rcli debug digest)" = "$DIG0" ] || die "dataset digest $DIG0 before, $(rcli debug digest) after"
	say "ok: $N1 keys, digest unchanged"
}

# lua_cmd CMD: run CMD in the interpreter (lua/server.lua) serving $RUN; its
# answer in OUT.
SEQ=0
lua_cmd() {
	SEQ=$((SEQ + 1))
	OUT=""
	echo "$1" >"$RUN/cmd.tmp" && mv "$RUN/cmd.tmp" "$RUN/cmd.$SEQ"
	[ "$1" = quit ] && return 0
	wait_for 20 test -f "$RUN/out.$SEQ" || return 1
	OUT=$(cat "$RUN/out.$SEQ")
}

# lua_deploy: the lua5.4 case's trees (lua.sh, lua-so.sh): $D/patched is
# the package with Debian's libtool build-system patch reverted, $D/orig
# that without the CVE-2022-33099 fix, built as deployed; sets LUA.
lua_deploy() {
	step prepare
	if [ ! -f "$D/patched.prepared" ]; then
		unpack_source "$SRC_DSC" "$D/patched"
		FIXP=$(debian_patch "$D/patched" 33099) || die "no debian/patches file for $CVE in $PKG $VER"
		BSP=$(debian_patch "$D/patched" build-system) || die "no build-system patch in $PKG $VER"
		patch -d "$D/patched" -R -p1 -s <"$BSP" || die "cannot revert $(basename "$BSP")"
		lua_multiarch_h "$D/patched"
		cp "$FIXP" "$D/fix.patch"
		touch "$D/patched.prepared"
	fi
	say "fix: $(basename "$(debian_patch "$D/patched" 33099)")"
	step "deploy build"
	deploy_build "$D/orig" "$BUILD_CMD" lua_make_orig
	LUA=$D/orig/src/lua
}
lua_make_orig() {
	cp -a "$D/patched" "$1" &&
		patch -d "$1" -R -p1 -s <"$D/fix.patch" || die "cannot revert the fix"
}

# lua_start: the interpreter (lua/server.lua) serving $RUN; sets PID, and
# its first answers P0 (probe) and S0 (stats).
lua_start() {
	step start
	RUN=$RW_LOG/run
	rm -rf "$RUN" && mkdir -p "$RUN"
	spawn "$RW_LOG/server.out" "$LUA" "$RW_HERE/lua/server.lua" "$RUN"
	PID=$SPAWNED
	lua_sample "does not answer"
	P0=$P S0=$S
	say "pid $PID: probe '$P0', $S0"
}

# lua_sample WHY: the interpreter's probe and stats answers into P and S;
# it dies with "interpreter WHY" when it does not answer.
lua_sample() {
	lua_cmd probe || die "interpreter $1: $(cat "$RW_LOG/server.out")"
	P=$OUT
	lua_cmd stats || die "interpreter $1"
	S=$OUT
}

# lua_ref_answer: what the fixed build in qpatch-build's work directory
# answers to the probe, into PFIX; 1 when there is none.
lua_ref_answer() {
	local refbin
	refbin=$(ref_bin src/lua) || return 1
	REF=$RW_LOG/ref
	rm -rf "$REF" && mkdir -p "$REF"
	echo probe >"$REF/cmd.1" && echo quit >"$REF/cmd.2"
	timeout 60 "$refbin" "$RW_HERE/lua/server.lua" "$REF" >"$RW_LOG/ref.out" 2>&1
	PFIX=$(cat "$REF/out.1" 2>/dev/null)
	say "fixed build answers '$PFIX'"
}

# lua_stop: the interpreter quits, with status 0; sets ITER from S2.
lua_stop() {
	local rc
	step stop
	lua_cmd quit
	wait "$PID"
	rc=$?
	[ $rc -eq 0 ] || die "interpreter exited with status $rc: $(cat "$RW_LOG/server.out")"
	ITER=$(sed 's/.*iter=\([0-9]*\).*/\1/' <<<"$S2")
}

# lua_stats_ok OLD NEW: two answers of lua/server.lua's "stats" (iter=N
# caught=N state=100000 sum=S): work went on, every error was caught, the
# state is intact.
lua_stats_ok() {
	local oi ni nc os ns
	oi=$(sed 's/.*iter=\([0-9]*\).*/\1/' <<<"$1") os=${1##*sum=}
	ni=$(sed 's/.*iter=\([0-9]*\).*/\1/' <<<"$2") ns=${2##*sum=}
	nc=$(sed 's/.*caught=\([0-9]*\).*/\1/' <<<"$2")
	[ "$ni" -gt "$oi" ] && [ "$nc" = "$ni" ] && [ "$ns" = "$os" ] && [[ $2 == *state=100000* ]]
}

# shell_start DIR NAME: the sqlite3 shell of build DIR on database NAME.db,
# its commands from a FIFO (fd 7), its output in $RW_LOG/NAME.out; sets PID
# and SHOUT.
shell_start() {
	local fifo=$RW_LOG/$2.fifo
	rm -f "$fifo" "$RW_LOG/$2.db" && mkfifo "$fifo" || die "mkfifo failed"
	SHOUT=$RW_LOG/$2.out
	# opened read-write first, so that neither end waits for the other
	exec 7<>"$fifo"
	# (the redirection inside: a background job's stdin is /dev/null otherwise;
	# sh and env exec, so the pid is the shell's)
	spawn "$SHOUT" sh -c 'exec env LD_LIBRARY_PATH="$1" "$2" -batch "$3" <"$4"' sh \
		"$1/.libs" "$1/.libs/sqlite3" "$RW_LOG/$2.db" "$fifo"
	PID=$SPAWNED
	sq "SELECT 'ready';" >/dev/null || die "the shell does not answer: $(tail -n3 "$SHOUT")"
}
# sq SQL: send SQL (and a marker) to the shell; prints what it answered.
# (The marker is unique without a counter: sq runs in $(...) subshells.)
sq() {
	local from mark
	mark=@@$(date +%s%N)
	from=$(wc -l <"$SHOUT")
	printf '%s\n.print %s\n' "$1" "$mark" >&7 || return 1
	wait_for "${SQ_WAIT:-30}" grep -qx "$mark" "$SHOUT" || return 1
	tail -n +"$((from + 1))" "$SHOUT" | sed "/^$mark\$/,\$d"
}
sq_send() { printf '%s\n' "$1" >&7; }
# the probe table and 20000 rows of data
SQ_SCHEMA="CREATE TABLE probe(k, b CHECK(b IS NOT NULL)); CREATE TABLE data(k INTEGER PRIMARY KEY, v TEXT); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<20000) INSERT INTO data SELECT x, hex(randomblob(16)) FROM c;"
SQ_DIGEST="SELECT count(*) || ':' || sum(k) || ':' || sum(length(v)) FROM data;"
# the transaction a patch must not disturb: 10000 rows, uncommitted
SQ_PENDING="BEGIN; CREATE TEMP TABLE pending(k); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<10000) INSERT INTO pending SELECT x FROM c;"
# a long query to run while a patch goes in, and its answer
SQ_BUSY="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<6000000) SELECT 'busy ' || sum(x) FROM c;"
SQ_BUSY_OUT="busy 18000003000000"

# --- soak: the case's fix applied and undone many times ----------------------
#
# With QP_RW_SOAK=1 (tests/realworld/soak.sh, `make soak`), a case that
# supports it runs SOAK_N more cycles of apply and undo of its fix
# (QP_RW_SOAK_N, else the case's default; redis: after its first undo,
# qemu: before its first apply), with a random pause of 0-20 ms after
# each, under the case's load; then checks that the target has exactly the
# mappings, open files and threads it had before (soak_before, before its
# first apply), no qpatch mapping or memfd left, an RSS outside the
# allocator's mappings grown by at most SOAK_OTHER_BOUND_KB, and in all by
# at most SOAK_RSS_BOUND_KB beyond what the program itself accounts for
# (SOAK_ACCOUNTED).  A case sets:
#   SOAK_ALIVE      a function that fails when the target or its load has
#                   stopped (called after every cycle)
#   SOAK_ACCOUNTED  optional: a function printing the kB of memory the
#                   program knows it allocated (its own allocator's count),
#                   whose growth is not the loader's
# The figures go to $QP_RW_OUT/$RW_CASE.soak and .stops (lines of
# soak.sh's tables); the snapshots and the loader's outputs of failed runs
# to $RW_LOG/soak/.

soak_enabled() { [ "${QP_RW_SOAK:-0}" = 1 ]; }
# RSS growth allowed outside the allocator's mappings: the text pages the
# jumps were written to (copied once, whatever the number of cycles), code
# and stack pages first touched during the soak; a page left behind by
# each cycle would be 4 kB x cycles
SOAK_OTHER_BOUND_KB=256

# soak_snapshot PID NAME: the target's mappings, open files and threads in
# $SOAK_DIR/NAME.{maps,fds,tasks}; its RSS (kB) and SOAK_ACCOUNTED in
# $SOAK_DIR/NAME.mem ("RSS ACCOUNTED").
soak_snapshot() {
	local pid=$1 f=$SOAK_DIR/$2 fd rss acc=0
	cat "/proc/$pid/maps" >"$f.maps" || die "cannot read /proc/$pid/maps"
	for fd in /proc/"$pid"/fd/*; do
		printf '%s %s\n' "${fd##*/}" "$(readlink "$fd")"
	done | sort -n >"$f.fds"
	ls "/proc/$pid/task" >"$f.tasks"
	rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status")
	[ -n "${SOAK_ACCOUNTED:-}" ] && acc=$("$SOAK_ACCOUNTED")
	cat "/proc/$pid/smaps" >"$f.smaps"
	echo "$rss $acc $(soak_rss_split "$f.smaps")" >"$f.mem"
}

# soak_rss_split SMAPS: "HEAP OTHER", the kB resident in the mappings the
# program's allocator owns (the [heap] and anonymous mappings) and in every
# other one (the program's and libraries' files, stacks, memfds): the
# loader writes only to the latter (jumps into text pages, its patch
# mappings, the stack of the thread it injects system calls from).
soak_rss_split() {
	awk '$1 ~ /^[0-9a-f]+-[0-9a-f]+$/ { name = $6; heap = (name == "" || name == "[heap]") }
		$1 == "Rss:" { if (heap) h += $2; else o += $2 }
		END { print h + 0, o + 0 }' "$1"
}

# soak_before PID: the snapshot the soak is compared with, taken before the
# case's first apply.
soak_before() {
	SOAK_DIR=$RW_LOG/soak
	rm -rf "$SOAK_DIR" && mkdir -p "$SOAK_DIR"
	soak_snapshot "$1" before
	say "soak: before: $(wc -l <"$SOAK_DIR/before.maps") mappings, $(wc -l <"$SOAK_DIR/before.fds") fds, $(wc -l <"$SOAK_DIR/before.tasks") threads, RSS $(cut -d' ' -f1 "$SOAK_DIR/before.mem") kB"
}

# soak_spread FILE FIELD: "median / 99th percentile / max" of a column.
soak_spread() {
	awk -v f="$2" '{ print $f }' "$1" | sort -n |
		awk '{ v[NR] = $1 } END { if (!NR) { print "-"; exit }
			p = int(NR * 0.99 + 0.999); printf "%s / %s / %s\n", v[int((NR + 1) / 2)], v[p], v[NR] }'
}

# soak_stats FILE FIELD: "median/max" of a column.
soak_stats() { soak_spread "$1" "$2" | awk -F' / ' '{ print $1 (NF > 1 ? "/" $3 : "") }'; }

# soak_load SUB PID ARGS...: one qpatch-load run of the soak (SUB: apply or
# undo); its figures ("stopped pause held total_ms") appended to
# $SOAK_DIR/SUB.stops, its output to SUB.failures when it failed.
soak_load() {
	local sub=$1 out rc
	shift
	out=$("$QP_BIN/qpatch-load" "$@" 2>&1)
	rc=$?
	if [ $rc -ne 0 ]; then
		printf 'cycle %s: qpatch-load %s: exit %s: %s\n' "$SOAK_I" "$*" "$rc" "$out" >>"$SOAK_DIR/$sub.failures"
		return 1
	fi
	grep -q '^note: .* kept because' <<<"$out" &&
		printf 'cycle %s: %s\n' "$SOAK_I" "$(grep '^note:' <<<"$out")" >>"$SOAK_DIR/$sub.kept"
	sed -n 's/^target stopped for \([0-9]*\) us .*first stop to last resume \([0-9]*\) us.*one thread held \([0-9]*\) us; total \([0-9.]*\) ms$/\1 \2 \3 \4/p' \
		<<<"$out" >>"$SOAK_DIR/$sub.stops"
	return 0
}

soak_pause() { sleep "0.0$(printf %02d $((RANDOM % 21)))"; }

# soak_cycles PID FIX ID N: N cycles of apply, --list check, pause, undo
# (of ID), --list check, pause.  A failed apply or undo is counted and the
# soak goes on (from a clean state: a failed undo is retried before the next
# apply); ten failed cycles in a row, or SOAK_ALIVE failing, end it.  Sets
# SOAK_DONE, SOAK_AFAIL, SOAK_UFAIL, SOAK_SECS.
soak_cycles() {
	local pid=$1 fix=$2 id=$3 n=$4 t0 bad=0 applied=0
	SOAK_AFAIL=0 SOAK_UFAIL=0 SOAK_DONE=0
	: >"$SOAK_DIR/apply.stops"
	: >"$SOAK_DIR/undo.stops"
	t0=$(now_s)
	for ((SOAK_I = 1; SOAK_I <= n; SOAK_I++)); do
		if [ $applied = 0 ]; then
			if soak_load apply "$pid" "$fix" && qp_listed "$pid" "$id"; then
				applied=1
			else
				SOAK_AFAIL=$((SOAK_AFAIL + 1))
				# a patch there after a failed apply is the loader's fault too,
				# but take it out to go on
				qp_listed "$pid" "$id" && applied=1
			fi
			soak_pause
		fi
		if [ $applied = 1 ]; then
			if soak_load undo --undo "$pid" "$id" && qp_none "$pid"; then
				applied=0 bad=0
			else
				SOAK_UFAIL=$((SOAK_UFAIL + 1)) bad=$((bad + 1))
				qp_listed "$pid" "$id" || applied=0
			fi
			soak_pause
		else
			bad=$((bad + 1))
		fi
		SOAK_DONE=$SOAK_I
		"$SOAK_ALIVE" || { say "soak: target or load stopped at cycle $SOAK_I"; break; }
		[ $bad -lt 10 ] || { say "soak: ten failed cycles in a row, stopping at cycle $SOAK_I"; break; }
		((SOAK_I % (n / 10 > 0 ? n / 10 : 1) == 0)) &&
			say "soak: $SOAK_I/$n cycles, $SOAK_AFAIL apply and $SOAK_UFAIL undo failures, $(elapsed "$t0") s"
	done
	SOAK_SECS=$(elapsed "$t0")
	# never leave the patch in (but with QP_RW_SOAK_LEAVE=1, to see that
	# soak_after notices: its mapping stays, the check must fail)
	[ $applied = 1 ] && "$QP_BIN/qpatch-load" --undo "$pid" "$id" >/dev/null 2>&1
	[ "${QP_RW_SOAK_LEAVE:-0}" = 1 ] && "$QP_BIN/qpatch-load" "$pid" "$fix" >/dev/null 2>&1
	SOAK_APPLY=$(soak_stats "$SOAK_DIR/apply.stops" 1)
	SOAK_UNDO=$(soak_stats "$SOAK_DIR/undo.stops" 1)
	SOAK_APPLY_TOTAL=$(soak_stats "$SOAK_DIR/apply.stops" 4)
	say "soak: $SOAK_DONE cycles in $SOAK_SECS s; failures: $SOAK_AFAIL apply, $SOAK_UFAIL undo; target stopped (median/max µs): apply $SOAK_APPLY, undo $SOAK_UNDO; first stop to last resume: apply $(soak_stats "$SOAK_DIR/apply.stops" 2), undo $(soak_stats "$SOAK_DIR/undo.stops" 2); qpatch-load apply wall time (median/max ms) $SOAK_APPLY_TOTAL"
	# the loader's figures, for soak.sh's second table
	local f sub
	for sub in apply undo; do
		printf '| %s | %s | %s | %s | %s | %s |\n' "$ROW_PROGRAM" "$sub" \
			"$(soak_spread "$SOAK_DIR/$sub.stops" 1)" "$(soak_spread "$SOAK_DIR/$sub.stops" 2)" \
			"$(soak_spread "$SOAK_DIR/$sub.stops" 3)" "$(soak_spread "$SOAK_DIR/$sub.stops" 4)"
	done >"$QP_RW_OUT/$RW_CASE.stops"
	for f in "$SOAK_DIR"/*.failures "$SOAK_DIR"/*.kept; do
		[ -f "$f" ] && { say "soak: $(basename "$f"):"; head -n5 "$f" | sed 's/^/    /'; }
	done
}

# soak_after PID: the target against soak_before's snapshot: the same
# mappings (count, and the same named ones), open files, threads; no
# qpatch mapping or file; RSS growth (less SOAK_ACCOUNTED's) at most
# SOAK_RSS_BOUND_KB.  Sets SOAK_FIGS (for the table) and SOAK_BAD (the
# checks that failed, empty when all passed).
soak_after() {
	local pid=$1 b=$SOAK_DIR/before a=$SOAK_DIR/after m0 m1 f0 f1 t0 t1 r0 r1 c0 c1 h0 h1 o0 o1 grow qp
	soak_snapshot "$pid" after
	SOAK_BAD=""
	m0=$(wc -l <"$b.maps") m1=$(wc -l <"$a.maps")
	f0=$(wc -l <"$b.fds") f1=$(wc -l <"$a.fds")
	t0=$(wc -l <"$b.tasks") t1=$(wc -l <"$a.tasks")
	read -r r0 c0 h0 o0 <"$b.mem"
	read -r r1 c1 h1 o1 <"$a.mem"
	# named mappings (files, memfds, [heap], [stack]...) by name and count
	soak_names() { awk 'NF >= 6 { $1 = $2 = $3 = $4 = $5 = ""; sub(/^ +/, ""); print }' "$1" | sort | uniq -c; }
	[ "$m0" = "$m1" ] || SOAK_BAD="$SOAK_BAD; mappings $m0 -> $m1"
	diff <(soak_names "$b.maps") <(soak_names "$a.maps") >"$SOAK_DIR/maps.diff" ||
		SOAK_BAD="$SOAK_BAD; named mappings differ ($SOAK_DIR/maps.diff: $(grep '^[<>]' "$SOAK_DIR/maps.diff" | head -n3 | tr '\n' ' '))"
	qp=$(grep -c 'memfd:qpatch' "$a.maps")
	[ "$qp" -eq 0 ] || SOAK_BAD="$SOAK_BAD; $qp qpatch mapping(s) left: $(grep -m1 'memfd:qpatch' "$a.maps")"
	[ "$f0" = "$f1" ] || SOAK_BAD="$SOAK_BAD; open fds $f0 -> $f1"
	diff "$b.fds" "$a.fds" >"$SOAK_DIR/fds.diff" ||
		SOAK_BAD="$SOAK_BAD; open files differ ($SOAK_DIR/fds.diff: $(grep '^[<>]' "$SOAK_DIR/fds.diff" | head -n3 | tr '\n' ' '))"
	grep -q 'memfd:qpatch' "$a.fds" && SOAK_BAD="$SOAK_BAD; a qpatch memfd open: $(grep -m1 'memfd:qpatch' "$a.fds")"
	[ "$t0" = "$t1" ] || SOAK_BAD="$SOAK_BAD; threads $t0 -> $t1"
	# the RSS: outside the allocator's mappings, at most SOAK_OTHER_BOUND_KB
	# more; in all, beyond the growth the program accounts for, at most
	# SOAK_RSS_BOUND_KB more
	grow=$(((r1 - r0) - (c1 - c0)))
	[ $((o1 - o0)) -le "$SOAK_OTHER_BOUND_KB" ] ||
		SOAK_BAD="$SOAK_BAD; RSS outside the heap grew by $((o1 - o0)) kB (bound $SOAK_OTHER_BOUND_KB kB): $(soak_rss_grown "$b.smaps" "$a.smaps")"
	[ "$grow" -le "$SOAK_RSS_BOUND_KB" ] ||
		SOAK_BAD="$SOAK_BAD; RSS grew by $((r1 - r0)) kB, $grow kB beyond the program's own count (bound $SOAK_RSS_BOUND_KB kB): $(soak_rss_grown "$b.smaps" "$a.smaps")"
	SOAK_BAD=${SOAK_BAD#; }
	SOAK_FIGS="mappings $m0→$m1, fds $f0→$f1, threads $t0→$t1, qpatch mappings left $qp; RSS $r0→$r1 kB: heap $h0→$h1, other $o0→$o1 (bound +$SOAK_OTHER_BOUND_KB)"
	[ -n "${SOAK_ACCOUNTED:-}" ] && SOAK_FIGS="$SOAK_FIGS; allocated by the program $c0→$c1 kB, RSS growth beyond it $grow kB (bound $SOAK_RSS_BOUND_KB)"
	[ -n "${SOAK_ACCOUNTED:-}" ] || SOAK_FIGS="$SOAK_FIGS; RSS growth bound $SOAK_RSS_BOUND_KB kB"
	say "soak: after: $SOAK_FIGS"
}

# soak_rss_grown BEFORE AFTER: the three mappings (by name) whose RSS grew
# most between two smaps files.
soak_rss_grown() {
	soak_rss_byname() {
		awk '$1 ~ /^[0-9a-f]+-[0-9a-f]+$/ { name = ($6 == "" ? "[anon]" : $6) }
			$1 == "Rss:" { r[name] += $2 } END { for (n in r) print n, r[n] }' "$1" | sort
	}
	join -a1 -a2 -e 0 -o 0,1.2,2.2 <(soak_rss_byname "$1") <(soak_rss_byname "$2") |
		awk '{ print $3 - $2, $1 }' | sort -rn | head -n3 | awk '{ printf "%s%s +%d kB", sep, $2, $1; sep = ", " }'
}

# soak_row RESULT: the case's line of soak.sh's table.
soak_row() {
	printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$ROW_PROGRAM" "$ROW_FIX" \
		"$SOAK_DONE in $SOAK_SECS s" "$SOAK_AFAIL / $SOAK_UFAIL" "$SOAK_APPLY" "$SOAK_UNDO" \
		"$SOAK_FIGS" "$1" >"$QP_RW_OUT/$RW_CASE.soak"
}

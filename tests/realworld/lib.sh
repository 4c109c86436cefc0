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
	# its refusals, "NAME<TAB>WHY<TAB>OBJECT" (the report's lines are
	# KIND NAME WHERE SIZE bytes  WHY[  OBJECT])
	awk '$1 == "REFUSED" {
		rest = substr($0, index($0, " bytes") + 6); n = split(rest, p, /  +/)
		print $2 "\t" p[2] "\t" (n >= 3 ? p[3] : $3) }' "$QPB_LOG" >"$RW_LOG/$fix.refusals.tsv"
	awk -F'\t' -v t="$8" '$1 == t && $2 ~ /layout/ { ok = 1 } END { exit !ok }' "$RW_LOG/$fix.refusals.tsv" ||
		die "qpatch-build refused, but not saying that the layout of $8 changed: $QPB_ERROR"
	# one entry per name and reason, with the objects (basenames); layouts first
	local refusals
	refusals=$(awk -F'\t' '
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
		}' "$RW_LOG/$fix.refusals.tsv")
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

# qp_load PID FIX: apply; sets STOP_US from "target stopped for N us".
qp_load() {
	local out=$RW_LOG/qpatch-load.log
	"$QP_BIN/qpatch-load" "$1" "$2" >"$out" 2>&1
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

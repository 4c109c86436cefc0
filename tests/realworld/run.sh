#!/bin/bash
# The real-world suite: live-patches real Debian programs with their real
# security fixes (see docs/realworld.md).
#
#   tests/realworld/run.sh [CASE...]      cases: lua redis sqlite qemu lua-so
#
# Without a case it runs lua, redis and sqlite, and qemu too with QP_RW_ALL=1 (its
# first run builds QEMU twice: about 2 x 10 minutes on 2 CPUs).
#
# Environment:
#   QP_RW_ALL    1: run every case when none is named (default 0)
#   QP_BIN       qpatch tools (default: build/bin of this tree)
#   QP_RW_CACHE  cache: source packages, unpacked trees, deployed builds
#                (default ~/.cache/qpatch-realworld); a second run rebuilds
#                nothing it already has
#   QP_RW_OUT    logs of this run (default $QP_RW_CACHE/runs/latest)
#   QP_RW_JOBS   make -j for the programs' builds (default 2)
#   QP_RW_DOC    1 (default): after a run of every case (lua redis sqlite qemu),
#                write the results table into docs/realworld.md; 0: only
#                print it
#   QP_RW_LABEL  how the table names the qpatch tested (default: the commit
#                of this tree when QP_BIN is inside it)
#
# Each case writes one table row; the table is printed at the end and saved
# as $QP_RW_OUT/table.md.  Exit status 0 when every case passed.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ALL_CASES="lua redis sqlite qemu"
# not in the results table of docs/realworld.md: a hand-written .so, not a build
EXTRA_CASES="lua-so"
DEFAULT_CASES="lua redis sqlite"
[ "${QP_RW_ALL:-0}" = 1 ] && DEFAULT_CASES=$ALL_CASES

export QP_BIN=${QP_BIN:-$ROOT/build/bin}
export QP_RW_CACHE=${QP_RW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qpatch-realworld}
export QP_RW_OUT=${QP_RW_OUT:-$QP_RW_CACHE/runs/latest}
export QP_RW_JOBS=${QP_RW_JOBS:-2}
QP_RW_DOC=${QP_RW_DOC:-1}

for t in qpatch-cc qpatch-c++ qpatch-build qpatch-load qpatch-dump; do
	[ -x "$QP_BIN/$t" ] || { echo "run.sh: no $t in '$QP_BIN' (build qpatch, or set QP_BIN)" >&2; exit 2; }
done
missing=""
for c in apt-get dpkg-source dpkg-buildflags patch make gcc awk sha256sum; do
	command -v "$c" >/dev/null || missing="$missing $c"
done
if [ -n "$missing" ]; then
	echo "run.sh: missing tools:$missing (scripts/install-realworld-deps.sh installs them)" >&2
	exit 2
fi
QP_BIN=$(cd "$QP_BIN" && pwd)

cases=("$@")
[ ${#cases[@]} -eq 0 ] && read -r -a cases <<<"$DEFAULT_CASES"
for c in "${cases[@]}"; do
	[ -f "$HERE/$c.sh" ] || { echo "run.sh: unknown case '$c' (cases: $ALL_CASES $EXTRA_CASES)" >&2; exit 2; }
done

. "$HERE/cachelock.sh"
rw_lock_cache run.sh
rm -rf "$QP_RW_OUT"
mkdir -p "$QP_RW_OUT"
t0=$(date +%s.%N)
failed=0
for c in "${cases[@]}"; do
	echo "=== $c"
	c0=$(date +%s.%N)
	bash "$HERE/$c.sh" 2>&1 | tee "$QP_RW_OUT/$c.log"
	rc=${PIPESTATUS[0]}
	if [ ! -f "$QP_RW_OUT/$c.row" ]; then
		printf '| %s | | | | | | **FAIL**: the case script stopped (exit %s) without a result; see its log |\n' \
			"$c" "$rc" >"$QP_RW_OUT/$c.row"
	fi
	[ "$rc" -eq 0 ] || failed=$((failed + 1))
	echo "=== $c: $([ "$rc" -eq 0 ] && echo passed || echo FAILED) in $(awk -v a="$c0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }') s"
done
total=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')

# Which qpatch: the commit of this tree when the tools were built from it.
case $QP_BIN/ in
"$ROOT"/*)
	rev="qpatch $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
	[ -n "$(git -C "$ROOT" status --porcelain -- builder loader format libdecode 2>/dev/null)" ] &&
		rev="$rev with local changes"
	;;
*) rev="qpatch tools of $QP_BIN" ;;
esac
rev=${QP_RW_LABEL:-$rev}
{
	echo "| program | fix | functions in the patch | patch size | qpatch-build (warm) / full build | target stopped | result |"
	echo "|---|---|---|---|---|---|---|"
	for c in "${cases[@]}"; do cat "$QP_RW_OUT/$c.row"; done
	echo
	echo "Produced by \`tests/realworld/run.sh\` on $(date -u +%Y-%m-%d) ($rev, $(nproc) CPUs, make -j$QP_RW_JOBS) in $total s."
} >"$QP_RW_OUT/table.md"
echo
cat "$QP_RW_OUT/table.md"

doc=$ROOT/docs/realworld.md
if [ "$QP_RW_DOC" = 1 ] && [ "${cases[*]}" = "$ALL_CASES" ] && [ -f "$doc" ] &&
	grep -q '^<!-- realworld-table-begin -->$' "$doc" && grep -q '^<!-- realworld-table-end -->$' "$doc"; then
	awk -v table="$QP_RW_OUT/table.md" '
		/^<!-- realworld-table-end -->$/ { while ((getline l < table) > 0) print l; skip = 0 }
		!skip { print }
		/^<!-- realworld-table-begin -->$/ { skip = 1 }' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
	echo "table written into docs/realworld.md"
fi
echo "logs: $QP_RW_OUT"
echo "real-world suite: $((${#cases[@]} - failed)) passed, $failed failed, $total s"
[ "$failed" -eq 0 ]

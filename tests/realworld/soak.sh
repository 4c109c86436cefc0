#!/bin/bash
# Soak test: real-world cases (redis by default; qemu) with their real fix
# applied and undone many times under load (see docs/soak.md).
#
#   tests/realworld/soak.sh [CASE...]      cases: redis qemu
#
# Each case runs as in the real-world suite (tests/realworld/run.sh: build,
# start, load, patch, probe, undo), and between its first undo and its
# final checks applies and undoes its fix N more times (QP_RW_SOAK_N; by
# default 1000 for redis, 100 for qemu), with a random pause of 0-20 ms
# after each, then checks that the target lost nothing and kept nothing:
# the load's every reply, its data, its mappings, open files, threads and
# memory (lib.sh, "soak").  Not part of CI.
#
# Environment: as run.sh (QP_BIN, QP_RW_CACHE, QP_RW_JOBS), and
#   QP_RW_SOAK_N  cycles per case
#   QP_RW_OUT     logs (default $QP_RW_CACHE/runs/soak)
# The table is printed at the end and saved as $QP_RW_OUT/soak.md.  Exit
# status 0 when every case passed.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SOAK_CASES="redis qemu"
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(redis)
for c in "${cases[@]}"; do
	[[ " $SOAK_CASES " == *" $c "* ]] || { echo "soak.sh: no soak for '$c' (cases: $SOAK_CASES)" >&2; exit 2; }
done
export QP_RW_CACHE=${QP_RW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qpatch-realworld}
export QP_RW_OUT=${QP_RW_OUT:-$QP_RW_CACHE/runs/soak}
export QP_RW_SOAK=1 QP_RW_DOC=0
t0=$(date +%s.%N)
"$HERE/run.sh" "${cases[@]}"
rc=$?
{
	echo "| program | fix | cycles | apply / undo failures | target stopped, apply (µs, median/max) | target stopped, undo (µs, median/max) | target before → after | result |"
	echo "|---|---|---|---|---|---|---|---|"
	for c in "${cases[@]}"; do
		if [ -f "$QP_RW_OUT/$c.soak" ]; then
			cat "$QP_RW_OUT/$c.soak"
		else
			printf '| %s | | | | | | | **FAIL** before the soak: %s |\n' "$c" \
				"$(sed 's/.*| \(.*\) |$/\1/' "$QP_RW_OUT/$c.row" 2>/dev/null)"
		fi
	done
	echo
	echo "The loader's own figures over the soak's runs (median / 99th percentile / max):"
	echo
	echo "| program | | target stopped (µs) | first stop to last resume (µs) | one thread held (µs) | qpatch-load run (ms) |"
	echo "|---|---|---|---|---|---|"
	for c in "${cases[@]}"; do
		cat "$QP_RW_OUT/$c.stops" 2>/dev/null
	done
	echo
	echo "Produced by \`tests/realworld/soak.sh ${cases[*]}\`$([ -n "${QP_RW_SOAK_N:-}" ] && echo " with QP_RW_SOAK_N=$QP_RW_SOAK_N") on $(date -u +%Y-%m-%d) ($(nproc) CPUs) in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }') s."
} >"$QP_RW_OUT/soak.md"
echo
echo "=== soak"
cat "$QP_RW_OUT/soak.md"
exit $rc

# Shared by the benchmarks that read the in-target probe (tests/bench/probe.c):
# sourced by scripts/bench-stop.sh and scripts/bench-host.sh.

# CLOCK_MONOTONIC now, in ns, from bash's $EPOCHREALTIME and one offset
# (the probe prints its gaps on CLOCK_MONOTONIC)
probe_off=$(python3 -c 'import time; print(time.time_ns() - time.monotonic_ns())')
mono() { local r=${EPOCHREALTIME/./}; echo $((r * 1000 - probe_off)); }

# probe_gap FILE T0 T1: the longest gap in the probe output FILE that
# overlaps [T0, T1] (ns), in us; 0 when none
probe_gap() {
	awk -v a="$2" -v b="$3" '$1 == "gap" && $2 >= a && $2 - $3 * 1000 <= b && $3 > m { m = $3 }
		END { print m + 0 }' "$1"
}

# stats [WIDTH]: median and max of the numbers on stdin
stats() {
	sort -n | awk -v w="${1:-6}" '{v[NR]=$1} END {printf "%6.0f %*.0f", v[int((NR+1)/2)], w, v[NR]}'
}

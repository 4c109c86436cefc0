#!/bin/sh
# Build the .qpatch reader fuzzer with clang and run it for SECONDS
# (default 60).  Usage: scripts/fuzz.sh [SECONDS] [extra libFuzzer flags]
#
# Build directory: $QP_FUZZ_BUILD or build-fuzz/.  New interesting inputs
# accumulate in build-fuzz/fuzz/corpus, crashes in build-fuzz/fuzz/crashes;
# reproduce one with build-fuzz/fuzz/fuzz_reader CRASH_FILE.
set -eu

secs=${1:-60}
[ $# -gt 0 ] && shift
root=$(cd "$(dirname "$0")/.." && pwd)
build=${QP_FUZZ_BUILD:-$root/build-fuzz}

CC=clang cmake -S "$root" -B "$build" -DQP_FUZZ=ON \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target fuzz_reader fuzz_corpus -j"$(nproc)"
mkdir -p "$build/fuzz/corpus" "$build/fuzz/crashes"
exec "$build/fuzz/fuzz_reader" -max_total_time="$secs" -print_final_stats=1 \
	-dict="$root/tests/fuzz/qpatch.dict" \
	-artifact_prefix="$build/fuzz/crashes/" "$@" \
	"$build/fuzz/corpus" "$build/fuzz/seeds"

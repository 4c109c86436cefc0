#!/bin/sh
# Build the libFuzzer harnesses (tests/fuzz/) with clang and run them.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET] [extra libFuzzer flags]
#
# TARGET is one of reader (the .qpatch reader), record (the record of a
# patch mapping, read from a target), linkmap (the dynamic linker's
# link_map chain and TLS fields in a target), cfi (.eh_frame parsing and
# the loader's unwinder), buildid (build-id notes and DT_NEEDED of loaded
# objects' files), or all (the default): every target in turn, sharing
# SECONDS (default 60) equally.
#
# Build directory: $QP_FUZZ_BUILD or build-fuzz/.  New interesting inputs
# accumulate in build-fuzz/fuzz/corpus (reader) or corpus-TARGET, crashes
# in build-fuzz/fuzz/crashes; reproduce one with
# build-fuzz/fuzz/fuzz_TARGET CRASH_FILE.
set -eu

secs=${1:-60}
[ $# -gt 0 ] && shift
target=${1:-all}
[ $# -gt 0 ] && shift
root=$(cd "$(dirname "$0")/.." && pwd)
build=${QP_FUZZ_BUILD:-$root/build-fuzz}
all="reader record linkmap cfi buildid sotab"

case " $all all " in
*" $target "*) ;;
*) echo "fuzz.sh: unknown target '$target' (one of: $all, all)" >&2; exit 2 ;;
esac
if [ "$target" = all ]; then
	targets=$all
	each=$((secs / 6))
	[ "$each" -gt 0 ] || each=1
else
	targets=$target
	each=$secs
fi

CC=clang cmake -S "$root" -B "$build" -DQP_FUZZ=ON \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target fuzz_corpus $(for t in $targets; do echo "fuzz_$t"; done) \
	-j"$(nproc)"
mkdir -p "$build/fuzz/crashes"
for t in $targets; do
	echo "== fuzz_$t, $each s"
	if [ "$t" = reader ]; then
		mkdir -p "$build/fuzz/corpus"
		"$build/fuzz/fuzz_reader" -max_total_time="$each" -print_final_stats=1 \
			-dict="$root/tests/fuzz/qpatch.dict" \
			-artifact_prefix="$build/fuzz/crashes/reader-" "$@" \
			"$build/fuzz/corpus" "$build/fuzz/seeds"
	else
		mkdir -p "$build/fuzz/corpus-$t"
		"$build/fuzz/fuzz_$t" -max_total_time="$each" -print_final_stats=1 \
			-artifact_prefix="$build/fuzz/crashes/$t-" "$@" \
			"$build/fuzz/corpus-$t" "$root/tests/fuzz/corpus-$t"
	fi
done

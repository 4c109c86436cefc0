#!/bin/bash
# Runs a libcare-style test suite through qpatch: a directory of cases, one
# directory each, holding NAME.c (a program that prints a line every second),
# NAME.diff (the fix, for `patch -p1`), optionally libNAME.c + libNAME.diff (a
# shared library the program links and its fix), NAME.diff2 / libNAME.diff2
# (a second, cumulative fix, applied on top of the first), and a Makefile
# whose CFLAGS / LDFLAGS / LDLIBS lines are taken over.  The suite itself is
# not part of this repository: fetch it and give its tests/ directory.
#
#   scripts/run-libcare-suite.sh [-w WORK] [-o RESULTS.tsv] [-c CFLAGS] CASES_DIR [CASE...]
#
# -c sets the compiler flags (default none, as the suite's own Makefiles
# build: gcc's -O0; "-O2 -g" is what deployments use, and inlines a changed
# function into its callers).
#
# For every case: an original and a patched tree (the case's sources with its
# diffs applied), the original built with qpatch-cc and started, one patch per
# changed object (the program, the library) built with qpatch-build, applied
# with qpatch-load, the program's output checked, the patch undone and the
# output checked again.  Lines containing the word PATCHED are the fixed
# behaviour, UNPATCHED the original.  Cases named fail_* expect the patch to
# be refused (the changed code never leaves the stack): there the refusal and
# its reason are recorded, and then the same patch must go into the program
# started anew with it (qpatch-load --exec: held at its entry point), as
# libcare's start-up flavour expects.  Each case ends with one line in RESULTS: name,
# outcome, detail.  Exit status 0 when every case gave its expected outcome.
set -u

usage() { echo "usage: $0 [-w WORK] [-o RESULTS.tsv] [-c CFLAGS] CASES_DIR [CASE...]" >&2; exit 2; }
WORK=
RESULTS=
OPT_CFLAGS=
while getopts "w:o:c:h" opt; do
	case $opt in
	c) OPT_CFLAGS=$OPTARG ;;
	w) WORK=$OPTARG ;;
	o) RESULTS=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
CASES=$(cd "$1" && pwd) || exit 2
shift
HERE=$(cd "$(dirname "$0")/.." && pwd)
QP_BIN=${QP_BIN:-$HERE/build/bin}
for t in qpatch-cc qpatch-build qpatch-load qpatch-dump; do
	[ -x "$QP_BIN/$t" ] || { echo "no $QP_BIN/$t: build qpatch or set QP_BIN" >&2; exit 2; }
done
WORK=${WORK:-$(mktemp -d /tmp/libcare-suite.XXXXXX)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
RESULTS=${RESULTS:-$WORK/results.tsv}
: >"$RESULTS"
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
}
trap cleanup EXIT

alive() { kill -0 "$1" 2>/dev/null; }
log() { echo "$*" >&2; }
result() { # result CASE OUTCOME DETAIL
	printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"
	printf '%-28s %-10s %s\n' "$1" "$2" "$3"
}

# ---- trees -------------------------------------------------------------------

# makefile CASE LIB: our Makefile for the case (the program NAME from NAME.c,
# linked with libNAME.so from libNAME.c when LIB is 1), with the variable
# lines of the case's own Makefile.
makefile() {
	local c=$1 lib=$2
	echo "CC ?= cc"
	echo "CFLAGS ?= $OPT_CFLAGS"
	[ -f "$CASES/$c/Makefile" ] &&
		grep -E '^[[:space:]]*(CFLAGS|LDFLAGS|LDLIBS)[[:space:]]*(\+|:)?=' "$CASES/$c/Makefile" |
		sed -E 's/^[[:space:]]*(CFLAGS|LDFLAGS|LDLIBS)[[:space:]]*:?=/\1 +=/'
	if [ "$lib" = 1 ]; then
		echo "all: lib$c.so $c"
		echo "lib$c.so: lib$c.c"
		printf '\t$(CC) $(CFLAGS) -fPIC -shared -Wl,-soname,lib%s.so -o $@ lib%s.c\n' "$c" "$c"
		echo "$c: $c.o lib$c.so"
		printf "\t\$(CC) \$(LDFLAGS) -o \$@ %s.o -L. -l%s -Wl,-rpath,'\$\$ORIGIN' \$(LDLIBS) -lpthread\n" "$c" "$c"
	else
		echo "all: $c"
		echo "$c: $c.o"
		printf '\t$(CC) $(LDFLAGS) -o $@ %s.o $(LDLIBS) -lpthread\n' "$c"
	fi
	echo "$c.o: $c.c"
	printf '\t$(CC) $(CFLAGS) -c -o $@ %s.c\n' "$c"
}

# tree CASE DEST [SUFFIX]: the case's sources, with its diffs NAME.diffSUFFIX
# applied when SUFFIX is given ("" for .diff, "2" for .diff2).
tree() {
	local c=$1 d=$2 f
	mkdir -p "$d" && cp -a "$CASES/$c/." "$d/" || return 1
	rm -f "$d/Makefile" "$d"/desc "$d"/desc_
	makefile "$c" "$([ -f "$CASES/$c/lib$c.c" ] && echo 1 || echo 0)" >"$d/Makefile"
	if [ $# -ge 3 ]; then
		for f in "$CASES/$c"/*.diff$3; do
			[ -f "$f" ] || continue
			(cd "$d" && patch -s -p1 <"$f") >"$d.patch.log" 2>&1 || return 1
		done
	fi
	rm -f "$d"/*.diff "$d"/*.diff2 "$d"/*.orig
	# sources that include another case's file by relative path
	# (#include "../other/x.c") find it beside the tree
	for f in $(grep -hoE '#include "\.\./[^/"]+/' "$d"/*.c 2>/dev/null | sed -E 's,.*\.\./([^/]+)/,\1,' | sort -u); do
		[ -d "$CASES/$f" ] && [ ! -e "$(dirname "$d")/$f" ] && ln -s "$CASES/$f" "$(dirname "$d")/$f"
	done
	return 0
}

# ---- running -----------------------------------------------------------------

# wait_new FILE N REGEX [SECS]: a line after line N matching REGEX, within SECS (6).
wait_new() {
	local i
	for i in $(seq $((${4:-6} * 10))); do
		tail -n +"$(($2 + 1))" "$1" 2>/dev/null | grep -Eq "$3" && return 0
		sleep 0.1
	done
	return 1
}
# settle FILE N SECS: SECS seconds, then the lines after line N.
settle() { sleep "$3"; tail -n +"$(($2 + 1))" "$1"; }

PATCHED_RE='(^|[^A-Za-z])PATCHED'
# state_of CASE LINES: what the lines show: "patched", "unpatched", "semi",
# "mixed" or "none".  Per case, from the marker words its program prints.
state_of() {
	local c=$1 lines=$2 p u s
	p=$(grep -Ec "$PATCHED_RE" <<<"$lines")
	u=$(grep -c UNPATCHED <<<"$lines")
	s=$(grep -c SEMIPATCHED <<<"$lines")
	case $c in
	simplest) # the fix removes the UNPATCHED line, nothing new is printed
		[ "$u" -gt 0 ] && echo unpatched || echo patched; return ;;
	ref_orig_threads | fail_busy_threads) # thread 1 keeps its line, thread 2 changes
		if grep -q 'thread2 (PATCHED' <<<"$lines"; then
			grep -q 'thread2 (UNPATCHED' <<<"$lines" && echo mixed ||
				{ grep -q 'thread1 (UNPATCHED' <<<"$lines" && echo patched || echo mixed; }
		else echo unpatched; fi
		return ;;
	fail_coro_listed) # the fix prefixes the old line, which says UNPATCHED
		p=$(grep -c '^Hello from PATCHED' <<<"$lines")
		u=$(grep -v '^Hello from PATCHED' <<<"$lines" | grep -c UNPATCHED) ;;
	esac
	if [ "$s" -gt 0 ]; then
		[ "$u" -eq 0 ] && [ "$p" -eq 0 ] && echo semi || echo mixed
	elif [ "$p" -gt 0 ] && [ "$u" -eq 0 ]; then echo patched
	elif [ "$u" -gt 0 ] && [ "$p" -eq 0 ]; then echo unpatched
	elif [ "$u" -gt 0 ]; then echo mixed
	else echo none; fi
}

# observe CASE FILE N: the state shown by the lines printed 3 s after line N
# (the last complete lines: a program prints every second).
observe() {
	local lines
	sleep 3.2
	lines=$(tail -n +"$(($3 + 1))" "$2" | tail -n 4)
	state_of "$1" "$lines"
}

# patches CASE ORIG PATCHED OUT SUFFIX: one patch per object whose fix
# changes it; prints the files made, "-" on a build failure (its log named).
patches() {
	local c=$1 o=$2 p=$3 out=$4 sfx=$5 obj
	for obj in "$c" "lib$c.so"; do
		[ -f "$CASES/$c/${obj%.so}.diff$sfx" ] || continue
		if "$QP_BIN/qpatch-build" -q -w "$out.w-$obj" "$o" "$p" --binary "$obj" \
			--target "$o/$obj" -o "$out-$obj.qpatch" >"$out-$obj.build.log" 2>&1; then
			echo "$out-$obj.qpatch"
		else
			echo "-$out-$obj.build.log"
		fi
	done
}

patch_id() { "$QP_BIN/qpatch-dump" "$1" 2>/dev/null | sed -nE "1s/^patch '([^']+)'.*/\1/p"; }

# first_reason LOG: the loader's or builder's message, one line.
first_reason() { grep -Eiv '^(ok|applied)' "$1" | grep -E 'refus|error|busy|will return|inside|executing|cannot|fail' |
	head -n 1 | cut -c1-220; }

# startup CASE DIR FIXES...: a new process started with the fixes in before
# its first instruction (qpatch-load --exec): prints the state its first
# lines show.  Unbuffered output as stdbuf(1) gives it, without its exec.
STDBUF_LIB=
for f in /usr/libexec/coreutils/libstdbuf.so /usr/lib/coreutils/libstdbuf.so; do
	[ -f "$f" ] && STDBUF_LIB=$f && break
done
startup() {
	local c=$1 d=$2 f args=() pid
	shift 2
	for f in "$@"; do args+=(--exec "$f"); done
	(cd "$d/orig" && _STDBUF_O=0 LD_PRELOAD=$STDBUF_LIB exec "$QP_BIN/qpatch-load" "${args[@]}" -- "./$c") \
		>"$d/startup.out" 2>"$d/startup.log" &
	pid=$!
	PIDS+=("$pid")
	sleep 3.2
	state_of "$c" "$(head -n 6 "$d/startup.out")"
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

# ---- one case ----------------------------------------------------------------

run_case() {
	local c=$1 d=$WORK/$1 pid n st fixes=() fixes2=() f ids=() ids2=() rc why detail
	rm -rf "$d"
	mkdir -p "$d"
	if [ ! -f "$CASES/$c/$c.c" ]; then
		result "$c" skipped "no $c.c: not a program case"
		return 0
	fi
	tree "$c" "$d/orig" && tree "$c" "$d/patched" "" || { result "$c" error "trees: see $d"; return 1; }
	[ -n "$(ls "$CASES/$c"/*.diff2 2>/dev/null)" ] && { tree "$c" "$d/patched2" 2 || { result "$c" error "tree 2"; return 1; }; }
	make -C "$d/orig" CC="$QP_BIN/qpatch-cc" >"$d/orig.build.log" 2>&1 ||
		{ result "$c" error "the original does not build: $d/orig.build.log"; return 1; }
	(cd "$d/orig" && exec stdbuf -o0 "./$c") >"$d/out" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	wait_new "$d/out" 0 . 10 || { result "$c" error "the program prints nothing"; return 1; }
	sleep 1.2
	st=$(state_of "$c" "$(tail -n 3 "$d/out")")
	[ "$st" = unpatched ] || [ "$c" = simplest ] ||
		{ result "$c" error "before the patch the program shows '$st'"; kill -9 "$pid"; return 1; }

	for f in $(patches "$c" "$d/orig" "$d/patched" "$d/fix" ""); do
		case $f in
		-*) result "$c" failed "qpatch-build: $(first_reason "${f#-}") (${f#-})"; kill -9 "$pid"; return 1 ;;
		*) fixes+=("$f") ;;
		esac
	done
	if [ -d "$d/patched2" ]; then
		for f in $(patches "$c" "$d/orig" "$d/patched2" "$d/fix2" 2); do
			case $f in
			-*) result "$c" failed "qpatch-build (second fix): $(first_reason "${f#-}")"; kill -9 "$pid"; return 1 ;;
			*) fixes2+=("$f") ;;
			esac
		done
	fi

	# apply
	rc=0
	for f in "${fixes[@]}"; do
		"$QP_BIN/qpatch-load" "$pid" "$f" >>"$d/load.log" 2>&1 || rc=$?
		[ $rc -eq 0 ] && ids+=("$(patch_id "$f")")
		[ $rc -eq 0 ] || break
	done
	n=$(wc -l <"$d/out")
	if [[ $c == fail_* && $c != fail_unpatch ]]; then
		st=$(observe "$c" "$d/out" "$n")
		if [ $rc -ne 0 ]; then
			why=$(first_reason "$d/load.log")
			# "none": the program prints nothing new (a loop printing rarely)
			[ "$st" = unpatched ] || [ "$st" = none ] ||
				{ result "$c" failed "refused but the output shows '$st'"; kill -9 "$pid"; return 1; }
			alive "$pid" || { result "$c" failed "refused, but the process died"; return 1; }
			detail="refused: $why"
		else
			# applied: the loader found the changed code inactive.  Right
			# when it is (left by a tail call: nothing calls it again, the
			# output stays), wrong when it runs where the loader does not
			# look (a coroutine's stack): the case's table entry says which
			result "$c" applied-unchanged "expected a refusal, but applied (exit 0); output '$st'"
			kill -9 "$pid"
			return 1
		fi
		kill -9 "$pid" 2>/dev/null
		st=$(startup "$c" "$d" "${fixes[@]}")
		if [ "$st" = patched ]; then
			result "$c" refused "$detail; started with the fix (qpatch-load --exec): patched"
			return 0
		fi
		result "$c" failed "$detail; started with the fix (qpatch-load --exec): output '$st' ($d/startup.log)"
		return 1
	fi
	if [ $rc -ne 0 ]; then
		result "$c" failed "qpatch-load: $(first_reason "$d/load.log")"
		kill -9 "$pid"
		return 1
	fi
	st=$(observe "$c" "$d/out" "$n")
	if [ "$st" != patched ] && [ "$st" != semi ]; then
		result "$c" failed "applied, but the output shows '$st'"
		kill -9 "$pid"
		return 1
	fi
	detail="applied ${#fixes[@]} patch(es): $st"
	if [ ${#fixes2[@]} -gt 0 ]; then
		for f in "${fixes2[@]}"; do
			"$QP_BIN/qpatch-load" "$pid" "$f" >>"$d/load.log" 2>&1 || rc=$?
			[ $rc -eq 0 ] && ids2+=("$(patch_id "$f")")
		done
		n=$(wc -l <"$d/out")
		st=$(observe "$c" "$d/out" "$n")
		[ $rc -eq 0 ] && [ "$st" = patched ] ||
			{ result "$c" failed "second fix: rc $rc, output '$st'"; kill -9 "$pid"; return 1; }
		detail="$detail; second fix on top: $st"
		for ((i = ${#ids2[@]} - 1; i >= 0; i--)); do
			"$QP_BIN/qpatch-load" --undo "$pid" "${ids2[$i]}" >>"$d/undo.log" 2>&1 || rc=$?
		done
		n=$(wc -l <"$d/out")
		st=$(observe "$c" "$d/out" "$n")
		[ $rc -eq 0 ] && [ "$st" = semi ] ||
			{ result "$c" failed "undo of the second fix: rc $rc, output '$st'"; kill -9 "$pid"; return 1; }
		detail="$detail; undone: $st"
	fi
	# undo, in reverse order
	for ((i = ${#ids[@]} - 1; i >= 0; i--)); do
		"$QP_BIN/qpatch-load" --undo "$pid" "${ids[$i]}" >>"$d/undo.log" 2>&1 || rc=$?
	done
	n=$(wc -l <"$d/out")
	st=$(observe "$c" "$d/out" "$n")
	if [ "$c" = fail_unpatch ]; then
		# the fix never returns: the thread stays in the patch's code
		detail="$detail; undo exit $rc ($(grep -Eio 'mapping[^.]*|still[^.]*' "$d/undo.log" | head -n 1)); output '$st'"
		if alive "$pid" && [ "$st" = patched ]; then
			result "$c" applied "$detail"
		else
			result "$c" failed "$detail"
		fi
		kill -9 "$pid"
		return 0
	fi
	if [ $rc -ne 0 ] || [ "$st" != unpatched ]; then
		result "$c" failed "$detail; undo: exit $rc, output '$st' $(first_reason "$d/undo.log")"
		kill -9 "$pid"
		return 1
	fi
	alive "$pid" || { result "$c" failed "$detail; the process died"; return 1; }
	kill -9 "$pid" 2>/dev/null
	result "$c" applied "$detail; undone: unpatched"
}

# ---- all cases ---------------------------------------------------------------

if [ $# -gt 0 ]; then
	LIST="$*"
else
	LIST=$(cd "$CASES" && for f in */desc */desc_; do [ -f "$f" ] && dirname "$f"; done | sort -u)
fi
bad=0
for c in $LIST; do
	run_case "$c" || bad=$((bad + 1))
done
echo "cases: $(wc -l <"$RESULTS"), unexpected outcomes: $bad (results: $RESULTS)"
[ "$bad" -eq 0 ]

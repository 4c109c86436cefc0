#!/bin/bash
# SPDX-License-Identifier: MIT
#
# decode-vs-objdump: libdecode must agree with GNU objdump on real code.
#
# `test_decode --objdump-compare FILE` sweeps with qp_decode_insn() every
# function symbol of FILE (STT_FUNC/STT_GNU_IFUNC with a size, from .symtab
# and .dynsym), then the bytes of executable sections that no function
# covers (PLT, padding, the static functions of a stripped library), each
# from where the previous function ends, as objdump's own sweep runs.  It
# prints each instruction's address, length and relative target.  We check,
# per instruction:
#   - objdump has an instruction at the same address with the same length
#     (counted from its raw bytes; as both sides sweep linearly from the
#     same starting points, this is "same instruction boundaries");
#   - a direct branch (jmp/jcc/call/loop/jrcxz/xbegin) has the target
#     objdump prints, and objdump sees a direct branch exactly where we do;
#   - a RIP-relative memory operand points where objdump's "# addr" comment
#     says, and objdump sees one exactly where we do;
#   - libdecode decodes every chunk to its end.
# Any difference is a disagreement; the test fails unless there are none.
#
# Exclusions:
#   - chunks in which objdump prints "(bad)": objdump could not decode
#     something (an encoding newer than binutils, or data in code), so its
#     listing is no reference there.  They are counted and named (none in
#     the default set on Debian 12).
#   - objdump runs with -z: by default it folds runs of zero bytes into
#     "...", which would hide instructions (00 00 is add %al,(%rax)).
#   - relocatable objects (.o): every section starts at address 0, so
#     addresses do not identify instructions; test_decode does not sweep
#     their gaps and this script is not meant for them.
#   - a 66 prefix on a near branch: Intel CPUs (and Zydis) ignore it,
#     objdump's default reads rel16.  Compilers never emit it, so it does
#     not occur here; tests/unit/test_decode.c documents the choice.
#
# Usage: t_decode_objdump.sh [ELF...]   (default: the list below)
# QP_BIN is set by ctest to build/bin; the tool is build/tests/test_decode.
# Runtime for the default list: about 15 s.
set -euo pipefail

tool="${QP_BIN:?QP_BIN is not set (run through ctest)}/../tests/test_decode"
if [ ! -x "$tool" ]; then
	echo "t_decode_objdump: '$tool' is not built" >&2
	exit 1
fi
if ! command -v objdump >/dev/null; then
	echo "t_decode_objdump: objdump not found: install binutils" >&2
	exit 1
fi

if [ $# -gt 0 ]; then
	files=("$@")
else
	# glibc: hand-written SSE/AVX2/EVEX string functions, IFUNC
	# resolvers, CET; libstdc++: ordinary C++ compiler output; libasan:
	# unstripped (a .symtab), so its static functions are covered too;
	# objdump itself, as asked, though its few exported functions add
	# little; and test_decode, just built here with the local compiler.
	files=(/lib/x86_64-linux-gnu/libc.so.6
	       /usr/lib/x86_64-linux-gnu/libstdc++.so.6
	       /usr/lib/x86_64-linux-gnu/libasan.so.8
	       "$(command -v objdump)"
	       "$tool")
fi

tmpbase="${QP_TMP:-${TMPDIR:-/tmp}}"
mkdir -p "$tmpbase"
tmp="$(mktemp -d "$tmpbase/t_decode_objdump.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# shellcheck disable=SC2016 # an awk program: its $ are awk's
# Arguments: the objdump listing, then test_decode's output twice.  Prints
# one line: "compared disagreements functions skipped-chunks
# compared-between-functions direct-branches rip-relative".
compare_awk='
function hexnum(h,    i, n) {
	n = 0
	for (i = 1; i <= length(h); i++)
		n = n * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1
	return n
}
function strip0(h) {
	sub(/^0x/, "", h)
	sub(/^0+/, "", h)
	return h == "" ? "0" : h
}
function disagree(msg) {
	ndis++
	if (ndis <= 20)
		print "  disagreement: " msg > "/dev/stderr"
	else if (ndis == 21)
		print "  (further disagreements not shown)" > "/dev/stderr"
}
BEGIN {
	prefix_re = "^(bnd|notrack|ds|cs|es|ss|fs|gs|data16|data32|addr16|" \
		    "addr32|lock|rep|repz|repnz|repe|repne|xacquire|" \
		    "xrelease|rex(\\.[WRXB]+)?)$"
}
FNR == 1 { pass++ }

# Pass 1: the objdump listing.  "  addr:\tb1 b2 ... \tmnemonic operands"
pass == 1 {
	if ($0 !~ /^ *[0-9a-f]+:\t/)
		next
	nf = split($0, f, "\t")
	a = f[1]
	gsub(/[ :]/, "", a)
	olen[a] = split(f[2], bytes, " ")
	text = nf >= 3 ? f[3] : ""
	otext[a] = text
	if (text ~ /\(bad\)/) {
		bad[++nbad] = hexnum(a)
		next
	}
	# A direct branch prints its target as bare hex ("jmp 1234 <f+0x8>");
	# immediates start with $ and absolute addresses with 0x.
	nt = split(text, t, " ")
	for (i = 1; i <= nt && t[i] ~ prefix_re; i++)
		;
	if (i < nt && t[i + 1] ~ /^[0-9a-f]+$/)
		obr[a] = t[i + 1]
	# A RIP-relative operand gets a "# 1234 <sym>" comment.
	if (match(text, /# (0x)?[0-9a-f]+/))
		orip[a] = strip0(substr(text, RSTART + 2, RLENGTH - 2))
	next
}

# Pass 2: chunk ranges only, to find those holding an objdump (bad).
pass == 2 {
	if ($1 != "F" && $1 != "G")
		next
	s = hexnum($2)
	e = hexnum($3)
	for (i = 1; i <= nbad; i++)
		if (bad[i] >= s && bad[i] < e && !($2 in skip)) {
			skip[$2] = 1
			print "  skipped " $4 " (0x" $2 "): objdump prints (bad) in it" > "/dev/stderr"
		}
	next
}

# Pass 3: compare.
$1 == "F" || $1 == "G" {
	cur_skip = $2 in skip
	cur_gap = $1 == "G"
	if (cur_skip)
		nskipped++
	else if (!cur_gap)
		nfunc++
	fname = $4
	next
}
cur_skip { next }
$1 == "E" {
	disagree("libdecode cannot decode " fname " at 0x" $2 " (error " $3 \
		 "), objdump: " otext[$2])
	next
}
$1 == "I" {
	a = $2
	if (a in seen)         # a function nested in another: counted once
		next
	seen[a] = 1
	ncmp++
	if (cur_gap)
		ngap++
	if ($4 == "B")
		nbr++
	if ($4 == "R")
		nrip++
	if (!(a in olen)) {
		disagree(fname ": instruction at 0x" a " (len " $3 \
			 "), objdump has no instruction there")
		next
	}
	if (olen[a] != $3)
		disagree(fname ": instruction at 0x" a ": len " $3 \
			 ", objdump len " olen[a] ": " otext[a])
	if ($4 == "B" && ("" obr[a]) != ("" $5))
		disagree(fname ": branch at 0x" a ": target " $5 \
			 ", objdump: " otext[a])
	if ($4 != "B" && (a in obr))
		disagree(fname ": at 0x" a " objdump sees a direct branch, " \
			 "libdecode does not: " otext[a])
	if ($4 == "R" && ("" orip[a]) != ("" $5))
		disagree(fname ": rip-relative at 0x" a ": target " $5 \
			 ", objdump: " otext[a])
	if ($4 != "R" && (a in orip))
		disagree(fname ": at 0x" a " objdump sees a rip-relative " \
			 "operand, libdecode does not: " otext[a])
}
END { print ncmp + 0, ndis + 0, nfunc + 0, nskipped + 0, ngap + 0, nbr + 0, nrip + 0 }
'

total_cmp=0
total_dis=0
for f in "${files[@]}"; do
	if [ ! -r "$f" ]; then
		echo "t_decode_objdump: '$f' not found, skipped"
		continue
	fi
	# The two producers run in parallel; the comparison needs both.
	objdump -d -z -w --insn-width=15 "$f" >"$tmp/od" &
	od_pid=$!
	"$tool" --objdump-compare "$f" >"$tmp/qp" 2>"$tmp/qp.err" || {
		echo "t_decode_objdump: test_decode failed on '$f':" >&2
		cat "$tmp/qp.err" >&2
		exit 1
	}
	wait "$od_pid"
	read -r cmp dis nfunc nskip ngap nbr nrip < <(awk "$compare_awk" \
		"$tmp/od" "$tmp/qp" "$tmp/qp")
	echo "decode-vs-objdump: '$f': $nfunc functions, $nskip chunks" \
	     "skipped, $cmp instructions compared ($ngap between functions," \
	     "$nbr direct branches, $nrip rip-relative), $dis disagreements"
	total_cmp=$((total_cmp + cmp))
	total_dis=$((total_dis + dis))
done

echo "decode-vs-objdump: $total_cmp instructions compared, $total_dis disagreements"
if [ "$total_cmp" -eq 0 ]; then
	echo "t_decode_objdump: nothing was compared" >&2
	exit 1
fi
[ "$total_dis" -eq 0 ]

#!/bin/bash
# The man pages say what the programs do: the options in each page's
# OPTIONS section are exactly those of the program's --help, every program
# has a page, and scripts/check-man.sh (ctest docs/check-man) really fails
# on a broken page.
. "$(dirname "$0")/lib.sh"

MAN=$QP_SRC/docs/man

# help_opts PROG: the options --help lists ("  -o, --output FILE  text").
help_opts() {
	"$QP_BIN/$1" --help | grep -E '^ {2,6}-' | sed -E 's/^ +//; s/  .*//' |
		tr ', ' '\n\n' | grep -E '^--?[A-Za-z]' | sort -u
}

# man_opts PAGE: the options tagged in its OPTIONS section (.TP lines).
man_opts() {
	sed -n '/^\.SH OPTIONS/,/^\.SH /p' "$1" | grep -A1 '^\.TP' | grep -v -e '^\.TP' -e '^--$' |
		sed -E 's/\\f[BIRP]//g; s/\\-/-/g; s/"//g' | tr ' ,' '\n\n' |
		grep -E '^--?[A-Za-z]' | sort -u
}

# every page of a program with a --help of its own (not qpatch-cc and
# qpatch-c++, whose --help is the compiler's)
n=0
for page in "$MAN"/*.[1-8]; do
	p=$(basename "$page")
	prog=${p%.*}
	[ -x "$QP_BIN/$prog" ] && [ "$prog" != qpatch-cc ] && [ "$prog" != qpatch-c++ ] || continue
	n=$((n + 1))
	help_opts "$prog" >"$T/$prog.help"
	man_opts "$page" >"$T/$prog.man"
	check "$prog --help lists options ($(wc -l <"$T/$prog.help"))" test -s "$T/$prog.help"
	if diff -u "$T/$prog.help" "$T/$prog.man" >"$T/$prog.diff"; then
		ok "$p OPTIONS are those of $prog --help"
	else
		fail "$p OPTIONS differ from $prog --help (- help, + man):"
		sed 's/^/    /' "$T/$prog.diff" >&2
	fi
done
check "options compared for $n pages" test "$n" -ge 3
for w in qpatch-cc qpatch-c++; do
	check "$w.1 OPTIONS: --qpatch-version only" \
		test "$(man_opts "$MAN/$w.1")" = "--qpatch-version"
done
check "qpatch-format.5 exists" test -f "$MAN/qpatch-format.5"

for prog in "$QP_BIN"/qpatch*; do
	name=$(basename "$prog")
	check "$name has a man page" sh -c "ls '$MAN/$name'.[1-8] >/dev/null 2>&1"
done

# check-man.sh must fail on what it is there to catch
CM=$QP_SRC/scripts/check-man.sh
page() { mkdir -p "$T/$1" && cp "$MAN/qpatch-dump.1" "$T/$1/${2:-qpatch-dump.1}"; }
page good
check "check-man passes a good page" "$CM" "$T/good"
page macro && sed -i 's/^\.SH DESCRIPTION/&\n.XQ undefined/' "$T/macro/qpatch-dump.1"
check "check-man fails on a groff warning" not "$CM" "$T/macro"
page name && sed -i 's/^qpatch\\-dump \\- /qpatch-dump: /' "$T/name/qpatch-dump.1"
check "check-man fails on a NAME lexgrog cannot parse" not "$CM" "$T/name"
page other && sed -i 's/^qpatch\\-dump \\- /qpatch\\-dumper \\- /' "$T/other/qpatch-dump.1"
check "check-man fails on a NAME that is not the file's" not "$CM" "$T/other"
page sect qpatch-dump.8
check "check-man fails on a section that is not the file's" not "$CM" "$T/sect"
page nosee && sed -i 's/^\.SH SEE ALSO/.SH RELATED/' "$T/nosee/qpatch-dump.1"
check "check-man fails on a page without SEE ALSO" not "$CM" "$T/nosee"
mkdir -p "$T/empty"
check "check-man fails on no pages at all" not "$CM" "$T/empty"
page two && cp "$T/macro/qpatch-dump.1" "$T/two/qpatch-zz.1"
check "check-man checks every page of the directory" not "$CM" "$T/two"
finish

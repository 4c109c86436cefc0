#!/bin/sh
# Checks every man page DIR/*.[1-8] (default docs/man): it renders with
# man(1) and groff(1) without a single warning, lexgrog(1) (what mandb and
# whatis use) parses its NAME line, the name there is the file's, the .TH
# line names the file's section, and it has the sections every page needs.
# Exits 1 on the first page that fails any of it (the message says which
# and why), 0 when all pass.  Needs man-db and groff-base
# (scripts/install-deps.sh installs them).
set -u
DIR=${1:-$(dirname "$0")/../docs/man}
for tool in man groff lexgrog; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "check-man: '$tool' not found: install man-db and groff-base (scripts/install-deps.sh)" >&2
		exit 1
	fi
done
ERR=$(mktemp) || exit 1
trap 'rm -f "$ERR"' EXIT
# the output of man and groff does not depend on the caller's settings
export LC_ALL=C.UTF-8 MANWIDTH=80

n=0
for page in "$DIR"/*.[1-8]; do
	[ -f "$page" ] || continue
	n=$((n + 1))
	base=$(basename "$page")
	name=${base%.*}
	sect=${base##*.}
	bad() {
		echo "check-man: $page: $*" >&2
		[ -s "$ERR" ] && sed 's/^/    /' "$ERR" >&2
		exit 1
	}
	# every warning groff has (-ww), none of them allowed
	groff -man -ww -z "$page" >"$ERR" 2>&1 || bad "groff failed"
	[ -s "$ERR" ] && bad "groff warns"
	man --warnings=w -l -Tutf8 "$page" 2>"$ERR" >/dev/null || bad "man -l failed"
	[ -s "$ERR" ] && bad "man -l warns"
	what=$(lexgrog "$page" 2>"$ERR") || bad "lexgrog cannot parse the NAME section"
	case $what in
	"$page: \"$name - "?*) ;;
	*) bad "NAME should be '$name \\- DESCRIPTION', lexgrog reads: $what" ;;
	esac
	: >"$ERR"
	th=$(grep -m1 '^\.TH ' "$page")
	[ "$(echo "$th" | awk '{ print $3 }')" = "$sect" ] ||
		bad ".TH does not give section $sect: $th"
	for sh in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
		grep -q "^\.SH \"*$sh\"*\$" "$page" || bad "no $sh section"
	done
done
if [ "$n" -eq 0 ]; then
	echo "check-man: no man pages in '$DIR'" >&2
	exit 1
fi
echo "check-man: $n man pages in '$DIR' render without warnings"

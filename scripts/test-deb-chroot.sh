#!/bin/bash
# Run by scripts/test-deb.sh, as root inside a fresh Debian 12 minbase root
# holding /root/qpatch_*.deb and /root/ledger (examples/ledger):
#   test-deb-chroot.sh VERSION
# 1. the package installs with apt-get, its Depends alone (no Recommends);
#    every program runs and says VERSION; the man pages are in place;
# 2. what it Recommends (first alternatives) is installed, and nothing else:
#    that must be enough for qpatch-build;
# 3. with the installed programs only: ledger is built with qpatch-cc and
#    started, a patch is made with qpatch-build and applied with
#    qpatch-load, and the running process's output changes as the fix says;
#    then it is listed and undone;
# 4. the package's systemd handling, with a systemctl that only logs (the
#    root has no systemd): a daemon-reload after install, never enable or
#    start; on apt-get remove, stop and disable, then daemon-reload.
set -uo pipefail
VERSION=${1:?usage: test-deb-chroot.sh VERSION}
cd /root || exit 1
PASSED=0
FAILED=0
not() { ! "$@"; }
ok() { PASSED=$((PASSED + 1)); echo "ok: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*" >&2; }
check() { # check DESCRIPTION COMMAND...
	local what=$1; shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}
finish() {
	echo "test-deb-chroot: $PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ] && exit 0
	exit 1
}
# must COMMAND...: a step the rest depends on; its output goes to /root/log.
must() {
	if ! "$@" >>/root/log 2>&1; then
		fail "$*"
		tail -n 30 /root/log | sed 's/^/    /' >&2
		finish
	fi
}
# wait_match FILE REGEX: wait (max 10 s) until a line matches.
wait_match() {
	for _ in $(seq 100); do
		grep -Eq "$2" "$1" && return 0
		sleep 0.1
	done
	return 1
}

# a systemd that only logs what the maintainer scripts ask of it (in
# /usr/bin: apt runs dpkg with PATH=/usr/sbin:/usr/bin:/sbin:/bin)
check "no systemctl in the minbase root" test ! -e /usr/bin/systemctl
mkdir -p /run/systemd/system
cat >/usr/bin/systemctl <<'EOF2'
#!/bin/sh
echo "$*" >>/root/systemctl.log
EOF2
chmod +x /usr/bin/systemctl
: >/root/systemctl.log

echo "== apt-get install ./$(echo qpatch_*.deb) (Depends only)"
must apt-get update -q
must apt-get install -y -q --no-install-recommends ./qpatch_*.deb
check "package installed" test "$(dpkg-query -W -f='${Status}' qpatch)" = "install ok installed"
check "package section is admin" test "$(dpkg-query -W -f='${Section}' qpatch)" = admin
check "package has a maintainer" test -n "$(dpkg-query -W -f='${Maintainer}' qpatch)"
check "Depends has libssl3 (libcrypto: patch signatures)" sh -c "dpkg-query -W -f='\${Depends}' qpatch | grep -q libssl3"
check "no C compiler yet (minbase)" test -z "$(command -v gcc || true)"

progs=$(dpkg -L qpatch | grep -E '^/usr/s?bin/.' | sort)
check "programs in /usr/bin, /usr/sbin ($(echo $progs))" test "$(echo "$progs" | wc -l)" -ge 4
check "qpatch-load --version" test "$(qpatch-load --version)" = "qpatch-load (qpatch) $VERSION"
for p in $progs; do
	name=$(basename "$p")
	opt=--version
	case $name in qpatch-cc | qpatch-c++) opt=--qpatch-version ;; esac # --version is the compiler's
	out=$("$p" "$opt" 2>&1)
	check "$name $opt: '$out'" test "$out" = "$name (qpatch) $VERSION"
	# man(1) is not in minbase: the files themselves
	page=$(ls /usr/share/man/man[1-8]/"$name".[1-8] 2>/dev/null | head -n 1)
	check "$name has a man page ($page)" test -n "$page"
done
AGENT=/usr/lib/qpatch/libqpatch-agent.so
check "the agent library in the package ($AGENT)" sh -c "dpkg -L qpatch | grep -qx '$AGENT'"
check "the agent library's libraries are installed" sh -c "ldd '$AGENT' >/dev/null && ! ldd '$AGENT' | grep -q 'not found'"
pages=$(dpkg -L qpatch | grep -E '^/usr/share/man/man[1-8]/.+\.[1-8]$')
check "man pages in the package ($(echo $pages | wc -w))" test "$(echo $pages | wc -w)" -ge 5
for page in $pages; do
	check "$page, for qpatch $VERSION" grep -q "^\.TH .*\"qpatch $VERSION\"" "$page"
done
check "/usr/share/doc/qpatch/format.md (qpatch-format(5) points there)" \
	test -s /usr/share/doc/qpatch/format.md
UNIT=/usr/lib/systemd/system/qpatchd.service
if dpkg -L qpatch | grep -qx "$UNIT"; then
	exe=$(sed -nE 's/^ExecStart=([^ ]+).*/\1/p' "$UNIT")
	check "$UNIT starts an installed program ($exe)" test -x "$exe"
	check "install: systemctl daemon-reload" grep -qx daemon-reload systemctl.log
	check "install: qpatchd neither enabled nor started" \
		not grep -Eq '^(enable|start|reenable)( |$)' systemctl.log
	sed 's/^/    systemctl /' systemctl.log
else
	echo "(no systemd unit in the package)"
fi

# "gcc | c-compiler, make, libc6-dev | libc-dev" -> gcc make libc6-dev
recs=$(dpkg-query -W -f='${Recommends}' qpatch | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/ //g')
echo "== apt-get install the recommended $(echo $recs)"
check "package recommends a C compiler and make" sh -c "echo '$recs' | grep -qx gcc && echo '$recs' | grep -qx make"
# shellcheck disable=SC2086
must apt-get install -y -q --no-install-recommends $recs

echo "== a live patch with the installed programs"
cp -a ledger/orig app
must make -C app CC=qpatch-cc
check "ledger built with qpatch-cc" test -x app/ledger
app/ledger 100 >out 2>&1 &
PID=$!
check "ledger runs" wait_match out "^tick 3:"
# show_run COMMAND...: a step the rest depends on, its output shown
show_run() {
	echo "# $*"
	if ! "$@" >run.out 2>&1; then
		sed 's/^/    /' run.out
		fail "$*"
		finish
	fi
	sed 's/^/    /' run.out
}
show_run qpatch-build app ledger/patched -o fix.qpatch --target app/ledger
check "qpatch-build wrote the patch" test -s fix.qpatch
check "qpatch-dump: written by qpatch $VERSION" sh -c "qpatch-dump fix.qpatch | grep -q 'tool version: *$VERSION\$'"
before=$(tail -n 1 out)
show_run qpatch-load "$PID" fix.qpatch
check "the running ledger prints the fixed report" wait_match out "fixed, report 3\)"
line=$(grep -m1 "fixed, report 1)" out)
echo "before: $before"
echo "after:  $line"
bal=$(echo "$line" | sed -E 's/.*balance=([0-9]+)\.([0-9]+).*/\1\2/')
fee=$(echo "$line" | sed -E 's/.*fee=([0-9]+)\.([0-9]+).*/\1\2/')
check "fee is 1.5% after the patch ($fee of $bal)" test "$((10#$fee))" -eq "$((10#$bal * 15 / 1000))"
bal=$(echo "$before" | sed -E 's/.*balance=([0-9]+)\.([0-9]+).*/\1\2/')
fee=$(echo "$before" | sed -E 's/.*fee=([0-9]+)\.([0-9]+).*/\1\2/')
check "fee was 15% before ($fee of $bal)" test "$((10#$fee))" -eq "$((10#$bal * 15 / 100))"
tick_before=$(echo "$before" | sed -E 's/^tick ([0-9]+):.*/\1/')
tick_after=$(echo "$line" | sed -E 's/^tick ([0-9]+):.*/\1/')
check "the same process goes on (tick $tick_before -> $tick_after)" \
	test "$tick_after" -gt "$tick_before" -a -d "/proc/$PID"
check "qpatch-load --list shows it" sh -c "qpatch-load --list $PID | grep -q ledger_report"
show_run qpatch-load --undo "$PID"
n=$(wc -l <out)
for _ in $(seq 50); do
	[ "$(wc -l <out)" -ge $((n + 3)) ] && break
	sleep 0.1
done
last=$(tail -n 1 out)
echo "undone: $last"
check "the old code runs again after --undo" sh -c "echo '$last' | grep -q '^tick' && ! echo '$last' | grep -q fixed"
kill "$PID"

echo "== apt-get remove qpatch"
: >systemctl.log
must apt-get remove -y -q qpatch
check "removed: no /usr/bin/qpatch-load" test ! -e /usr/bin/qpatch-load
if [ -n "${exe:-}" ]; then
	sed 's/^/    systemctl /' systemctl.log
	check "remove: qpatchd stopped and disabled" grep -qx "disable --now qpatchd.service" systemctl.log
	check "remove: systemctl daemon-reload" grep -qx daemon-reload systemctl.log
	check "removed: no $UNIT" test ! -e "$UNIT"
fi
finish

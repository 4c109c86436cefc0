#!/bin/bash
# Real-world case: Debian's qemu 7.2 (qemu-system-x86_64, TCG), two real
# security fixes against one deployed QEMU that lacks both:
#
# * CVE-2023-5088 (hw/ide/core.c, ide_bus_reset): "reset: cancel async DMA
#   operation before resetting state".  A DMA transfer still pending when the
#   IDE bus is reset (system_reset, or a guest's reset) completed after the
#   drive's registers were reset, so its callback went on with the reset
#   state: sector 0, one sector, and wrote guest memory over the disk's first
#   sector (the partition table).  Applied live with qpatch.
# * CVE-2025-11234 (io/channel-websock.c, include/io/channel-websock.h): use
#   after free in the websocket handshake.  The fix adds a field (hs_io_tag)
#   in the middle of struct QIOChannelWebsock, whose live objects keep the
#   old layout: it cannot be applied to a running QEMU, and qpatch-build must
#   refuse it, saying why.
#
# bookworm ships both fixes inside its cumulative upstream stable diffs
# (debian/patches/v7.2.7.diff and v7.2.22.diff): the patched trees are the
# package as shipped less the other fix, the original tree the package with
# both fixes' hunks reverted.  Built as a minimal QEMU (`./configure
# --target-list=x86_64-softmmu --without-default-features --enable-seccomp`,
# QEMU's own compiler flags) with meson and ninja.
#
# QEMU runs `-M pc` without KVM, with a monitor socket, under the seccomp
# sandbox libvirt starts it with (`-sandbox on,obsolete=deny,
# elevateprivileges=deny,spawn=deny,resourcecontrol=deny`): every system
# call qpatch-load makes it run goes through that filter.  The guest is a boot
# sector (qemu/boot.S) that prints a tick a second on the serial port.  The
# probe (qemu/probe.py) drives the IDE controller through the monitor (`o`
# port writes), the way a guest would, and resets the machine while a DMA
# write is pending; the original code then writes the guest's memory over
# sector 0 of the disk, the fixed code does not.
#
# The refused fix is built first (it needs no running QEMU), in a subshell
# so that the live part runs even if it fails; its row comes second.
. "$(dirname "$0")/lib.sh"

PKG=qemu
ROW_PROGRAM=$PKG
FIX1=CVE-2023-5088 FIX1_FILES="hw/ide/core.c"
ROW_FIX="$FIX1 (hw/ide/core.c)"
CONF='--target-list=x86_64-softmmu --without-default-features --enable-seccomp'
# as libvirt starts QEMU (qemuBuildSeccompSandboxCommandLine)
SANDBOX=on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny
# the deployed build: in the tree, as `./configure && make` does (./build);
# QEMU links with the C++ driver, qpatch-c++, which logs the link
DEPLOY_CMD="./configure $CONF --cc=\"\$CC\" --cxx=\"\$CXX\" && make"
# qpatch-build's builds: make in its copy of the deployed tree, ./build
# included; qpatch-build runs them at the original tree's path, so the
# absolute paths meson wrote into ./build name the copy
QPB_CMD=make
BIN=build/qemu-system-x86_64
QPB_BIN=$BIN

step fetch
missing=""
for c in meson ninja python3 pkg-config as ld truncate; do
	command -v "$c" >/dev/null || missing="$missing $c"
done
for l in glib-2.0 pixman-1 zlib libseccomp; do
	pkg-config --exists "$l" 2>/dev/null || missing="$missing $l"
done
[ -f /usr/include/libfdt.h ] || missing="$missing libfdt"
BIOS=${QP_RW_QEMU_BIOS:-/usr/share/seabios/bios-256k.bin}
[ -f "$BIOS" ] || missing="$missing $BIOS"
[ -z "$missing" ] || die "missing:$missing (scripts/install-realworld-deps.sh qemu installs them)"
fetch_case $PKG

# extract_diff PATCH FILE...: the sections of a git diff that change FILEs.
extract_diff() {
	awk -v files=" ${*:2} " '
		/^diff --git / { keep = index(files, " " substr($3, 3) " ") > 0 }
		keep' "$1"
}

step prepare
# debian/patches/v7.2.N.diff: upstream's stable release 7.2.N, one diff
FIX2=CVE-2025-11234 FIX2_FILES="include/io/channel-websock.h io/channel-websock.c"
# stable_diff CVE: the debian/patches file of the stable release whose
# changelog says "Closes: CVE" (the nearest "v7.2.N.diff" or "v7.2.N:" above).
stable_diff() {
	local n
	n=$(awk -v cve="$1" '
		match($0, /v[0-9]+\.[0-9]+\.[0-9]+(\.diff|:)/) { v = substr($0, RSTART, RLENGTH); sub(/(\.diff|:)$/, "", v) }
		/Closes/ && index($0, cve) { print v; exit }' "$D/shipped/debian/changelog")
	[ -n "$n" ] && grep -qx "$n.diff" "$D/shipped/debian/patches/series" && echo "$D/shipped/debian/patches/$n.diff"
}
if [ ! -f "$D/prepared" ]; then
	rm -rf "$D" && mkdir -p "$D"
	unpack_source "$SRC_DSC" "$D/shipped"
	for f in "$FIX1:$FIX1_FILES" "$FIX2:$FIX2_FILES"; do
		P=$(stable_diff "${f%%:*}") || die "no debian/patches file for ${f%%:*} in $PKG $VER"
		# shellcheck disable=SC2086
		extract_diff "$P" ${f#*:} >"$D/${f%%:*}.patch"
		[ -s "$D/${f%%:*}.patch" ] || die "$(basename "$P") does not change ${f#*:}"
		basename "$P" >"$D/${f%%:*}.from"
	done
	grep -q 'blk_aio_cancel' "$D/$FIX1.patch" && grep -q 'hs_io_tag' "$D/$FIX2.patch" ||
		die "the hunks found are not the fixes of $FIX1 and $FIX2"
	for t in "$FIX1:$FIX2" "$FIX2:$FIX1"; do
		cp -a "$D/shipped" "$D/fixed-${t%%:*}" &&
			patch -d "$D/fixed-${t%%:*}" -R -p1 -s <"$D/${t#*:}.patch" ||
			die "cannot revert ${t#*:} in the shipped tree"
	done
	touch "$D/prepared"
fi
for f in $FIX1 $FIX2; do
	say "fix $f: the hunks of debian/patches/$(cat "$D/$f.from") for $(grep '^+++ b/' "$D/$f.patch" | sed 's|^+++ b/||' | tr '\n' ' ')"
done
make_orig() {
	cp -a "$D/fixed-$FIX1" "$1" &&
		patch -d "$1" -R -p1 -s <"$D/$FIX1.patch" || die "cannot revert $FIX1"
}

step "deploy build"
deploy_build "$D/orig" "$DEPLOY_CMD" make_orig
QEMU=$D/orig/$BIN
[ -x "$QEMU" ] || die "no $BIN in the deployed build"

step guest
# the boot sector (qemu/boot.S) and the two disks: boot.img (primary
# master) boots it; probe.img (secondary master, id=probe, writes held to
# 32 KiB/s) is the one the probe writes to
GUEST=$RW_LOG/guest
rm -rf "$GUEST" && mkdir -p "$GUEST"
as --32 -o "$GUEST/boot.o" "$RW_HERE/qemu/boot.S" &&
	ld -m elf_i386 -Ttext=0x7c00 -e _start --oformat binary -o "$GUEST/boot.bin" "$GUEST/boot.o" ||
	die "cannot assemble the guest (qemu/boot.S)"
[ "$(stat -c %s "$GUEST/boot.bin")" = 512 ] || die "the guest is not one 512-byte sector"
# monitor sockets: a short path (sun_path holds 108 bytes)
SOCKDIR=$(mktemp -d /tmp/qp-rw-qemu.XXXXXX) || die "mktemp failed"
rw_qemu_cleanup() { rw_cleanup; rm -rf "$SOCKDIR"; }
trap rw_qemu_cleanup EXIT
PROBE=(python3 "$RW_HERE/qemu/probe.py")

# start_qemu BINARY NAME: a `-M pc` machine running the guest, monitor on
# $SOCKDIR/NAME.sock, serial port in $RW_LOG/NAME/serial.log; sets PID,
# MON, SERIAL, IMG (the probe's disk).
start_qemu() {
	local dir=$RW_LOG/$2
	rm -rf "$dir" && mkdir -p "$dir"
	MON=$SOCKDIR/$2.sock SERIAL=$dir/serial.log IMG=$dir/probe.img
	truncate -s 1M "$dir/boot.img" "$IMG" &&
		dd if="$GUEST/boot.bin" of="$dir/boot.img" conv=notrunc status=none || die "cannot make the disks"
	spawn "$dir/qemu.out" "$1" -M pc -display none -nodefaults -bios "$BIOS" -sandbox "$SANDBOX" \
		-monitor "unix:$MON,server,nowait" -serial "file:$SERIAL" \
		-drive "file=$dir/boot.img,format=raw,if=ide,index=0" \
		-drive "file=$IMG,format=raw,if=ide,index=2,id=probe,cache=writeback,throttling.bps-write=32768"
	PID=$SPAWNED
	wait_for 60 grep -qs 'qpatch-guest: tick' "$SERIAL" ||
		die "the guest did not start in $2: $(tail -n3 "$dir/qemu.out" "$SERIAL" 2>/dev/null)"
	sandboxed "$PID" || die "QEMU ($2) is not under a seccomp filter: $(grep '^Seccomp' /proc/"$PID"/status | tr '\n' ' ')"
}
# sandboxed PID: every thread of PID runs under a seccomp filter (mode 2);
# sets FILTERS to the number of filters of its main thread
sandboxed() {
	FILTERS=$(awk '$1 == "Seccomp_filters:" { print $2 }' "/proc/$1/status")
	! grep -L '^Seccomp:[[:space:]]*2$' /proc/"$1"/task/*/status | grep -q . &&
		grep -q '^Seccomp:[[:space:]]*2$' "/proc/$1/status"
}
hmp() { "${PROBE[@]}" "$MON" cmd "$@"; }
boots() { grep -c 'qpatch-guest: booted' "$SERIAL"; }
ticks() { grep -c 'qpatch-guest: tick' "$SERIAL"; }
booted_since() { [ "$(boots)" -gt "$1" ]; }
ticked_since() { [ "$(ticks)" -gt "$1" ]; }
# probe: sets PROBE_OUT ("sector 0 overwritten, 3 writes"); the guest must
# boot again after the reset
probe() {
	local b
	b=$(boots)
	PROBE_OUT=$("${PROBE[@]}" "$MON" probe "$IMG" probe 2>>"$RW_LOG/probe.log") ||
		die "probe failed: $PROBE_OUT $(tail -n2 "$RW_LOG/probe.log")"
	wait_for 60 booted_since "$b" || die "the guest did not boot again after the reset"
	kill -0 "$PID" 2>/dev/null || die "QEMU exited: $(tail -n3 "$(dirname "$SERIAL")/qemu.out")"
}
running() { hmp "info status" | grep -q 'VM status: running'; }

# soak (soak.sh): cycles, before the case's own apply (whose probe then
# shows the fix still works); the guest must keep ticking: SOAK_ALIVE
# notes the longest time the serial output went without a new tick
SOAK_N=${QP_RW_SOAK_N:-100}
SOAK_RSS_BOUND_KB=512
SOAK_TICK_GAP_MAX=5
soak_alive() {
	local t n
	kill -0 "$PID" 2>/dev/null || return 1
	t=$(ticks) n=$(date +%s%N)
	if [ "$t" != "$SOAK_TICKS" ]; then
		SOAK_TICKS=$t SOAK_TICK_AT=$n
	else
		SOAK_GAP=$(((n - SOAK_TICK_AT) / 1000000 > SOAK_GAP ? (n - SOAK_TICK_AT) / 1000000 : SOAK_GAP))
	fi
}
SOAK_ALIVE=soak_alive

step "refused fix"
# The same deployed QEMU: the websocket fix, which changes struct
# QIOChannelWebsock, must be refused, naming the reason.
refused_fix "$FIX2" "include/io/channel-websock.h, io/channel-websock.c" "$D/orig" \
	"$D/fixed-$FIX2" "$QPB_BIN" "$QPB_CMD" "$QEMU" QIOChannelWebsock
ROW_FIX="$FIX1 (hw/ide/core.c)" ROW_BUILD="" ROW_RESULT=""

step start
start_qemu "$QEMU" live
expect "guest running ($(ticks) ticks)" running
say "pid $PID: $(hmp 'info status'); -sandbox $SANDBOX: seccomp mode 2 in all $(ls /proc/"$PID"/task | wc -l) threads, $FILTERS filter(s)"

step "probe (original)"
probe
P0=$PROBE_OUT
say "probe: $P0"
[[ $P0 == "sector 0 overwritten"* ]] || die "the original QEMU answers '$P0' to the probe"

step qpatch-build
qp_build "$D/orig" "$D/fixed-$FIX1" "$RW_LOG/fix.qpatch" "$QPB_BIN" "$QPB_CMD" "$QEMU"

step "reference (fixed build)"
LIVE=("$PID" "$MON" "$SERIAL" "$IMG")
REFBIN=$(ref_bin "$QPB_BIN") || die "no fixed build in qpatch-build's work directory '$RW_WORK'"
start_qemu "$REFBIN" ref-fixed
probe
PFIX=$PROBE_OUT
hmp quit >/dev/null 2>&1
wait "$PID" 2>/dev/null
PID=${LIVE[0]} MON=${LIVE[1]} SERIAL=${LIVE[2]} IMG=${LIVE[3]}
say "fixed build answers '$PFIX'"
[[ $PFIX == "sector 0 intact"* ]] || die "the fixed build answers '$PFIX' to the probe"

ID=$(patch_id "$RW_LOG/fix.qpatch")
if soak_enabled; then
	# before the patch whose probes follow: between the two snapshots only
	# the soak and the guest run (the probe's block I/O makes QEMU keep
	# coroutine stacks and start worker threads, which are its own)
	step soak
	B0=$(boots)
	soak_before "$PID"
	SOAK_TICKS=$(ticks) SOAK_TICK_AT=$(date +%s%N) SOAK_GAP=0
	ST0=$SOAK_TICKS
	soak_cycles "$PID" "$RW_LOG/fix.qpatch" "$ID" "$SOAK_N"
	soak_alive
	ST1=$(ticks)
	soak_after "$PID"
	say "soak: the guest ticked $((ST1 - ST0)) times in $SOAK_SECS s, longest time without a tick $SOAK_GAP ms; $(($(boots) - B0)) boots"
	sandboxed "$PID" || SOAK_BAD="${SOAK_BAD:+$SOAK_BAD; }QEMU no longer under its seccomp filter"
	[ "$(boots)" = "$B0" ] || SOAK_BAD="${SOAK_BAD:+$SOAK_BAD; }the guest booted again during the soak"
	[ "$SOAK_GAP" -le $((SOAK_TICK_GAP_MAX * 1000)) ] ||
		SOAK_BAD="${SOAK_BAD:+$SOAK_BAD; }the guest went ${SOAK_GAP} ms without a tick (bound ${SOAK_TICK_GAP_MAX} s)"
	[ "$SOAK_AFAIL$SOAK_UFAIL" = 00 ] && [ "$SOAK_DONE" = "$SOAK_N" ] ||
		SOAK_BAD="${SOAK_BAD:+$SOAK_BAD; }$SOAK_DONE of $SOAK_N cycles, $SOAK_AFAIL applies and $SOAK_UFAIL undos failed"
	if [ -n "$SOAK_BAD" ]; then
		soak_row "**FAIL**: $SOAK_BAD"
		die "soak: $SOAK_BAD"
	fi
fi

step qpatch-load
T0=$(ticks) B0=$(boots)
expect "guest running before the patch ($T0 ticks, $B0 boots)" running
qp_load "$PID" "$RW_LOG/fix.qpatch"
expect "patch $ID listed in the process" qp_listed "$PID" "$ID"
"$QP_BIN/qpatch-load" --list "$PID" >"$RW_LOG/qpatch-list.log" 2>&1
sed 's/^/    /' "$RW_LOG/qpatch-list.log"
expect "ide_bus_reset redirected" grep -q 'ide_bus_reset' "$RW_LOG/qpatch-list.log"

step "fixed code runs"
wait_for 10 ticked_since "$T0" || die "the guest stopped running after the patch"
expect "guest running after the patch ($(ticks) ticks)" running
probe
P1=$PROBE_OUT
say "probe: $P1"
[ "$P1" = "$PFIX" ] || die "after the patch the probe gives '$P1', the fixed build '$PFIX' (before: '$P0')"

expect "QEMU still under its seccomp filter" sandboxed "$PID"

step undo
qp_undo "$PID"
expect "no patch left in the process" qp_none "$PID"
probe
P2=$PROBE_OUT
say "probe: $P2"
[ "$P2" = "$P0" ] || die "after undo the probe gives '$P2', before the patch '$P0'"
expect "guest running after undo" running
T2=$(ticks) B2=$(boots)

step stop
# QEMU quits on the monitor's command
hmp quit >/dev/null 2>&1
wait "$PID"
rc=$?
[ $rc -eq 0 ] || die "QEMU exited with status $rc: $(tail -n3 "$RW_LOG/live/qemu.out")"
ROW_RESULT="ok: probe '$P0' → '$P1' (as the fixed build) → undo → '$P2'; the guest ran throughout (booted $B2 times: at start and after each system_reset; $T2 ticks) under libvirt's seccomp sandbox (-sandbox $SANDBOX), QEMU quit normally"
row_write
soak_enabled && soak_row "ok: the guest ticked $((ST1 - ST0)) times during the soak, never more than $SOAK_GAP ms without a tick, no reboot; still under its seccomp filter; then the fix applied once more: probe '$P1' (as the fixed build), undone: '$P2'; QEMU quit normally"
say "$ROW_RESULT"
[ "$REFUSED_RC" -eq 0 ] || { say "the refused fix failed: see its row"; exit 1; }

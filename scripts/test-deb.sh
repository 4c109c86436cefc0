#!/bin/bash
# The Debian package on a clean Debian 12: builds qpatch_*.deb (make deb),
# unpacks a debootstrap --variant=minbase bookworm root, installs the
# package there with apt-get and, with the installed programs only, builds
# a program, makes a patch and applies it to the running program
# (scripts/test-deb-chroot.sh, run inside the root).  Run as root.
#
#   scripts/test-deb.sh [BUILD_DIR]        (default: build)
#
# QP_DEB_CACHE (default /var/cache/qpatch-ci) keeps the debootstrapped root
# (bookworm-minbase.tar) and the .debs apt downloads into it (apt-archives/),
# so only the first run downloads; QP_DEB_MIRROR is the Debian mirror
# (default http://deb.debian.org/debian).
#
# Mounts (/proc, /sys, /dev/pts, /dev/shm, the apt cache) are made in a
# private mount and PID namespace (unshare): they vanish with it, and so
# does every process started in the root, whatever way this script ends;
# a trap unmounts them in order too.  The root is removed at the end, never
# across a mount.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
CACHE=${QP_DEB_CACHE:-/var/cache/qpatch-ci}
MIRROR=${QP_DEB_MIRROR:-http://deb.debian.org/debian}
TAR=$CACHE/bookworm-minbase.tar
START=$SECONDS

step() { printf '== %s (%d s)\n' "$*" $((SECONDS - START)); }
die() { echo "test-deb: $*" >&2; exit 1; }
# show_log FILE: the end of a log of something that failed
show_log() { echo "test-deb: last lines of $1:" >&2; tail -n 40 "$1" | sed 's/^/    /' >&2; }

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, mounts)"
"$ROOT/scripts/install-deps.sh" deb

step "build the package (make deb)"
make -C "$ROOT" deb BUILD="$BUILD" >"$BUILD/test-deb.make.log" 2>&1 ||
	{ show_log "$BUILD/test-deb.make.log"; die "make deb failed"; }
set -- "$BUILD"/qpatch_*.deb
if [ $# -ne 1 ] || [ ! -f "$1" ]; then
	die "expected one package in $BUILD, found: $*"
fi
DEB=$1
VERSION=$(dpkg-deb -f "$DEB" Version)
echo "package: $DEB (version $VERSION)"

R=$(mktemp -d /var/tmp/qpatch-deb.XXXXXX)
# mounted: is anything mounted at or below $R?  (the mounts live in the
# namespace of the unshare below, so this is a last safety net only)
mounted() { awk -v r="$R" '$2 == r || index($2, r "/") == 1 { n++ } END { exit !n }' /proc/self/mounts; }
cleanup() {
	if mounted; then
		echo "test-deb: something is still mounted under $R; not removing it" >&2
	else
		rm -rf --one-file-system "$R"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$CACHE/apt-archives/partial"
if [ -s "$TAR" ]; then
	step "clean Debian 12 root from $TAR"
	tar -C "$R" --numeric-owner -xf "$TAR"
else
	step "debootstrap --variant=minbase bookworm (first run; cached in $TAR)"
	debootstrap --variant=minbase bookworm "$R" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
		{ show_log "$CACHE/debootstrap.log"; die "debootstrap failed"; }
	rm -f "$R"/var/cache/apt/archives/*.deb
	tar -C "$R" --numeric-owner -cf "$TAR.tmp" . && mv "$TAR.tmp" "$TAR"
fi
cp "$DEB" "$R/root/"
cp -a "$ROOT/examples/ledger" "$R/root/ledger"
cp "$ROOT/scripts/test-deb-chroot.sh" "$R/root/"
cp -L /etc/resolv.conf "$R/etc/resolv.conf"

# in_namespace ROOT CACHE VERSION: mount what the root needs, run the test
# in it, unmount.  Runs as PID 1 of a new PID namespace.
in_namespace() {
	set -euo pipefail
	local r=$1 cache=$2 version=$3
	mounts=() # global: the EXIT trap runs after this function has returned
	unmount_all() {
		local i
		for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
			umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}"
		done
	}
	trap unmount_all EXIT
	# the root is a mount point, as / is on a host (qpatch-build makes
	# its mount namespace private from there)
	mount --bind "$r" "$r" && mounts+=("$r")
	mount -t proc proc "$r/proc" && mounts+=("$r/proc")
	mount -t sysfs -o ro sysfs "$r/sys" && mounts+=("$r/sys")
	mkdir -p "$r/dev/pts" "$r/dev/shm"
	mount -t devpts -o newinstance,ptmxmode=0666 devpts "$r/dev/pts" && mounts+=("$r/dev/pts")
	mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm" && mounts+=("$r/dev/shm")
	mount --bind "$cache/apt-archives" "$r/var/cache/apt/archives" &&
		mounts+=("$r/var/cache/apt/archives")
	chroot "$r" /usr/bin/env -i HOME=/root LC_ALL=C.UTF-8 TERM=dumb \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		DEBIAN_FRONTEND=noninteractive \
		/bin/bash /root/test-deb-chroot.sh "$version"
}

step "in the root: install the package, live-patch a program with it"
rc=0
unshare --mount --pid --fork --propagation private \
	bash -c "$(declare -f in_namespace); in_namespace \"\$@\"" in_namespace "$R" "$CACHE" "$VERSION" ||
	rc=$?
step "done"
[ "$rc" -eq 0 ] || die "the package failed in the clean root (status $rc)"
echo "test-deb: the package installs and works on a clean Debian 12 ($((SECONDS - START)) s)"

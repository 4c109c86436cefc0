#!/bin/sh
# Installs the extra Debian 12 packages the real-world suite needs
# (tests/realworld/, `make realworld`), if any are missing: Debian source
# package tools (apt-get source, dpkg-source, dpkg-buildflags), patch and xz
# for the packages' tarballs, and tclsh, which sqlite's build runs.  The
# lua and redis builds need nothing more (redis builds its bundled Lua,
# hiredis, linenoise).
#
#   scripts/install-realworld-deps.sh [qemu]
#
# With "qemu" (or QP_RW_ALL=1, or qemu among $CASES, as `make realworld
# CASES=qemu` sets), also what the QEMU case needs: QEMU's build tools and
# the libraries of a minimal x86_64-softmmu build (meson, ninja, glib,
# pixman, zlib, libfdt, and libseccomp for the -sandbox libvirt starts QEMU
# with), and the SeaBIOS firmware its machine boots.
# Run as root (or with sudo); as another user it only says what is missing.
set -eu
PKGS="dpkg-dev patch xz-utils build-essential make tcl"
QEMU_PKGS="meson ninja-build python3 pkg-config libglib2.0-dev libpixman-1-dev zlib1g-dev libfdt-dev libseccomp-dev seabios"
case " ${1:-} ${CASES:-} " in
*" qemu "*) PKGS="$PKGS $QEMU_PKGS" ;;
*) [ "${QP_RW_ALL:-0}" = 1 ] && PKGS="$PKGS $QEMU_PKGS" ;;
esac
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "the real-world suite needs these Debian packages:$missing" >&2
	echo "install them with: sudo apt-get install$missing" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null

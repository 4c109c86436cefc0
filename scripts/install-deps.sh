#!/bin/sh
# Installs the Debian 12 packages qpatch needs to build and test, if any
# are missing; "install-deps.sh fuzz" adds clang and its libFuzzer runtime
# for scripts/fuzz.sh, "install-deps.sh deb" debootstrap for
# scripts/test-deb.sh.  Run as root (or with sudo) on a fresh machine; as another
# user it only says what is missing.
set -eu
# autoconf and automake: tests/integration/t_autotools.sh builds a real
# autotools project; meson and ninja-build: t_meson.sh builds a meson
# project in build/ inside its tree, as QEMU is built; ansible-core: t_ansible.sh runs the fleet playbook of
# examples/cloud-host.  man-db and groff-base: scripts/check-man.sh renders
# the man pages.  dpkg-dev and file: cpack -G DEB (make deb) computes the
# package's dependencies with dpkg-shlibdeps.  libssl-dev: libcrypto for
# Ed25519 signatures of patches (format/sign.c); openssl: t_sign.sh makes
# its keys with the openssl command.  strace: t_target.sh traces a target
# with it (a process already traced is refused).
PKGS="build-essential cmake pkg-config libelf-dev libdw-dev binutils-dev libzstd-dev
libzydis-dev libzycore-dev libssl-dev openssl binutils make python3 autoconf automake meson ninja-build ansible-core
man-db groff-base dpkg-dev file strace"
[ "${1:-}" = fuzz ] && PKGS="$PKGS clang libclang-rt-14-dev"
[ "${1:-}" = deb ] && PKGS="$PKGS debootstrap"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "qpatch needs these Debian packages:$missing" >&2
	echo "install them with: sudo apt-get install$missing" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null

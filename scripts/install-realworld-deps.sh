#!/bin/sh
# Installs the extra Debian 12 packages the real-world suite needs
# (tests/realworld/, `make realworld`), if any are missing: Debian source
# package tools (apt-get source, dpkg-source, dpkg-buildflags), patch and xz
# for the packages' tarballs.  The programs' own build dependencies are
# vendored in their sources (redis builds its Lua, hiredis, linenoise).
# Run as root (or with sudo); as another user it only says what is missing.
set -eu
PKGS="dpkg-dev patch xz-utils build-essential make"
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

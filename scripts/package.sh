#!/usr/bin/env bash
# package.sh [BUILD_DIR]: the Debian package mosquitto-onboard_VERSION-1_ARCH.deb
# (CPack, cmake/Package.cmake), built in BUILD_DIR (default build-pkg/) for
# prefix /usr without the tests. Prints the path of the .deb on its last line.
# Needs scripts/deps.sh's packages (help2man for the man pages, dpkg-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
B=${1:-$ROOT/build-pkg}
mkdir -p "$B"
log=$B/onb-package.log
{
	cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DONB_TESTS=OFF \
		&& cmake --build "$B" -j"$(nproc)" \
		&& rm -f "$B"/mosquitto-onboard_*.deb \
		&& (cd "$B" && cpack -G DEB)
} > "$log" 2>&1 || { tail -n 40 "$log" >&2; echo "package.sh: failed (whole log: $log)" >&2; exit 1; }
deb=$(ls "$B"/mosquitto-onboard_*.deb)
echo "$deb"

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
# Debian's hardening flags, as dpkg-buildpackage passes them: fortified libc
# calls, stack protector, full RELRO and immediate binding (the plugin's
# mosquitto_* symbols are all in 2.0.11's broker, so binding them at load is safe).
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cflags="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
ldflags=$(dpkg-buildflags --get LDFLAGS)
{
	cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DONB_TESTS=OFF \
		-DCMAKE_C_FLAGS="$cflags" -DCMAKE_EXE_LINKER_FLAGS="$ldflags" -DCMAKE_MODULE_LINKER_FLAGS="$ldflags" \
		&& cmake --build "$B" -j"$(nproc)" \
		&& rm -f "$B"/mosquitto-onboard_*.deb \
		&& (cd "$B" && cpack -G DEB)
} > "$log" 2>&1 || { tail -n 40 "$log" >&2; echo "package.sh: failed (whole log: $log)" >&2; exit 1; }
deb=$(ls "$B"/mosquitto-onboard_*.deb)
echo "$deb"

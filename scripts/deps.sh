#!/usr/bin/env bash
# Installs, from Debian 12's own packages, whatever the build, the demo and the
# tests need and this machine lacks. Safe to run again: installs nothing twice.
set -euo pipefail

PACKAGES=(
	build-essential cmake pkg-config clang
	mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev
	libssl-dev openssl libhiredis-dev libcjson-dev libcmocka-dev redis-server redis-tools stunnel4
	libqrencode-dev libpng-dev zbar-tools valgrind iproute2 procps jq python3
	# the device CA key in a PKCS#11 token: OpenSSL engine, SoftHSM2, pkcs11-tool (tests/integration/hsm.sh)
	softhsm2 libengine-pkcs11-openssl opensc
	# the version matrix (scripts/brokers.sh): the runtime libraries of
	# bookworm-backports' mosquitto and valkey-server, unpacked there with dpkg -x
	libwebsockets17 libwrap0 libdlt2 libjemalloc2 liblzf1
	# the Debian package (scripts/package.sh): man pages from --help; CPack runs
	# file and dpkg-shlibdeps
	help2man dpkg-dev file
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
# The packaged redis-server and mosquitto services are not used: the demo and
# the tests start their own on free loopback ports.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

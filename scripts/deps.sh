#!/usr/bin/env bash
# Installs, from Debian 12's own packages, whatever the build, the demo and the
# tests need and this machine lacks. Safe to run again: installs nothing twice.
set -euo pipefail

PACKAGES=(
	build-essential cmake pkg-config clang
	mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev
	libssl-dev openssl libhiredis-dev libcjson-dev libcmocka-dev redis-server redis-tools stunnel4
	libqrencode-dev libpng-dev zbar-tools valgrind iproute2 procps jq python3
	# the CBOR fleet-provisioning topics (lib/provisioning/provcbor.c); runtime: libcbor0.8
	libcbor-dev
	# claimsvc's /healthz and /metrics (claimsvc/http.c); curl drives them in tests/integration/http.sh
	libmicrohttpd-dev curl
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
need_promtool=0
command -v promtool >/dev/null || need_promtool=1
[ ${#missing[@]} -eq 0 ] && [ $need_promtool -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}"
	# The packaged redis-server and mosquitto services are not used: the demo and
	# the tests start their own on free loopback ports.
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# promtool checks claimsvc's /metrics (tests/integration/http.sh). It comes
# from Debian's prometheus package, unpacked alone (a static binary): on a
# machine with systemd, installing that package would enable and start a
# Prometheus server listening on every interface (:9090) and add a user.
if [ $need_promtool -eq 1 ]; then
	echo "installing: promtool (from Debian's prometheus package, unpacked alone)"
	d=$(mktemp -d)
	(cd "$d" && apt-get download -qq prometheus 2>/dev/null \
		&& dpkg-deb --fsys-tarfile prometheus_*.deb | tar -x ./usr/bin/promtool)
	$SUDO install -m 0755 "$d/usr/bin/promtool" /usr/local/bin/promtool
	rm -rf "$d"
fi

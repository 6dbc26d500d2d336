#!/usr/bin/env bash
# The Debian package on a clean Debian 12 root: builds it (scripts/package.sh),
# checks its control data, then installs it with apt in a podman container
# made from the debootstrapped debian:bookworm-slim base that docker/test.sh
# makes (the same project-local image store, build-docker/, so the base is
# made once for both), brings up Redis and the broker with the plugin from the
# installed paths as docs/install.md says, judges device connects, purges the
# package and checks that nothing is left behind (packaging/in-root.sh).
#
# The container's image is the base plus the package's Depends and the test's
# tools (redis-server, mosquitto-clients), installed from the apt mirror when
# the image is built and cached after; the test itself runs without network.
#
# Exit status: 0 all passed, 1 something failed, 77 skipped because no
# container can run here (the reason is printed). Ends with "N passed, N failed".
# shellcheck disable=SC2317  # functions run through check
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
T0=$(date +%s%N)
W=${ONB_DOCKER_WORKDIR:-$ROOT/build-docker}
BUILD=${ONB_PACKAGE_BUILD_DIR:-$ROOT/build-pkg}
BASE_IMAGE=docker.io/library/debian:bookworm-slim
IMG=localhost/mosquitto-onboard/pkgtest:dev
PASSES=0
FAILS=0
SKIPPED=0
TD=""

say() { printf '# %s\n' "$*"; }
ok() { PASSES=$((PASSES + 1)); echo "ok - $*"; }
not_ok() { FAILS=$((FAILS + 1)); echo "not ok - $*"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
elapsed() { echo $(( ($(date +%s%N) - T0) / 1000000000 )); }
skip() {
	echo "package test SKIPPED: $*"
	echo "duration $(elapsed) s"
	SKIPPED=1
	exit 77
}
fatal() { not_ok "$*"; exit 1; }
require() { local d=$1; shift; if "$@"; then ok "$d"; else fatal "$d"; fi; }

teardown() {
	local rc=$?
	[ "$SKIPPED" -eq 1 ] && exit 77
	rm -rf "$TD"
	echo "duration $(elapsed) s"
	echo "$PASSES passed, $FAILS failed"
	[ "$FAILS" -eq 0 ] && [ "$rc" -eq 0 ] && exit 0
	exit 1
}

mkdir -p "$W"
trap teardown EXIT
TD=$(mktemp -d "${TMPDIR:-/tmp}/onb-pkg.XXXXXX")

# ---------------------------------------------------------------- the package

t=$(date +%s)
DEB=$(scripts/package.sh "$BUILD" | tail -n 1)
require "the package builds (scripts/package.sh, $(( $(date +%s) - t )) s)" test -f "$DEB"
say "$(basename "$DEB"): $(stat -c %s "$DEB") bytes, $(dpkg-deb -f "$DEB" Installed-Size) kB installed"
dpkg-deb -e "$DEB" "$TD/control"
depends=$(dpkg-deb -f "$DEB" Depends)
say "Depends: $depends"
has_dep() { [[ ", $depends," == *", $1"[\ ,]* ]]; }
check "Depends names the broker it plugs into and adduser" eval 'has_dep mosquitto && has_dep adduser'
check "  ... and the libraries, from dpkg-shlibdeps" \
	eval 'has_dep libssl3 && has_dep libhiredis0.14 && has_dep libcjson1 && has_dep libmosquitto1 && has_dep libc6 \
		&& has_dep libcbor0.8'
etc_files() { dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | grep '^/etc/' | sort; }
conffiles_all() { [ -s "$TD/control/conffiles" ] && diff <(sort "$TD/control/conffiles") <(etc_files); }
check "every file under /etc is a conffile" conffiles_all
# Each library a binary asks for (DT_NEEDED) comes from a package named in
# Depends (on this Debian 12 host, as in the root), so that apt brings it.
dpkg-deb -x "$DEB" "$TD/data"
owner_pkg() {
	dpkg -S "$1" 2>/dev/null || dpkg -S "$(readlink -f "$1")" 2>/dev/null \
		|| dpkg -S "/usr$1" 2>/dev/null || dpkg -S "/usr$(readlink -f "$1")" 2>/dev/null
}
undeclared() {
	local bin so path p out=""
	for bin in "$TD/data/usr/bin/onboardctl" "$TD/data/usr/sbin/claimsvc" "$TD"/data/usr/lib/*/mosquitto-onboard/*.so; do
		for so in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
			path=$(ldd "$bin" | awk -v s="$so" '$1 == s { print $3 }')
			p=$(owner_pkg "$path" | cut -d: -f1 | sed -n 1p)
			has_dep "${p:-?}" || out+=" ${bin##*/}:$so(${p:-no package})"
		done
	done
	echo "$out"
}
missing_deps=$(undeclared)
check "every library the binaries need is from a package in Depends${missing_deps:+:$missing_deps}" \
	test -z "$missing_deps"
check "maintainer scripts postinst, prerm, postrm" test -x "$TD/control/postinst" -a -x "$TD/control/prerm" \
	-a -x "$TD/control/postrm"
if command -v shellcheck >/dev/null; then
	check "shellcheck: packaging/ and the maintainer scripts" shellcheck -x packaging/*.sh packaging/deb/*
fi

# ---------------------------------------------------------------- a clean Debian 12 root

if [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
	skip "rootful podman needs root (or password-less sudo)"
fi
if [ "$(id -u)" -ne 0 ]; then exec sudo -n -E "$0" "$@"; fi
# shellcheck source=docker/podman.sh
source "$ROOT/docker/podman.sh"
# shellcheck disable=SC2119  # no extra packages
podman_prepare
say "$(podman --version), $(runc --version | sed -n 1p)"

deps=$(sed -E 's/\([^)]*\)//g; s/\|[^,]*//g; s/,/ /g' <<<"$depends" | tr -s ' ')
mkdir -p "$TD/ctx" "$TD/onb"
cat > "$TD/Containerfile" <<EOF
FROM $BASE_IMAGE
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $deps redis-server mosquitto-clients \\
 && rm -rf /var/lib/apt/lists/*
EOF
t=$(date +%s)
timeout 600 podman build -t "$IMG" -f "$TD/Containerfile" "$TD/ctx" > "$W/pkgtest-build.log" 2>&1 \
	|| { tail -n 20 "$W/pkgtest-build.log"; fatal "the test root's image (the base + Depends)"; }
say "test root image ready ($(( $(date +%s) - t )) s; cached after its first build)"

cp "$DEB" packaging/in-root.sh "$TD/onb/"
t=$(date +%s)
timeout 300 podman run --rm --network none -v "$TD/onb:/onb:ro" "$IMG" \
	bash /onb/in-root.sh "/onb/$(basename "$DEB")" > "$TD/root.out" 2>&1
# its own closing line becomes a comment: this script's is the one that counts
sed -E 's/^([0-9]+ passed, [0-9]+ failed)$/# in the root: \1/' "$TD/root.out"
say "in the root: $(( $(date +%s) - t )) s"
PASSES=$((PASSES + $(grep -c '^ok - ' "$TD/root.out")))
FAILS=$((FAILS + $(grep -c '^not ok - ' "$TD/root.out")))
check "the test in the root ran to its end" grep -qE '^[0-9]+ passed, [0-9]+ failed$' "$TD/root.out"
exit 0

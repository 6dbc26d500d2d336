#!/usr/bin/env bash
# The servers of the version matrix (docs/compatibility.md), from Debian's
# archive only, cached in DIR (default build/servers):
#
#   DIR/mosquitto-backports/usr/sbin/mosquitto   bookworm-backports' binary
#                                                (2.0.21 today; Debian 13's too)
#   DIR/mosquitto-sid/build/src/mosquitto        sid's source package, the
#                                                broker alone built with CMake
#                                                (2.1.2 today)
#   DIR/valkey-backports/usr/bin/valkey-server   bookworm-backports' Valkey 8
#
# The machine's own apt sources are left alone: a private sources list,
# package lists and download cache live in DIR/apt. Debian 12's own
# mosquitto 2.0.11 and redis-server 7.0 come from scripts/deps.sh.
#
# The machine's own apt configuration applies; ONB_APT_OPTS adds options to
# these apt-get calls (docker/broker.Dockerfile passes the build host's
# "-o Acquire::Check-Valid-Until=false" when that host reads an archive
# snapshot whose sid and backports Release files have expired).
#
# usage: brokers.sh [--only NAME] [DIR]   (NAME: mosquitto-backports,
#        mosquitto-sid or valkey-backports; docker/broker.Dockerfile builds
#        its broker with --only mosquitto-sid)
# Prints one line per server: NAME PATH VERSION. Fails, saying which step,
# if any of them cannot be had.
set -euo pipefail

ONLY=""
if [ "${1:-}" = --only ]; then ONLY=${2:?--only needs a NAME}; shift 2; fi
case "$ONLY" in ""|mosquitto-backports|mosquitto-sid|valkey-backports) ;; *) echo "brokers.sh: no server $ONLY" >&2; exit 2 ;; esac
DIR=$(mkdir -p "${1:-build/servers}" && cd "${1:-build/servers}" && pwd)
APT="$DIR/apt"
JOBS=$(nproc)

fail() { echo "brokers.sh: $*" >&2; exit 1; }

# The archive the machine already uses (the note in ../shared/notes: a
# private list with the same URI), from its deb822 or one-line sources.
archive_uri() {
	local uri=""
	if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
		uri=$(awk '/^URIs:/ { for(i = 2; i <= NF; i++) if($i ~ /\/debian\/?$/) { print $i; exit } }' \
			/etc/apt/sources.list.d/*.sources)
	fi
	if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
		uri=$(awk '/^deb / { for(i = 2; i <= NF; i++) if($i ~ /\/debian\/?$/) { print $i; exit } }' /etc/apt/sources.list)
	fi
	[ -n "$uri" ] || fail "no Debian archive found in /etc/apt/sources.list{,.d}"
	echo "${uri%/}"
}

apt_opts() {
	echo -o "Dir::Etc::SourceList=$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o "Dir::State::Lists=$APT/lists" -o "Dir::Cache::archives=$APT/archives" \
		-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Sandbox::User=root ${ONB_APT_OPTS:-}
}

# One `apt-get update` of the private lists per run of this script, and only
# when something has to be fetched.
lists_ready=false
prepare_apt() {
	$lists_ready && return
	local uri; uri=$(archive_uri)
	mkdir -p "$APT/lists/partial" "$APT/archives/partial" "$APT/dl"
	cat > "$APT/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bookworm-backports main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri sid main
EOF
	# shellcheck disable=SC2046
	apt-get $(apt_opts) -qq update >"$APT/update.log" 2>&1 || { cat "$APT/update.log" >&2; fail "apt-get update of the private lists failed"; }
	lists_ready=true
}

# fetch_debs TARGET PACKAGE...: the backports .debs unpacked into TARGET.
fetch_debs() {
	local target=$1; shift
	prepare_apt
	rm -rf "$APT/dl" "$target.tmp"
	mkdir -p "$APT/dl" "$target.tmp"
	# shellcheck disable=SC2046
	(cd "$APT/dl" && apt-get $(apt_opts) -qq -t bookworm-backports download "$@" >"$APT/download.log" 2>&1) \
		|| { cat "$APT/download.log" >&2; fail "apt-get download $* from bookworm-backports failed"; }
	for deb in "$APT"/dl/*.deb; do dpkg -x "$deb" "$target.tmp"; done
	rm -rf "$target"
	mv "$target.tmp" "$target"
}

# sid's mosquitto source, the broker alone (no clients, apps, plugins or
# docs: the tests use Debian 12's clients and libmosquitto).
build_sid_broker() {
	local target=$1 src
	prepare_apt
	rm -rf "$APT/src" "$target.tmp"
	mkdir -p "$APT/src"
	# shellcheck disable=SC2046
	(cd "$APT/src" && apt-get $(apt_opts) -qq source --download-only mosquitto >"$APT/source.log" 2>&1) \
		|| { cat "$APT/source.log" >&2; fail "apt-get source mosquitto (sid) failed"; }
	mkdir -p "$target.tmp/src"
	tar -C "$target.tmp/src" --strip-components=1 -xzf "$(ls "$APT"/src/mosquitto_*.orig.tar.gz)" \
		|| fail "cannot unpack sid's mosquitto source"
	cmake -S "$target.tmp/src" -B "$target.tmp/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DWITH_DOCS=OFF -DWITH_TESTS=OFF -DWITH_APPS=OFF -DWITH_PLUGINS=OFF -DWITH_CLIENTS=OFF \
		-DWITH_CTRL_SHELL=OFF >"$target.tmp/configure.log" 2>&1 \
		|| { tail -n 30 "$target.tmp/configure.log" >&2; fail "cannot configure sid's mosquitto"; }
	cmake --build "$target.tmp/build" -j"$JOBS" --target mosquitto >"$target.tmp/build.log" 2>&1 \
		|| { tail -n 30 "$target.tmp/build.log" >&2; fail "cannot build sid's mosquitto"; }
	rm -rf "$target"
	mv "$target.tmp" "$target"
	# (the build tree's cache keeps the .tmp path; only the binary is used)
}

MOSQ_BP="$DIR/mosquitto-backports/usr/sbin/mosquitto"
MOSQ_SID="$DIR/mosquitto-sid/build/src/mosquitto"
VALKEY="$DIR/valkey-backports/usr/bin/valkey-server"

wanted() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
# (mosquitto -h exits non-zero; awk reads to the end so nothing gets SIGPIPE)
mosq_version() { { "$1" -h 2>/dev/null || true; } | awk '/^mosquitto version/ && !v { v = $3 } END { print v }'; }
# report NAME PATH VERSION
report() {
	[ -n "$3" ] || fail "$2 does not run (missing libraries? scripts/deps.sh installs them)"
	echo "$1 $2 $3"
}

if wanted mosquitto-backports; then
	[ -x "$MOSQ_BP" ] || fetch_debs "$DIR/mosquitto-backports" mosquitto
	report mosquitto-backports "$MOSQ_BP" "$(mosq_version "$MOSQ_BP")"
fi
if wanted mosquitto-sid; then
	[ -x "$MOSQ_SID" ] || build_sid_broker "$DIR/mosquitto-sid"
	report mosquitto-sid "$MOSQ_SID" "$(mosq_version "$MOSQ_SID")"
fi
if wanted valkey-backports; then
	[ -x "$VALKEY" ] || fetch_debs "$DIR/valkey-backports" valkey-server valkey-tools
	report valkey-backports "$VALKEY" "$("$VALKEY" --version 2>/dev/null | sed -nE 's/.* v=([0-9.]+).*/\1/p')"
fi

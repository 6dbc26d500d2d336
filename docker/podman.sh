#!/usr/bin/env bash
# Sourced by docker/test.sh and packaging/test.sh: rootful podman on a
# machine without a Docker engine or an image registry
# (../shared/notes/containers.md), with a project-local configuration and
# image store in $W, and the debian:bookworm-slim base image made there with
# debootstrap from the apt mirror, once (both tests share it).
# The caller defines W, BASE_IMAGE, say MSG, skip REASON (exit 77) and fatal MSG.
# (Run on its own it only defines these functions.)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	command -v apt-get >/dev/null || return 1
	say "installing ${missing[*]}"
	as_root apt-get update -qq >/dev/null 2>&1 || true
	DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" \
		> "$W/apt.log" 2>&1 || { tail -n 20 "$W/apt.log"; return 1; }
}

# The Debian mirror apt uses here (deb822 .sources first, then sources.list).
debian_mirror() {
	local m=""
	if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
		m=$(awk 'BEGIN { RS = ""; FS = "\n" }
			{ uri = ""; ok = 0; off = 0
			  for (i = 1; i <= NF; i++) {
				if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); uri = a[2] }
				if ($i ~ /^Suites:/ && $i ~ /[ \t]bookworm([ \t]|$)/) ok = 1
				if ($i ~ /^Enabled:[ \t]*no/) off = 1 }
			  if (ok && !off && uri != "") { print uri; exit } }' /etc/apt/sources.list.d/*.sources)
	fi
	if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
		m=$(awk '$1 == "deb" && / bookworm( |$)/ {
			for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }' /etc/apt/sources.list)
	fi
	echo "${m:-http://deb.debian.org/debian}"
}
security_mirror() {
	cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk 'BEGIN { RS = ""; FS = "\n" }
		{ uri = ""; ok = 0
		  for (i = 1; i <= NF; i++) {
			if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); uri = a[2] }
			if ($i ~ /^Suites:/ && $i ~ /bookworm-security/) ok = 1 }
		  if (ok && uri != "") { print uri; exit } }'
}

# podman_prepare [PACKAGE...]: podman installed (with PACKAGEs), configured
# for these machines, able to run a container, its containers able to reach
# the mirror; the base image made if missing. Runs as root.
podman_prepare() {
	# netavark + aardvark-dns: the services find each other by name (with the
	# CNI backend and no dnsname plugin they do not).
	apt_install podman runc debootstrap fuse-overlayfs slirp4netns uidmap \
		netavark aardvark-dns iptables "$@" \
		|| skip "podman could not be installed with apt-get"

	# Project-local configuration and store. The three settings that make
	# podman run on these machines (../shared/notes/containers.md):
	# RLIMIT_NOFILE and RLIMIT_NPROC within what this process may set, and
	# runc instead of crun (cgroups in hybrid mode); then netavark for DNS,
	# file logs and events (no journald/systemd here).
	local hn; hn=$(ulimit -Hn)
	[ "$hn" = unlimited ] && hn=1048576
	cat > "$W/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$hn:$hn", "nproc=32768:32768"]
log_driver = "k8s-file"
[engine]
runtime = "runc"
events_logger = "file"
[network]
network_backend = "netavark"
network_config_dir = "$W/networks"
EOF
	cat > "$W/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$W/storage"
runroot = "$W/run"
EOF
	export CONTAINERS_CONF=$W/containers.conf CONTAINERS_STORAGE_CONF=$W/storage.conf
	# HEALTHCHECK is kept only in Docker-format images.
	export BUILDAH_FORMAT=docker
	podman info >/dev/null 2>"$W/podman-info.err" \
		|| { cat "$W/podman-info.err"; skip "podman cannot start here (podman info failed)"; }

	if ! podman image exists "$BASE_IMAGE"; then
		local mirror sec rootfs=$W/rootfs
		mirror=$(debian_mirror); sec=$(security_mirror)
		say "base image $BASE_IMAGE: debootstrap --variant=minbase bookworm from $mirror"
		rm -rf "$rootfs"
		debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > "$W/debootstrap.log" 2>&1 \
			|| { tail -n 20 "$W/debootstrap.log"; fatal "debootstrap of the base image"; }
		rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs/etc/apt/sources.list"
		{
			printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\n' "$mirror"
			printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
			if [ -n "$sec" ]; then
				printf '\nTypes: deb\nURIs: %s\nSuites: bookworm-security\nComponents: main\n' "$sec"
				printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
			fi
		} > "$rootfs/etc/apt/sources.list.d/debian.sources"
		tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null \
			|| fatal "podman import of the base image"
		rm -rf "$rootfs"
	fi
	# Can podman run a container at all?
	podman run --rm --network none "$BASE_IMAGE" true 2>"$W/probe.err" \
		|| { cat "$W/probe.err"; skip "podman cannot run a container here"; }
	# A bridge left over from the CNI backend on podman's subnet breaks the
	# containers' traffic (measured): say so instead of hanging in apt-get.
	if ip -4 route 2>/dev/null | grep -E '^10\.88\.0\.0/16 ' | grep -v 'dev podman0' >/dev/null; then
		say "warning: another interface holds 10.88.0.0/16 (podman's default network):"
		ip -4 route | grep -E '^10\.88\.0\.0/16 ' | sed 's/^/#   /'
	fi
	local host; host=$(sed -E 's#^[a-z]+://([^/:]+).*#\1#' <<<"$(debian_mirror)")
	timeout 30 podman run --rm "$BASE_IMAGE" getent hosts "$host" >/dev/null 2>&1 \
		|| fatal "a container on podman's default network cannot resolve $host (the builds need the mirror)"
}

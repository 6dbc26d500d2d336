#!/usr/bin/env bash
# man.sh HELP2MAN VERSION OUTDIR ONBOARDCTL CLAIMSVC: onboardctl.1.gz and
# claimsvc.8.gz from the programs' own --help (called by the build). The
# onboardctl page also holds every domain's --help, so that `man onboardctl`
# is the whole reference; the domains are read from `onboardctl --help`.
set -euo pipefail
help2man=$1 version=$2 out=$3 onboardctl=$4 claimsvc=$5
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# roff: backslashes printed as such, and no line taken for a request
roff() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }

domains=$("$onboardctl" --help | awk '/^domains:/ { on = 1; next } on && /^  [a-z]+ / { print $1 } on && /^$/ { exit }')
[ -n "$domains" ] || { echo "man.sh: no domains in 'onboardctl --help'" >&2; exit 1; }
{
	echo "[DOMAINS]"
	for d in $domains; do
		printf '.SS %s\n.nf\n' "$d"
		"$onboardctl" "$d" --help | roff
		printf '.fi\n'
	done
	cat <<'H2M'
[ENVIRONMENT]
.TP
.B ONBOARD_REDIS_URL
the registry, when --redis is not given
.TP
.B ONBOARD_AUDIT_RETENTION_DAYS
days the audit stream keeps (default 30)
[FILES]
/usr/share/mosquitto-onboard/policies: the shipped policies, loaded by
.BR "onboardctl policy init" .
[SEE ALSO]
.BR claimsvc (8),
.BR mosquitto (8),
/usr/share/doc/mosquitto-onboard/docs/install.md
H2M
} > "$tmp/onboardctl.h2m"
cat > "$tmp/claimsvc.h2m" <<'H2M'
[FILES]
/etc/mosquitto-onboard/claimsvc.conf: the configuration (every key, commented).
.br
/etc/mosquitto-onboard/templates: provisioning templates.
.br
claimsvc.service runs it as the claimsvc user.
[SEE ALSO]
.BR onboardctl (1),
/usr/share/doc/mosquitto-onboard/docs/provisioning.md
H2M

# help2man finds the synopsis under "Usage:" and "or:", the programs print
# "usage:" and indent further forms: it reads their --help through a wrapper
# of the same name that says it its way.
wrap() {
	mkdir -p "$tmp/bin"
	printf '#!/bin/sh\n"%s" "$@" | sed -e "1s/^usage:/Usage:/" -e "2,/^\$/s/^[[:space:]]\\{1,\\}/  or: /"\n' "$1" > "$tmp/bin/${1##*/}"
	chmod +x "$tmp/bin/${1##*/}"
	echo "$tmp/bin/${1##*/}"
}
onboardctl=$(wrap "$onboardctl")
claimsvc=$(wrap "$claimsvc")
# help2man calls --version unless given the string; the programs print no version.
"$help2man" -N -s 1 -S mosquitto-onboard -m "mosquitto-onboard" --version-string="$version" \
	-n "administer mosquitto-onboard: devices, policies, claim codes, audit, PKI, CRL" \
	--include "$tmp/onboardctl.h2m" -o "$tmp/onboardctl.1" "$onboardctl"
"$help2man" -N -s 8 -S mosquitto-onboard -m "mosquitto-onboard" --version-string="$version" \
	-n "mosquitto-onboard claim service: fleet provisioning by claim" \
	--include "$tmp/claimsvc.h2m" -o "$tmp/claimsvc.8" "$claimsvc"
# -n: no name or time stamp, so that the same sources give the same package
gzip -9n -c "$tmp/onboardctl.1" > "$out/onboardctl.1.gz"
gzip -9n -c "$tmp/claimsvc.8" > "$out/claimsvc.8.gz"

#!/usr/bin/env bash
# in-root.sh DEB: runs as root inside a clean Debian 12 root that holds the
# package's Depends (packaging/test.sh starts it in a container without
# network). Installs DEB with apt, follows docs/install.md ("After install")
# with systemd's part done by hand from the installed unit files (no systemd
# runs here), judges device connects through the installed plugin, purges
# the package and compares the root with what it was before the install.
# Prints "ok - " / "not ok - " lines and ends with "N passed, N failed".
# shellcheck disable=SC2317  # functions run through check/wait_for
set -uo pipefail
DEB=${1:?usage: in-root.sh DEB}
PASSES=0
FAILS=0
PIDS=()
S=/tmp/onb-pkg       # the test's own files: /tmp is not compared
CONF=/etc/mosquitto-onboard
PKI=$CONF/pki
UNITDIR=/lib/systemd/system
mkdir -p "$S"

say() { printf '# %s\n' "$*"; }
ok() { PASSES=$((PASSES + 1)); echo "ok - $*"; }
not_ok() { FAILS=$((FAILS + 1)); echo "not ok - $*"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
refute() { local d=$1; shift; if "$@"; then not_ok "$d"; else ok "$d"; fi; }
finish() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "$PASSES passed, $FAILS failed"
	[ "$FAILS" -eq 0 ]
	exit
}
# require DESCRIPTION CMD...: as check, but the rest is meaningless without it.
require() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; exit 1; fi; }
trap finish EXIT
# shows FILE's tail when PATTERN is not in it
found() { grep -q -- "$1" "$2" || { tail -n 15 "$2" | sed 's/^/#   /'; return 1; }; }
wait_for() {
	local deadline=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# Everything a package could leave in the root. Left out: what apt and dpkg
# keep about every package (their own state, caches and logs) and what is
# not on disk (/proc, /sys, /dev, /run, /tmp) or is this test (/onb).
snapshot() {
	find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp -o -path /onb \
		-o -path /var/cache/apt -o -path /var/lib/apt -o -path /var/log/apt -o -path /var/cache/debconf \
		-o -path /var/lib/dpkg/info -o -path /var/lib/dpkg/updates -o -path /var/lib/dpkg/triggers \) -prune \
		-o -print | grep -v -x -e /var/log/dpkg.log -e '/var/lib/dpkg/[a-z]*-old' -e /etc/ld.so.cache \
		-e /var/cache/ldconfig/aux-cache | sort
}
accounts() { cat /etc/passwd /etc/group /etc/shadow /etc/gshadow; }

# unit_values UNIT KEY: the values of KEY= in an installed unit, one a line
# (continued lines joined)
unit_values() {
	sed -e ':a' -e '/\\$/N; s/\\\n[[:space:]]*/ /; ta' "$UNITDIR/$1" | sed -n "s/^$2=//p"
}

# start_unit UNIT LOG: what systemd does to start UNIT's main process, done by
# hand from the installed unit: its directories and credentials made,
# ExecStartPre= run, ExecStart= started in the background (UNIT_PID is that
# process), each as its User=/Group=, with its EnvironmentFile= and UMask=.
# Fails if a step does.
start_unit() {
	local u=$1 log=$2 d c mode line
	U_NAME=$1; U_USER=$(unit_values "$u" User); U_GROUP=$(unit_values "$u" Group)
	U_CRED=/run/credentials/$u
	for d in $(unit_values "$u" StateDirectory); do
		mode=$(unit_values "$u" StateDirectoryMode)
		install -d -o "$U_USER" -g "$U_GROUP" -m "${mode:-0755}" "/var/lib/$d"
	done
	for d in $(unit_values "$u" LogsDirectory); do
		mode=$(unit_values "$u" LogsDirectoryMode)
		install -d -o "$U_USER" -g "$U_GROUP" -m "${mode:-0755}" "/var/log/$d"
	done
	for d in $(unit_values "$u" RuntimeDirectory); do install -d -o "$U_USER" -g "$U_GROUP" -m 0755 "/run/$d"; done
	for c in $(unit_values "$u" LoadCredential); do
		install -D -o "$U_USER" -m 0400 "${c#*:}" "$U_CRED/${c%%:*}" || return 1
	done
	while read -r line; do
		[ -n "$line" ] || continue
		( unit_exec "$line" ) >> "$log" 2>&1 || { say "$u: ExecStartPre failed: $line"; return 1; }
	done <<<"$(unit_values "$u" ExecStartPre)"
	( unit_exec "$(unit_values "$u" ExecStart)" ) >> "$log" 2>&1 &
	UNIT_PID=$!
	PIDS+=("$UNIT_PID")
}
# unit_exec LINE: becomes the command of an Exec line of unit U_NAME
unit_exec() {
	local -a argv
	local f m
	read -r -a argv <<<"${1//%d/$U_CRED}"
	argv[0]=${argv[0]#[-+@!:]}
	# shellcheck source=/dev/null
	for f in $(unit_values "$U_NAME" EnvironmentFile); do set -a; . "${f#-}"; set +a; done
	m=$(unit_values "$U_NAME" UMask); umask "${m:-0022}"
	exec setpriv --reuid="$U_USER" --regid="$U_GROUP" --init-groups -- "${argv[@]}"
}

# what `systemctl enable UNIT` makes: a link in each WantedBy= target's .wants
enable_unit() {
	local t
	for t in $(unit_values "$1" WantedBy); do
		mkdir -p "/etc/systemd/system/$t.wants"
		ln -sf "$UNITDIR/$1" "/etc/systemd/system/$t.wants/$1"
	done
}

# ---------------------------------------------------------------- install

snapshot > "$S/before.files"
accounts > "$S/before.accounts"
say "the root holds $(wc -l < "$S/before.files") paths before the install"

DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$DEB" > "$S/install.log" 2>&1
require "apt-get install ./$(basename "$DEB") (Depends resolve, maintainer scripts succeed)" \
	found "Setting up mosquitto-onboard" "$S/install.log"
check "  ... dpkg has it installed" \
	test "$(dpkg-query -W -f='${Status}' mosquitto-onboard 2>/dev/null)" = "install ok installed"

pw=$(getent passwd claimsvc)
check "postinst made the service user claimsvc" test -n "$pw"
IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
check "  ... a system user (uid $uid) without a login shell or home" \
	test "${uid:-1000}" -lt 1000 -a "$shell" = /usr/sbin/nologin -a ! -e "$home"
check "  ... with its own group" test "$(getent group claimsvc | cut -d: -f3)" = "$gid"
has_user() { getent passwd "$1" > /dev/null; }
check "the broker's user comes from Debian's mosquitto" has_user mosquitto

PLUGIN=$(dpkg -L mosquitto-onboard | grep '/mosquitto_onboard\.so$')
check "the plugin under /usr/lib/<multiarch>/mosquitto-onboard/ ($PLUGIN)" \
	bash -c "[[ '$PLUGIN' =~ ^/usr/lib/[a-z0-9_]+-linux-gnu[a-z0-9_]*/mosquitto-onboard/mosquitto_onboard\.so$ ]]"
check "onboardctl in /usr/bin, claimsvc in /usr/sbin" test -x /usr/bin/onboardctl -a -x /usr/sbin/claimsvc
check "the shipped policies in /usr/share/mosquitto-onboard/policies" \
	test -s /usr/share/mosquitto-onboard/policies/device.json
check "the provisioning templates in $CONF/templates" test -s "$CONF/templates/default.json"
man_ok() { zcat /usr/share/man/man1/onboardctl.1.gz | grep -q '^\.SS allowlist' \
	&& zcat /usr/share/man/man8/claimsvc.8.gz | grep -q '^\.TH CLAIMSVC "8"'; }
check "man pages onboardctl(1) (every domain) and claimsvc(8)" man_ok
check "docs in /usr/share/doc/mosquitto-onboard" test -s /usr/share/doc/mosquitto-onboard/docs/install.md \
	-a -s /usr/share/doc/mosquitto-onboard/copyright
conffiles=$(dpkg-query -W -f='${Conffiles}\n' mosquitto-onboard | awk 'NF { print $1 }' | sort | paste -sd ' ')
check "conffiles: every file under /etc ($conffiles)" test "$conffiles" = \
	"$CONF/claimsvc.conf $CONF/mosquitto.conf $CONF/onboardctl.env $CONF/templates/default.json"
# postinst runs again on every upgrade: it must find its user and leave it
DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall --no-install-recommends "$DEB" > "$S/reinstall.log" 2>&1
check "reinstalling (postinst again, the user already there) succeeds" test $? -eq 0
check "  ... and leaves the same claimsvc user" test "$(getent passwd claimsvc)" = "$pw"
owner_mode() { test "$(stat -c '%U:%G %a' "$2")" = "$1"; }
check "mosquitto.conf is root:mosquitto 0640" owner_mode "root:mosquitto 640" "$CONF/mosquitto.conf"
check "claimsvc.conf is root:claimsvc 0640" owner_mode "root:claimsvc 640" "$CONF/claimsvc.conf"
check "onboardctl.env is root:root 0600" owner_mode "root:root 600" "$CONF/onboardctl.env"

# Every library is there in a root that has only the Depends (and the test's
# tools); that each comes from a package in Depends is checked on the host.
bins=(/usr/bin/onboardctl /usr/sbin/claimsvc "$PLUGIN")
check "no library is missing (ldd)" bash -c "! ldd ${bins[*]} | grep -q 'not found'"

# The units name what the package installed.
units=$(dpkg -L mosquitto-onboard | sed -n "s#^$UNITDIR/##p" | sort | paste -sd ' ')
check "units in $UNITDIR: $units" test "$units" = \
	"claimsvc.service mosquitto-onboard.service onboard-audit.service onboard-crl.service onboard-crl.timer"
missing=""
for u in $units; do
	while read -r line; do
		[ -n "$line" ] || continue
		bin=${line%% *}; bin=${bin#[-+@!:]}
		# systemctl (ExecStartPost=) and kill (ExecReload=) are on every
		# host that runs systemd; this root runs none
		case $bin in /bin/systemctl|/bin/kill) continue ;; esac
		[ -x "$bin" ] || missing+=" $u:$bin"
	done <<<"$(unit_values "$u" 'Exec[A-Za-z]*')"
	for f in $(unit_values "$u" EnvironmentFile); do [ -e "${f#-}" ] || missing+=" $u:$f"; done
	for usr in $(unit_values "$u" User); do getent passwd "$usr" >/dev/null || missing+=" $u:User=$usr"; done
done
check "every program, environment file and user the units name exists${missing:+:$missing}" test -z "$missing"
plugin_line=$(sed -n 's/^plugin //p' "$CONF/mosquitto.conf")
check "mosquitto.conf loads the installed plugin ($plugin_line)" test "$plugin_line" = "$PLUGIN"

# ---------------------------------------------------------------- docs/install.md, "After install"

# 1. stands in for redis-server.service (on /tmp: not part of the comparison)
redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
	--dir "$S" --logfile "$S/redis.log" --pidfile "$S/redis.pid" > /dev/null
require "redis-server answers on 127.0.0.1:6379" wait_for 10 redis-cli -p 6379 ping

# 2.
onboardctl pki init "$PKI" > "$S/pki.out" 2>&1
require "onboardctl pki init $PKI" found "created $PKI/device-ca.key" "$S/pki.out"
chgrp mosquitto "$PKI/server.key" && chmod 0640 "$PKI/server.key"

# 3.
onboardctl policy init > "$S/policy.out" 2>&1
check "onboardctl policy init loads the installed policies (no directory given)" \
	found "policy device stored" "$S/policy.out"

# 4.
enable_unit mosquitto-onboard.service
BROKER_LOG=$S/broker.log
start_unit mosquitto-onboard.service "$BROKER_LOG"
BROKER_PID=$UNIT_PID
require "the broker starts as mosquitto-onboard.service runs it (User=mosquitto)" \
	wait_for 15 grep -q "mosquitto version .* running" "$BROKER_LOG"
check "  ... as user mosquitto" test "$(stat -c %U "/proc/$BROKER_PID")" = mosquitto
check "  ... with the plugin loaded from $PLUGIN" found "onboard: loaded" "$BROKER_LOG"

# a registered device is admitted, one of the same CA that is not is refused
onboardctl pki issue --ca "$PKI/device-ca" --cn dev-1 --out "$S/dev-1" > /dev/null 2>&1
onboardctl pki issue --ca "$PKI/device-ca" --cn dev-2 --out "$S/dev-2" > /dev/null 2>&1
onboardctl device register --id dev-1 --cert "$S/dev-1.pem" > "$S/register.out" 2>&1
check "onboardctl device register dev-1 (installed onboardctl, Redis)" test $? -eq 0
pub() {   # DEVICE: a QoS 1 publish to its own telemetry topic; output in $S/pub-DEVICE.out
	timeout 10 mosquitto_pub -h 127.0.0.1 -p 8883 --cafile "$PKI/ca-bundle.pem" --cert "$S/$1.pem" \
		--key "$S/$1.key" -i "$1" -V 5 -q 1 -t "devices/$1/telemetry" -m '{"t":21}' -d > "$S/pub-$1.out" 2>&1
}
puback_ok() {
	local rc; rc=$(sed -n 's/.*received PUBACK (Mid: [0-9]*, RC:\([0-9]*\)).*/\1/p' "$1" | sed -n 1p)
	[ -n "$rc" ] && [ "$rc" -lt 128 ]
}
# The plugin admits nobody until its event feed has read the stream once,
# just after the start: a device retries, as devices do.
pub_ok() { pub "$1" && puback_ok "$S/pub-$1.out"; }
check "the registered device publishes (PUBACK)" wait_for 10 pub_ok dev-1
check "  ... the plugin admitted it" found "onboard: connect allow device=dev-1" "$BROKER_LOG"
pub dev-2
check "a device of the same CA that is not registered is refused" grep -qi "not authori" "$S/pub-dev-2.out"
check "  ... by the plugin, which says why" found "onboard: connect deny .*client=dev-2 .*reason=not-registered" "$BROKER_LOG"

# 5.
install -d -m 0750 -g claimsvc "$CONF/claimsvc"
onboardctl pki issue --ca "$PKI/service-ca" --cn claimsvc-1 --out "$CONF/claimsvc/claimsvc-1" > /dev/null 2>&1
chgrp claimsvc "$CONF/claimsvc/claimsvc-1.key" && chmod 0640 "$CONF/claimsvc/claimsvc-1.key"
enable_unit claimsvc.service
CSVC_LOG=$S/claimsvc.log
start_unit claimsvc.service "$CSVC_LOG"
check "claimsvc --check passes on the installed claimsvc.conf (ExecStartPre=, as claimsvc)" test $? -eq 0
check "claimsvc starts as its unit runs it (User=claimsvc, the CA key from LoadCredential=) and serves" \
	wait_for 15 grep -q "serving" "$CSVC_LOG"
check "  ... the broker admitted it as a service identity" \
	wait_for 5 grep -q "onboard: connect allow .*client=claimsvc-1 class=service" "$BROKER_LOG"
# http_listen 127.0.0.1:9884 in the installed claimsvc.conf; no HTTP client in
# this root: bash's /dev/tcp, the status line only
healthz_ok() (
	exec 3<>/dev/tcp/127.0.0.1/9884 || exit 1
	printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3
	IFS=' ' read -r _ status _ <&3 && [ "$status" = 200 ]
)
check "  ... and its GET /healthz answers 200 (ready: Redis and the broker reached)" wait_for 10 healthz_ok

# 6. (the CRL export needs the manufacturer's published CRL: not here)
enable_unit onboard-audit.service
AUDIT_LOG=$S/audit.log
start_unit onboard-audit.service "$AUDIT_LOG"
check "onboard-audit.service's onboardctl (User=claimsvc, the Redis URL from onboardctl.env) follows the audit trail" \
	wait_for 10 grep -q '"device":"dev-1"' "$AUDIT_LOG"

[ "$FAILS" -eq 0 ] || { say "broker log:"; tail -n 20 "$BROKER_LOG" | sed 's/^/#   /'; say "claimsvc log:"; tail -n 10 "$CSVC_LOG" | sed 's/^/#   /'
	say "audit log:"; tail -n 5 "$AUDIT_LOG" | sed 's/^/#   /'; }
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
PIDS=()
redis-cli -p 6379 shutdown nosave > /dev/null 2>&1 || true

# ---------------------------------------------------------------- purge

DEBIAN_FRONTEND=noninteractive apt-get purge -y mosquitto-onboard > "$S/purge.log" 2>&1
require "apt-get purge mosquitto-onboard" test $? -eq 0
check "  ... dpkg forgot it" bash -c "! dpkg-query -W -f='\${Status}' mosquitto-onboard 2>/dev/null | grep -q ."
refute "  ... the claimsvc user and group are gone" bash -c "getent passwd claimsvc || getent group claimsvc" > /dev/null
refute "  ... the units' state and log directories are gone" \
	bash -c "ls -d /var/lib/mosquitto-onboard /var/log/mosquitto-onboard /var/lib/onboard-crl 2>/dev/null | grep -q ."
refute "  ... the links 'systemctl enable' made are gone" \
	bash -c "ls /etc/systemd/system/*.wants/ 2>/dev/null | grep -qE 'mosquitto-onboard|claimsvc'"
kept=$(cd "$CONF" 2>/dev/null && find . -mindepth 1 -maxdepth 1 | sort | paste -sd ' ')
check "  ... $CONF holds only the operator's own files, kept (${kept:-nothing})" test "$kept" = "./claimsvc ./pki"
check "  ... the CA keys among them" test -s "$PKI/device-ca.key"
check "  ... and the purge said so" found "kept /etc/mosquitto-onboard" "$S/purge.log"

rm -rf "$CONF"   # docs/install.md, "Removing"
snapshot > "$S/after.files"
accounts > "$S/after.accounts"
diff "$S/before.files" "$S/after.files" > "$S/files.diff"
check "the root's files are those before the install ($(wc -l < "$S/after.files") paths)" \
	bash -c "! grep -q . '$S/files.diff' || { sed 's/^/#   /' '$S/files.diff' | head -n 30; false; }"
check "  ... and /etc/passwd, group, shadow, gshadow are as before" cmp -s "$S/before.accounts" "$S/after.accounts"

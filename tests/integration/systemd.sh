# config/systemd/: the units load (`systemd-analyze verify`, offline: no
# systemd needs to run here) and keep their hardening (`systemd-analyze
# security --offline`). Skips, saying why, when systemd-analyze is missing.
source "$(dirname "$0")/harness.sh"

UNITS="$ONB_SOURCE_DIR/config/systemd"
if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "# skipped: systemd-analyze is not installed (Debian package systemd)"
	exit 0
fi

# verify checks that every Exec binary exists: point the installed paths
# (the Debian package's, docs/install.md) at the build.
mkdir -p "$T/units" "$T/bin"
ln -s "$ONB_BUILD_DIR/claimsvc/claimsvc" "$T/bin/claimsvc"
ln -s "$ONB_BUILD_DIR/cli/onboardctl" "$T/bin/onboardctl"
for f in "$UNITS"/*.service "$UNITS"/*.timer; do
	sed -e "s#/usr/sbin/claimsvc#$T/bin/claimsvc#g" -e "s#/usr/bin/onboardctl#$T/bin/onboardctl#g" \
		"$f" > "$T/units/$(basename "$f")"
done
cd "$T/units"
check "systemd-analyze verify: no error, no warning" \
	bash -c "systemd-analyze verify --man=no *.service *.timer > '$T/verify.out' 2>&1 && ! grep -v 'Failed to read \$container\|Found container' '$T/verify.out' | grep -q ."
grep -v 'Failed to read $container\|Found container' "$T/verify.out" || true

for u in mosquitto-onboard claimsvc onboard-crl onboard-audit; do
	systemd-analyze security --offline=yes --no-pager "$u.service" > "$T/$u.sec" 2>&1 || true
	score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$T/$u.sec")
	echo "# $u.service: systemd-analyze security exposure ${score:-?} (0 best, 10 worst)"
	check "$u.service: exposure at most 2.0" \
		python3 -c "import sys; sys.exit(0 if '$score' and float('$score') <= 2.0 else 1)"
done

for u in mosquitto-onboard claimsvc onboard-crl onboard-audit; do
	f="$UNITS/$u.service"
	for line in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes \
			ProtectKernelTunables=yes ProtectKernelModules=yes 'CapabilityBoundingSet=' \
			'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX'; do
		check "$u.service has $line" grep -qx "$line" "$f"
	done
	check "$u.service runs as an unprivileged user" bash -c "grep -q '^User=' '$f' && ! grep -q '^User=root' '$f'"
done
check "the CA key reaches claimsvc only through LoadCredential" \
	grep -q '^LoadCredential=device-ca.key:' "$UNITS/claimsvc.service"
refute "mosquitto-onboard.service never names the device CA key" \
	grep -q 'device-ca\.key' "$UNITS/mosquitto-onboard.service"

# The verify check is not vacuous: a unit with an unknown key fails it.
mkdir -p "$T/bad"
sed 's/^NoNewPrivileges=yes/NoNewPrivilege=yes/' "$T/units/claimsvc.service" > "$T/bad/claimsvc.service"
check "a misspelt hardening option is reported by verify" \
	bash -c "cd '$T/bad' && systemd-analyze verify --man=no claimsvc.service 2>&1 | grep -q "Unknown key 'NoNewPrivilege'""

finish

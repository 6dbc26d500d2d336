# CRL: `onboardctl crl export` for Mosquitto's crlfile. A revoked device is
# refused at the TLS layer, before the plugin or Redis is asked, even once
# the registry has forgotten it; every other identity still connects.
source "$(dirname "$0")/harness.sh"

CRL="$T/crl.pem"
BROKER_CRLFILE=""
# TLS 1.2 allowed (the shipped default is 1.3 only): tls_refused reads the
# CRL's alert with openssl s_client over TLS 1.2, inside the handshake.
BROKER_TLS_VERSION=tlsv1.2
# The harness's broker configuration, plus a crlfile when BROKER_CRLFILE is set
# (TLS options belong to the listener above them: the end of the file is fine).
eval "harness_write_broker_conf() $(declare -f write_broker_conf | tail -n +2)"
write_broker_conf() {
	harness_write_broker_conf
	[ -z "$BROKER_CRLFILE" ] || echo "crlfile $BROKER_CRLFILE" >> "$T/mosquitto.conf"
}
restart_broker() {
	stop_broker
	mv "$T/mosquitto.log" "$T/mosquitto.log.$(date +%s%N)"
	start_broker
}

up
new_device dev-1; register dev-1 active
new_device dev-2; register dev-2 active
new_device claim-1 claim-ca
new_device claimsvc-1 service-ca
new_device birth-1 manufacturer-ca

# connects AS ID: the TLS handshake and CONNECT succeed (CONNACK 0).
connects() {
	# shellcheck disable=SC2046
	timeout 10 mosquitto_pub $(tls_args "$1") -i "$2" -V 5 -q 0 -t "devices/$2/telemetry" -m x -d \
		> "$T/conn.out" 2>&1
	grep -q "received CONNACK (0)" "$T/conn.out"
}
# tls_refused AS ID WHY: the broker ends the TLS handshake with alert WHY
# and no CONNECT of ID reaches the plugin. (mosquitto_pub often reports only
# "Protocol error": under TLS 1.3 the alert may arrive after it has sent its
# CONNECT. openssl s_client over TLS 1.2 receives it inside the handshake.)
tls_refused() {
	local before after
	before=$(grep -c "onboard: connect .* client=$2 " "$T/mosquitto.log" || true)
	# shellcheck disable=SC2046
	timeout 10 mosquitto_pub $(tls_args "$1") -i "$2" -V 5 -q 0 -t "devices/$2/telemetry" -m x -d \
		> "$T/conn.out" 2>&1 && return 1
	grep -q "CONNACK" "$T/conn.out" && return 1
	timeout 10 openssl s_client -connect "127.0.0.1:$MQTT_PORT" -tls1_2 -CAfile "$PKI/ca-bundle.pem" \
		-cert "$T/$1.pem" -key "$T/$1.key" < /dev/null > "$T/sclient.out" 2>&1
	grep -q "alert $3" "$T/sclient.out" || return 1
	after=$(grep -c "onboard: connect .* client=$2 " "$T/mosquitto.log" || true)
	[ "$before" = "$after" ]
}

check "before: dev-1 connects" connects dev-1 dev-1
"$ONBOARDCTL" device revoke dev-1 --reason "stolen" >/dev/null
check "the registry refuses revoked dev-1 (plugin layer)" refused dev-1 dev-1 devices/dev-1/telemetry

# --- the export ---
check "crl export (device CA only)" "$ONBOARDCTL" crl export --ca "$PKI/device-ca" --out "$T/device-only.pem"
serial1=$(openssl x509 -in "$T/dev-1.pem" -noout -serial | cut -d= -f2)
serial2=$(openssl x509 -in "$T/dev-2.pem" -noout -serial | cut -d= -f2)
openssl crl -in "$T/device-only.pem" -noout -text > "$T/crl.txt"
check "the CRL is v2, signed by the device CA" \
	bash -c "grep -q 'Version 2' '$T/crl.txt' && grep -q 'Issuer:.*device CA' '$T/crl.txt' &&
		openssl crl -in '$T/device-only.pem' -noout -CAfile '$PKI/ca-bundle.pem' 2>&1 | grep -q 'verify OK'"
check "the CRL lists dev-1's serial with reason keyCompromise" \
	bash -c "grep -A4 'Serial Number: $serial1' '$T/crl.txt' | grep -q 'Key Compromise'"
check "the CRL does not list dev-2" bash -c "! grep -q 'Serial Number: $serial2' '$T/crl.txt'"
check "the CRL has a number, an AKID and a next update" \
	bash -c "grep -q 'CRL Number' '$T/crl.txt' && grep -q 'Authority Key Identifier' '$T/crl.txt' &&
		grep -q 'Next Update' '$T/crl.txt'"
nu=$(openssl crl -in "$T/device-only.pem" -noout -nextupdate | cut -d= -f2)
lu=$(openssl crl -in "$T/device-only.pem" -noout -lastupdate | cut -d= -f2)
check "next update is 7 days after last update by default" \
	test $(( $(date -d "$nu" +%s) - $(date -d "$lu" +%s) )) -eq $((7 * 86400))
check "the CRL file is world-readable (0644)" test "$(stat -c %a "$T/device-only.pem")" = 644
check "the export is audited" audit_has "crl-export" "1 revoked serial"

# --- Finding: Mosquitto sets X509_V_FLAG_CRL_CHECK, so the issuer of every
# client certificate needs a CRL in crlfile, or its certificates are refused.
BROKER_CRLFILE="$T/device-only.pem"
restart_broker
check "device-CA CRL only: dev-2 connects" connects dev-2 dev-2
check "device-CA CRL only: dev-1 refused as revoked at the TLS layer" tls_refused dev-1 dev-1 "certificate revoked"
check "device-CA CRL only: a claim certificate is refused (its CA has no CRL)" \
	tls_refused claim-1 claim-1 "unknown ca"

# --- The full export: a CRL for each CA that issues client certificates.
check "crl export with --also-ca for the other issuing CAs" \
	"$ONBOARDCTL" crl export --ca "$PKI/device-ca" --out "$CRL" \
		--also-ca "$PKI/claim-ca" --also-ca "$PKI/manufacturer-ca" --also-ca "$PKI/service-ca"
check "four CRLs in the file" test "$(grep -c 'BEGIN X509 CRL' "$CRL")" -eq 4

# "Redis says nothing": dev-1's record and its certificate binding are gone.
fp1=$("$ONBOARDCTL" pki fingerprint "$T/dev-1.pem")
rcli DEL "onb:dev:{dev-1}" "onb:fp:$fp1" >/dev/null
check "dev-1 is gone from the registry" bash -c "! '$ONBOARDCTL' device show dev-1 >/dev/null 2>&1"
BROKER_CRLFILE="$CRL"
restart_broker
check "with the CRL: dev-1 refused at the TLS layer (certificate revoked)" \
	tls_refused dev-1 dev-1 "certificate revoked"
check "the broker logs the OpenSSL verify failure" \
	grep -q "OpenSSL Error.*certificate verify failed" "$T/mosquitto.log"
check "with the CRL: dev-2 connects" connects dev-2 dev-2
check "with the CRL: a claim certificate connects" connects claim-1 claim-1
check "with the CRL: a birth certificate connects" connects birth-1 birth-1
check "with the CRL: a service certificate connects" connects claimsvc-1 claimsvc-1

# The serial outlives the device record: a re-export still lists it.
prev=$(openssl crl -in "$CRL" -noout -crlnumber | sed -n 1p | cut -d= -f2)
"$ONBOARDCTL" device revoke dev-2 --reason "lost" >/dev/null
check "re-export" "$ONBOARDCTL" crl export --ca "$PKI/device-ca" --out "$CRL" --days 2 \
	--also-ca "$PKI/claim-ca" --also-ca "$PKI/manufacturer-ca" --also-ca "$PKI/service-ca"
openssl crl -in "$CRL" -noout -text > "$T/crl2.txt"
check "dev-1's serial is still listed after its record was deleted" grep -q "Serial Number: $serial1" "$T/crl2.txt"
check "dev-2's serial is listed now" grep -q "Serial Number: $serial2" "$T/crl2.txt"
next=$(openssl crl -in "$CRL" -noout -crlnumber | sed -n 1p | cut -d= -f2)
check "the CRL number grew ($prev -> $next)" \
	python3 -c "import sys; sys.exit(0 if int('$next', 16) > int('$prev', 16) else 1)"

# SIGHUP makes Mosquitto read crlfile again (no restart).
kill -HUP "$BROKER_PID"
wait_for 5 grep -q "Reloading config" "$T/mosquitto.log"
sleep 0.3
check "after SIGHUP: dev-2 refused at the TLS layer" tls_refused dev-2 dev-2 "certificate revoked"
check "after SIGHUP: the claim certificate still connects" connects claim-1 claim-1

# Refusals of the command itself.
check "an existing non-CRL output file is not replaced" bash -c "
	echo keep > '$T/not-a-crl'
	! '$ONBOARDCTL' crl export --ca '$PKI/device-ca' --out '$T/not-a-crl' 2>/dev/null && grep -q keep '$T/not-a-crl'"
check "a CA key that does not match is refused" bash -c "
	cp '$PKI/device-ca.pem' '$T/mix.pem'; cp '$PKI/claim-ca.key' '$T/mix.key'
	! '$ONBOARDCTL' crl export --ca '$T/mix' --out '$T/x.pem' 2>'$T/err' && grep -q 'does not match' '$T/err'"
check "--days out of range is a usage error" bash -c "
	'$ONBOARDCTL' crl export --ca '$PKI/device-ca' --out '$T/x.pem' --days 0 2>/dev/null; [ \$? -eq 2 ]"
# A CA whose key is not ours (a manufacturer's) publishes its own CRL.
"$ONBOARDCTL" crl export --ca "$PKI/manufacturer-ca" --out "$T/mfr.pem" >/dev/null
check "--include copies a foreign CRL file" bash -c "
	'$ONBOARDCTL' crl export --ca '$PKI/device-ca' --out '$T/inc.pem' --include '$T/mfr.pem' >/dev/null &&
	[ \$(grep -c 'BEGIN X509 CRL' '$T/inc.pem') -eq 2 ] && grep -qF \"\$(sed -n 2p '$T/mfr.pem')\" '$T/inc.pem'"
check "two CRLs of one CA are refused" bash -c "
	! '$ONBOARDCTL' crl export --ca '$PKI/device-ca' --out '$T/inc.pem' --include '$T/device-only.pem' 2>'$T/err' &&
	grep -q 'two CRLs from' '$T/err'"

finish

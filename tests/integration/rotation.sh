# Certificate rotation end to end: a device renews its operational
# certificate over MQTT on its own topic, answered only to it; old and new
# certificates both work during the grace period; the first connect with the
# new one (or the end of the grace period) retires the old one, also on a live
# session; `onboardctl device rotate` forces it; `device list --expiring`.
source "$(dirname "$0")/harness.sh"
up
CLAIMSVC_EXTRA="rotation_grace 3600" start_claimsvc claimsvc-1

RENEW='certificates/renew'
printf 'serial\nR0001\nR0002\nR0003\nR0004\n' > "$T/allow.csv"
"$ONBOARDCTL" allowlist import "$T/allow.csv" >/dev/null
show() { "$ONBOARDCTL" --json device show "$1"; }
field() { show "$1" | jq -r ".$2"; }
fp_of() { "$ONBOARDCTL" pki fingerprint "$1"; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//'; }
csr_json() { printf '{"certificateSigningRequest":"%s"}' "$(awk '{printf "%s\\n", $0}' "$1")"; }
# renew AS ID PAYLOAD: a renewal on one connection with certificate AS as
# client ID; the answer's payload on stdout (mqttreq skips a rotation notice)
renew() {
	printf '%s' "$3" > "$T/renew.json"
	"$ONB_BUILD_DIR/tests/tools/mqttreq" "$MQTT_PORT" "$PKI/ca-bundle.pem" "$T/$1.pem" "$T/$1.key" "$2" \
		"devices/$2/$RENEW" "$T/renew.json" 5000 "devices/$2/$RENEW/accepted" "devices/$2/$RENEW/rejected" \
		| cut -d' ' -f2-
}
# new_csr NAME: a fresh P-256 key $T/NAME.key and its CSR $T/NAME.csr
new_csr() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" \
		-subj "/CN=$1" -out "$T/$1.csr" 2>/dev/null
}

# --- devsim: provision, renew over the operational connection, reconnect
check "devsim provisions, renews its certificate and reconnects with the new one" \
	devsim_claim --serial R0002 --out "$T/dev" --rotate --telemetry 2
cp "$T/dev/R0002.pem" "$T/R0002-new.pem"; cp "$T/dev/R0002.key" "$T/R0002-new.key"
check "  ... the registry binds the renewed certificate (promoted at its CONNECT)" \
	test "$(field R0002 cert_fp)" = "$(fp_of "$T/R0002-new.pem")"
check "  ... no next certificate or deadline is left" \
	test "$(field R0002 cert_fp_next)/$(field R0002 rotate_deadline)" = "null/null"
check "  ... renewal and promotion are audited" audit_has "rotate" "rotate-promote" "R0002"
check "  ... the superseded certificate is on the CRL record (reason 4)" \
	bash -c "redis-cli -p $REDIS_PORT --raw HVALS onb:crl:revoked | grep -q ' 4 R0002$'"
check "  ... the renewed certificate's CN is the device id" \
	bash -c "openssl x509 -in '$T/R0002-new.pem' -noout -subject | grep -q 'CN *= *R0002'"

# --- by hand: renewal on one connection, old and new certificates in the grace period
devsim_claim --serial R0001 --out "$T/dev" >/dev/null
cp "$T/dev/R0001.pem" "$T/R0001.pem"; cp "$T/dev/R0001.key" "$T/R0001.key"
old_fp=$(fp_of "$T/R0001.pem")
new_csr R0001-new
# a spy with the device policy of another device: it must see nothing of R0001's renewal
devsim_claim --serial R0004 --out "$T/dev" >/dev/null
cp "$T/dev/R0004.pem" "$T/R0004.pem"; cp "$T/dev/R0004.key" "$T/R0004.key"
acc=$(renew R0001 R0001 "$(csr_json "$T/R0001-new.csr")")
jq -r .certificatePem <<<"$acc" > "$T/R0001-new.pem"
check "a device renews on devices/<id>/certificates/renew and gets certificateId + certificatePem" \
	bash -c "jq -e '.certificateId and .certificatePem and .previousCertificateValidUntil' <<<'$acc' >/dev/null"
check "  ... the new certificate is its next one; the old one stays current" \
	test "$(field R0001 cert_fp_next)/$(field R0001 cert_fp)" = "$(fp_of "$T/R0001-new.pem")/$old_fp"
deadline=$(field R0001 rotate_deadline)
now_ms=$(( $(date +%s) * 1000 ))
check "  ... with a grace deadline of rotation_grace (3600 s)" \
	test $(( (deadline - now_ms) / 1000 )) -ge 3590 -a $(( (deadline - now_ms) / 1000 )) -le 3600
check "  ... the old certificate still connects during the grace period" pub R0001 R0001 devices/R0001/telemetry
check "  ... and R0001 is still bound to it" test "$(field R0001 cert_fp)" = "$old_fp"

r=$(renew R0001 R0001 '{"certificateSigningRequest":"garbage"}')
check "a bad CSR is rejected on the device's own rejected topic" grep -q '"errorCode":"InvalidCsr"' <<<"$r"
check "another device may not publish to R0001's renewal topic" \
	denied_pub R0004 R0004 "devices/R0001/$RENEW"
new_device claim-x claim-ca
check "a claim identity may not publish to a renewal topic" denied_pub claim-x claim-x "devices/R0001/$RENEW"
sub_denied() {
	# shellcheck disable=SC2046
	timeout 10 mosquitto_sub $(tls_args "$1") -i "$2" -V 5 -t "$3" -C 1 -W 3 > "$T/sub.out" 2>&1
	grep -q "denied" "$T/sub.out"
}
check "another device may not subscribe to R0001's renewal answers" \
	sub_denied R0004 R0004 "devices/R0001/$RENEW/accepted"

# a live session on the old certificate
sub_bg R0001 R0001 "devices/R0001/commands/#" "$T/r1-old.out"
wait_subscribed R0001
check "the first connect with the new certificate is admitted" pub R0001-new R0001 devices/R0001/telemetry
check "  ... it became the current certificate" test "$(field R0001 cert_fp)" = "$(fp_of "$T/R0001-new.pem")"
check "  ... the live session on the old certificate was closed" wait_for 3 bash -c "! kill -0 $SUB_PID 2>/dev/null"
check "  ... the old certificate no longer connects" refused R0001 R0001 devices/R0001/telemetry
check "  ... refused as not bound, and audited" audit_has "deny" "not bound to a device"
check "  ... the new one does" pub R0001-new R0001 devices/R0001/telemetry
check "  ... the old serial is on the CRL record" \
	bash -c "redis-cli -p $REDIS_PORT --raw HEXISTS onb:crl:revoked '$(serial_of "$T/R0001.pem")' | grep -q 1"

# --- the grace period ends before the device reconnects with its new certificate
devsim_claim --serial R0003 --out "$T/dev" >/dev/null
cp "$T/dev/R0003.pem" "$T/R0003.pem"; cp "$T/dev/R0003.key" "$T/R0003.key"
sub_bg R0003 R0003 "devices/R0003/$RENEW/required" "$T/r3.out"
wait_subscribed R0003
r3_pid=$SUB_PID
check "device rotate forces a rotation" "$ONBOARDCTL" device rotate R0003 --within 3s --reason "test"
check "  ... the live session is told to renew" \
	wait_for 10 grep -q "devices/R0003/$RENEW/required .*\"reason\":\"operator\"" "$T/r3.out"
check "  ... and is disconnected when the deadline passes" wait_for 6 bash -c "! kill -0 $r3_pid 2>/dev/null"
check "  ... after which the certificate is refused (certificate-retired)" refused R0003 R0003 devices/R0003/status
check "  ... audited" audit_has "retired by a rotation" "R0003"
"$ONBOARDCTL" device rotate R0003 --within 1h >/dev/null
check "device rotate again moves the deadline: the certificate works again" pub R0003 R0003 devices/R0003/status
# the device connects, is told to renew after its CONNECT, and renews
rm -f "$T/r3b.out"
sub_bg R0003 R0003 "devices/R0003/$RENEW/required" "$T/r3b.out"
check "  ... at its next CONNECT the device is told to renew" \
	wait_for 3 grep -q "devices/R0003/$RENEW/required" "$T/r3b.out"
kill "$SUB_PID" 2>/dev/null || true
new_csr R0003-new
acc=$(renew R0003 R0003 "$(csr_json "$T/R0003-new.csr")")
jq -r .certificatePem <<<"$acc" > "$T/R0003-new.pem"
check "  ... it renews; the operator's flag is cleared" test "$(field R0003 rotate_required)" = "false"
check "  ... the deadline stays the operator's (not extended by the grace period)" \
	test $(( ($(field R0003 rotate_deadline) - $(date +%s) * 1000) / 1000 )) -le 3600
check "  ... and it connects with the new certificate" pub R0003-new R0003 devices/R0003/status

# --- list --expiring
"$ONBOARDCTL" device list --expiring 400d > "$T/exp.out"
check "device list --expiring 400d lists the certified devices" \
	bash -c "grep -q '^R0001 ' '$T/exp.out' && grep -q '^R0003 ' '$T/exp.out' && grep -q NOT_AFTER '$T/exp.out'"
check "device list --expiring 30d lists none of them (365-day certificates)" \
	bash -c "! \"$ONBOARDCTL\" device list --expiring 30d | grep -q '^R000'"
check "device list --expiring rejects a bad duration" \
	bash -c "\"$ONBOARDCTL\" device list --expiring soon; test \$? -eq 2"
check "device list --expiring --json gives device objects" \
	bash -c "\"$ONBOARDCTL\" device list --expiring 400d --json | jq -e 'length >= 3' >/dev/null"

finish

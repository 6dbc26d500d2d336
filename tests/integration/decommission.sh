# Decommission and re-enrolment: `onboardctl device decommission` retires the
# operational identity in one step (bindings, tenant, claim code, live session,
# CRL record, audit) and returns the device to `manufactured`; after a factory
# reset the same birth certificate enrols it again through claimsvc.
source "$(dirname "$0")/harness.sh"
up
start_claimsvc claimsvc-1

show() { "$ONBOARDCTL" --json device show "$1"; }
field() { show "$1" | jq -r ".$2"; }
fp_of() { "$ONBOARDCTL" pki fingerprint "$1"; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//'; }
crl_reason() { redis-cli -p "$REDIS_PORT" --raw HGET onb:crl:revoked "$1" | cut -d' ' -f2; }

mkdir -p "$T/birth"
for s in BD0001 BD0002; do
	"$ONBOARDCTL" pki issue --ca "$PKI/manufacturer-ca" --cn "$s" --out "$T/birth/$s" >/dev/null
done
printf 'serial,birth_fp,batch\nBD0001,%s,b9\nBD0002,%s,b9\n' "$(fp_of "$T/birth/BD0001.pem")" \
	"$(fp_of "$T/birth/BD0002.pem")" > "$T/allow.csv"
"$ONBOARDCTL" allowlist import "$T/allow.csv" >/dev/null
birth() {
	"$DEVSIM" "${DEVSIM_FMT[@]}" --port "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" --birth-dir "$T/birth" --quiet \
		--serial "$1" --out "$T/dev"
}

check "BD0001 enrols with its birth certificate" birth BD0001
cp "$T/dev/BD0001.pem" "$T/BD0001.pem"; cp "$T/dev/BD0001.key" "$T/BD0001.key"
old_fp=$(fp_of "$T/BD0001.pem")
code=$("$ONBOARDCTL" claimcode issue --device BD0001 --format uri)
"$ONBOARDCTL" claim --tenant acme "$code" >/dev/null
check "  ... claimed by tenant acme" test "$(field BD0001 state)/$(field BD0001 tenant)" = "active/acme"

sub_bg BD0001 BD0001 "devices/BD0001/commands/#" "$T/live.out"
wait_subscribed BD0001
live=$SUB_PID
"$ONBOARDCTL" device decommission BD0001 --reason "factory reset" > "$T/decom.out"
check "device decommission BD0001 succeeds" grep -q "BD0001: active -> decommissioned -> manufactured" "$T/decom.out"
check "  ... the live session is disconnected at once" wait_for 2 bash -c "! kill -0 $live 2>/dev/null"
check "  ... the device is manufactured again, tenant, policy and certificate gone" \
	test "$(show BD0001 | jq -r '[.state, .tenant, .policy, .cert_fp, .cert_serial, .claimed] | map(tostring) | join(",")')" \
	= "manufactured,null,null,null,null,null"
check "  ... its birth certificate, batch and reason are kept" \
	test "$(field BD0001 birth_fp)/$(field BD0001 batch)/$(field BD0001 reason)" \
	= "$(fp_of "$T/birth/BD0001.pem")/b9/factory reset"
check "  ... its old certificate is refused" refused BD0001 BD0001 devices/BD0001/telemetry
check "  ... its serial is on the CRL record (cessationOfOperation)" test "$(crl_reason "$(serial_of "$T/BD0001.pem")")" = 5
check "  ... audited" audit_has "decommission" "BD0001" "factory reset" "from" "active"
check "  ... a state event was written" bash -c \
	"redis-cli -p $REDIS_PORT XREVRANGE onb:events + - COUNT 1 | tr '\n' ' ' | grep -q 'BD0001 state manufactured'"
check "decommissioning the manufactured record again is harmless" "$ONBOARDCTL" device decommission BD0001

# An unclaimed device with an issued claim code: the code dies with the identity.
check "BD0002 enrols" birth BD0002
cp "$T/dev/BD0002.pem" "$T/BD0002.pem"; cp "$T/dev/BD0002.key" "$T/BD0002.key"
code2=$("$ONBOARDCTL" claimcode issue --device BD0002 --format uri)
"$ONBOARDCTL" device revoke BD0002 --reason "key leaked" >/dev/null
check "a revoked device can be decommissioned" "$ONBOARDCTL" device decommission BD0002
check "  ... its serial goes on the CRL as keyCompromise" test "$(crl_reason "$(serial_of "$T/BD0002.pem")")" = 1
check "  ... its claim code no longer claims" bash -c "! \"$ONBOARDCTL\" claim --tenant acme '$code2' 2>/dev/null"
check "  ... claimcode show reports none" bash -c "\"$ONBOARDCTL\" --json claimcode show --device BD0002 | grep -q '\"status\":\"none\"'"

# Re-enrolment after the factory reset: same birth certificate, fresh key.
mkdir -p "$T/clone"
cp "$T/birth/BD0002.pem" "$T/clone/BD0001.pem"; cp "$T/birth/BD0002.key" "$T/clone/BD0001.key"
refute "another birth certificate cannot enrol the decommissioned device" \
	"$DEVSIM" "${DEVSIM_FMT[@]}" --port "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" --birth-dir "$T/clone" --quiet --serial BD0001
check "  ... refused as a birth mismatch" audit_has "birth-mismatch" "BD0001"
rm -f "$T/dev/BD0001.pem" "$T/dev/BD0001.key"
check "BD0001 enrols again with the same birth certificate" birth BD0001
new_fp=$(fp_of "$T/dev/BD0001.pem")
check "  ... bound to its new certificate, unclaimed, no tenant" \
	test "$(field BD0001 state)/$(field BD0001 tenant)/$(field BD0001 cert_fp)" = "unclaimed/null/$new_fp"
check "  ... the new certificate differs from the old one" test "$new_fp" != "$old_fp"
cp "$T/dev/BD0001.pem" "$T/BD0001-new.pem"; cp "$T/dev/BD0001.key" "$T/BD0001-new.key"
check "  ... it connects" pub BD0001-new BD0001 devices/BD0001/telemetry
check "  ... the old certificate is still refused" refused BD0001 BD0001 devices/BD0001/telemetry
check "  ... and the old serial stays on the CRL record" test "$(crl_reason "$(serial_of "$T/BD0001.pem")")" = 5
check "  ... the re-enrolment is audited" audit_has "register-thing" "BD0001" "from" "manufactured"

"$ONBOARDCTL" crl export --ca "$PKI/device-ca" --out "$T/crl.pem" >/dev/null
openssl crl -in "$T/crl.pem" -noout -text | sed -n 's/.*Serial Number: *0*//p' | tr 'A-F' 'a-f' > "$T/crl.serials"
check "crl export lists the re-enrolled device's old serial" grep -qx "$(serial_of "$T/BD0001.pem")" "$T/crl.serials"
refute "  ... but not its new one" grep -qx "$(serial_of "$T/BD0001-new.pem")" "$T/crl.serials"
check "  ... and the revoked-then-decommissioned device's serial" grep -qx "$(serial_of "$T/BD0002.pem")" "$T/crl.serials"

check "decommission of an unknown device fails" bash -c "! \"$ONBOARDCTL\" device decommission NOPE 2>/dev/null"
check "decommission --reason with a newline is a usage error" \
	bash -c "\"$ONBOARDCTL\" device decommission BD0001 --reason \$'a\nb' 2>/dev/null; test \$? -eq 2"

finish

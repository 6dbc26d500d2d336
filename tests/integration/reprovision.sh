# Re-provisioning policies per template (docs/provisioning.md,
# "Re-provisioning"): devsim provisions a device that is already provisioned
# again, as a factory-reset device does (new key, same claim or birth
# certificate). never refuses; same-identity lets the same birth certificate
# back in, keeps tenant and state, and closes the old certificate's live
# session at once; replace lets any requester in, resets the device and
# audits a possible clone.
#
# The live sessions of the old certificates are held on a second broker
# (same Redis): there only the registry event can close them. On the broker
# devsim uses, its reconnect with the new certificate (same client id) would
# take the session over itself, before or after the event.
source "$(dirname "$0")/harness.sh"
up
PORT2=$(freeport)
sed -e "s/^listener $MQTT_PORT /listener $PORT2 /" -e "s|^log_dest file .*|log_dest file $T/mosquitto2.log|" \
	-e "s/^plugin_opt_audit_window_s .*/&\nplugin_opt_broker_id broker-2/" "$T/mosquitto.conf" > "$T/mosquitto2.conf"
env "${BROKER_ENV[@]}" "$MOSQUITTO_BIN" -c "$T/mosquitto2.conf" &
BROKER2_PID=$!
BG_PIDS+=("$BROKER2_PID")
wait_for 10 grep -q "mosquitto version .* running" "$T/mosquitto2.log" || { echo "broker 2 did not start"; exit 1; }

mkdir -p "$T/templates" "$T/birth" "$T/clone" "$T/dev"
cat > "$T/templates/same.json" <<'JSON'
{ "parameters": { "SerialNumber": { "pattern": "[A-Za-z0-9._:-]{1,128}" } },
  "thingName": "${SerialNumber}", "reprovision": "same-identity" }
JSON
cat > "$T/templates/anyone.json" <<'JSON'
{ "parameters": { "SerialNumber": { "pattern": "[A-Za-z0-9._:-]{1,128}" } },
  "thingName": "${SerialNumber}", "reprovision": "replace" }
JSON
start_claimsvc claimsvc-1

show() { "$ONBOARDCTL" --json device show "$1"; }
field() { show "$1" | jq -r ".$2"; }
fp_of() { "$ONBOARDCTL" pki fingerprint "$1"; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//'; }
crl_reason() { rcli --raw HGET onb:crl:revoked "$1" | cut -d' ' -f2; }
# audit_last ACTION DEVICE FIELD: FIELD of the newest onb:audit entry with
# that action and device (the plugin's connect entries come in between).
audit_last() {
	rcli --raw XREVRANGE onb:audit + - COUNT 200 | awk -v a="$1" -v d="$2" -v f="$3" '
		function done_entry() { if (!found && e["action"] == a && e["device"] == d) { print e[f]; found = 1 } delete e }
		st == 0 && /^[0-9]+-[0-9]+$/ { if (seen) done_entry(); seen = 1; next }
		st == 0 { k = $0; st = 1; next }
		{ e[k] = $0; st = 0 }
		END { if (seen) done_entry() }'
}
# keep ID NAME: the credentials devsim just wrote for ID, kept as $T/NAME.pem/.key.
keep() { cp "$T/dev/$1.pem" "$T/$2.pem"; cp "$T/dev/$1.key" "$T/$2.key"; rm -f "$T/dev/$1".*; }
# sim TEMPLATE SERIAL ARGS...: one device; the provisioning connection's client
# id is prov-SERIAL, so that it never takes over the device's own session.
sim() {
	local tpl=$1 serial=$2; shift 2
	"$DEVSIM" "${DEVSIM_FMT[@]}" --port "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" --quiet --template "$tpl" \
		--serial "$serial" --claim-id-prefix prov- --out "$T/dev" "$@" > "$T/sim.out" 2>&1
}
birth() { local tpl=$1 serial=$2; shift 2; sim "$tpl" "$serial" --birth-dir "$T/birth" "$@"; }
claim_as() {
	local who=$1 tpl=$2 serial=$3
	[ -f "$T/$who.pem" ] || new_device "$who" claim-ca
	sim "$tpl" "$serial" --claim-cert "$T/$who.pem" --claim-key "$T/$who.key"
}
# live ID CERT: a subscriber on the device's own commands, with that
# certificate, on broker 2; sets SUB_PID.
live() {
	MQTT_PORT=$PORT2 sub_bg "$2" "$1" "devices/$1/commands/#" "$T/live-$2.out"
	wait_for 5 grep -q "Received SUBSCRIBE from $1" "$T/mosquitto2.log"
}
refused_on2() { local port=$MQTT_PORT rc=0; MQTT_PORT=$PORT2; refused "$@" || rc=1; MQTT_PORT=$port; return $rc; }
gone() { wait_for 2 bash -c "! kill -0 $1 2>/dev/null"; }
# kicked ID: broker 2 closed ID's session because the registry says its
# certificate was replaced (plugin/rotation.c)
kicked() { wait_for 2 grep -q "disconnecting $1: its certificate was replaced" "$T/mosquitto2.log"; }

for s in BD0001 BD0002; do
	"$ONBOARDCTL" pki issue --ca "$PKI/manufacturer-ca" --cn "$s" --out "$T/birth/$s" >/dev/null
done
# a clone: another manufacturer-signed birth certificate presented for BD0001
"$ONBOARDCTL" pki issue --ca "$PKI/manufacturer-ca" --cn BD0001 --out "$T/clone/BD0001" >/dev/null
printf 'serial,birth_fp,batch\nBD0001,%s,r1\nBD0002,%s,r1\nSN0001,,r1\nSN0002,,r1\n' \
	"$(fp_of "$T/birth/BD0001.pem")" "$(fp_of "$T/birth/BD0002.pem")" > "$T/allow.csv"
"$ONBOARDCTL" allowlist import "$T/allow.csv" >/dev/null

# ---- never (the shipped default template)
check "never: SN0001 provisions with the claim certificate" claim_as claim-a default SN0001
keep SN0001 SN0001-old
refute "never: provisioning SN0001 again is refused" claim_as claim-a default SN0001
check "  ... as DeviceAlreadyProvisioned" grep -q "register: DeviceAlreadyProvisioned" "$T/sim.out"
check "  ... audited under policy never" test \
	"$(audit_last register-thing SN0001 reason)/$(audit_last register-thing SN0001 reprovision)" = "already-provisioned/never"
check "  ... its certificate still connects" pub SN0001-old SN0001 devices/SN0001/telemetry

# ---- same-identity: a factory reset, new key, same birth certificate
check "same-identity: BD0001 provisions with its birth certificate" birth same BD0001
keep BD0001 BD0001-old
old_fp=$(fp_of "$T/BD0001-old.pem")
code=$("$ONBOARDCTL" claimcode issue --device BD0001 --format uri)
"$ONBOARDCTL" claim --tenant acme "$code" >/dev/null
check "  ... claimed by acme" test "$(field BD0001 state)/$(field BD0001 tenant)" = "active/acme"
live BD0001 BD0001-old
live_pid=$SUB_PID
check "same-identity: after a factory reset BD0001 provisions again (new key, same birth certificate)" \
	birth same BD0001
keep BD0001 BD0001-new
new_fp=$(fp_of "$T/BD0001-new.pem")
check "  ... with a new certificate, now the one bound" \
	test "$(field BD0001 cert_fp)" = "$new_fp" -a "$new_fp" != "$old_fp"
check "  ... the old certificate's live session (on another broker) is closed by the registry event" kicked BD0001
check "  ... (the subscriber is gone)" gone "$live_pid"
check "  ... the old certificate is refused at connect" refused BD0001-old BD0001 devices/BD0001/telemetry
check "  ... on the other broker too" refused_on2 BD0001-old BD0001 devices/BD0001/telemetry
check "  ... the new one connects" pub BD0001-new BD0001 devices/BD0001/telemetry
check "  ... tenant and state are kept" test "$(field BD0001 state)/$(field BD0001 tenant)" = "active/acme"
check "  ... the old serial is on the CRL record (superseded)" \
	test "$(crl_reason "$(serial_of "$T/BD0001-old.pem")")" = 4
check "  ... audited as reprovision same-identity, old and new fingerprints" \
	audit_has "reprovision" "same-identity" "superseded" "$old_fp" "$new_fp"
# The AWS demos connect with one client id for both connections: the
# device's own birth certificate may use its registered id; no one else may.
check "same-identity: a factory reset that provisions as client id BD0001 itself" \
	birth same BD0001 --claim-id-prefix ""
keep BD0001 BD0001-new
new_fp=$(fp_of "$T/BD0001-new.pem")
check "  ... with a new certificate again" test "$(field BD0001 cert_fp)" = "$new_fp"
[ -f "$T/claim-a.pem" ] || new_device claim-a claim-ca
check "  ... while the claim certificate is refused that client id (client-id-reserved)" \
	refused claim-a BD0001 '$aws/certificates/create-from-csr/json'

refute "same-identity: another birth certificate for BD0001 is refused" \
	sim same BD0001 --birth-dir "$T/clone"
check "  ... as BirthCertificateMismatch" grep -q "register: BirthCertificateMismatch" "$T/sim.out"
check "  ... and BD0001 keeps its certificate" test "$(field BD0001 cert_fp)" = "$new_fp"
refute "same-identity: the shared claim certificate cannot re-provision BD0001" claim_as claim-a same BD0001
check "  ... as DeviceAlreadyProvisioned" grep -q "register: DeviceAlreadyProvisioned" "$T/sim.out"
check "  ... audited as reprovision-identity" test "$(audit_last register-thing BD0001 reason)" = reprovision-identity

check "same-identity: BD0002 provisions" birth same BD0002
"$ONBOARDCTL" device quarantine BD0002 --reason "under investigation" >/dev/null
refute "same-identity: a quarantined device is not re-provisioned" birth same BD0002
check "  ... as DeviceAlreadyProvisioned" grep -q "register: DeviceAlreadyProvisioned" "$T/sim.out"
check "  ... audited as reprovision-state; still quarantined" \
	test "$(audit_last register-thing BD0002 reason)/$(field BD0002 state)" = "reprovision-state/quarantined"

# ---- replace: anyone the template admits; another claim certificate
check "replace: SN0002 provisions with claim certificate A" claim_as claim-a anyone SN0002
keep SN0002 SN0002-old
code=$("$ONBOARDCTL" claimcode issue --device SN0002 --format uri)
"$ONBOARDCTL" claim --tenant acme "$code" >/dev/null
live SN0002 SN0002-old
live_pid=$SUB_PID
check "replace: claim certificate B re-provisions SN0002" claim_as claim-b anyone SN0002
keep SN0002 SN0002-new
check "  ... audited as a possible clone, naming the previous requester" \
	audit_has "reprovision" "replace" "possible_clone" "claim $(fp_of "$T/claim-a.pem") from 127.0.0.1"
check "  ... possible_clone is 1" test "$(audit_last reprovision SN0002 possible_clone)" = 1
check "  ... reset to unclaimed, acme's binding dropped" \
	test "$(field SN0002 state)/$(field SN0002 tenant)" = "unclaimed/null"
check "  ... the old certificate's live session is closed" kicked SN0002
check "  ... (the subscriber is gone)" gone "$live_pid"
check "  ... the old certificate is refused at connect" refused SN0002-old SN0002 devices/SN0002/telemetry
check "  ... the new one connects" pub SN0002-new SN0002 devices/SN0002/telemetry
refute "replace: SN0001 (provisioned through default, never) cannot be taken over through it" \
	claim_as claim-b anyone SN0001
check "  ... as DeviceAlreadyProvisioned (reprovision-template)" test \
	"$(grep -c 'register: DeviceAlreadyProvisioned' "$T/sim.out")/$(audit_last register-thing SN0001 reason)" \
	= "1/reprovision-template"
code=$("$ONBOARDCTL" claimcode issue --device SN0002 --format uri)
check "replace: the same requester again is not flagged" claim_as claim-b anyone SN0002
check "  ... possible_clone is 0" test "$(audit_last reprovision SN0002 possible_clone)" = 0
refute "  ... the claim code issued before it no longer claims" "$ONBOARDCTL" claim --tenant acme "$code"
"$ONBOARDCTL" device revoke SN0002 --reason "stolen" >/dev/null
refute "replace: a revoked device is not re-provisioned" claim_as claim-b anyone SN0002
check "  ... as DeviceAlreadyProvisioned" grep -q "register: DeviceAlreadyProvisioned" "$T/sim.out"
check "  ... audited as reprovision-state; still revoked" \
	test "$(audit_last register-thing SN0002 reason)/$(field SN0002 state)" = "reprovision-state/revoked"

# ---- templates: an unknown policy stops claimsvc --check
mkdir -p "$T/bad-templates"
printf '{"thingName":"${S}","parameters":{"S":{}},"reprovision":"always"}\n' > "$T/bad-templates/bad.json"
sed "s|^templates_dir .*|templates_dir $T/bad-templates|" "$T/claimsvc-1.conf" > "$T/bad.conf"
refute "claimsvc --check refuses reprovision \"always\"" "$CLAIMSVC" --check -c "$T/bad.conf" > "$T/check.out" 2>&1
check "  ... saying which file and why" \
	grep -q 'bad.json: "reprovision" must be never, same-identity or replace' "$T/check.out"
refute "onboardctl template check refuses it too" "$ONBOARDCTL" template check "$T/bad-templates" 2> "$T/check.out"
check "  ... with the same reason" \
	grep -q 'bad.json: "reprovision" must be never, same-identity or replace' "$T/check.out"
check "onboardctl template check lists each template's policy" test \
	"$("$ONBOARDCTL" --json template check "$T/templates" | jq -r 'map(.name + "=" + .reprovision) | join(",")')" \
	= "anyone=replace,default=never,same=same-identity"

check "broker 2 is still running" alive "$BROKER2_PID"
finish

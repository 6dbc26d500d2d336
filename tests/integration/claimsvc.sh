# claimsvc end to end WITHOUT the broker plugin: a plain mosquitto (mTLS,
# no plugin) carries hand-made request envelopes on onb/internal/prov/request
# exactly as the plugin would stamp them (docs/internal-topics.md), and we
# read claimsvc's reply envelopes on onb/internal/prov/reply. Real Redis,
# real claimsvc processes, run-time PKI.
source "$(dirname "$0")/harness.sh"

CLAIMSVC="$ONB_BUILD_DIR/claimsvc/claimsvc"
CSVC_PIDS=()

start_plain_broker() {
	MQTT_PORT=${MQTT_PORT:-$(freeport)}
	cat > "$T/mosquitto.conf" <<CONF
per_listener_settings false
allow_anonymous true
user root
listener $MQTT_PORT 127.0.0.1
cafile $PKI/ca-bundle.pem
certfile $PKI/server.pem
keyfile $PKI/server.key
require_certificate true
log_dest file $T/mosquitto.log
log_type all
CONF
	run_broker "$T/mosquitto.conf"
	wait_for 10 grep -q "mosquitto version .* running" "$T/mosquitto.log" \
		|| { echo "broker did not start"; cat "$T/mosquitto.log"; exit 1; }
}

# write_conf NAME [EXTRA LINES...]: $T/NAME.conf for instance NAME.
write_conf() {
	local name=$1; shift
	{
		echo "broker_host 127.0.0.1"
		echo "broker_port $MQTT_PORT"
		echo "cafile $PKI/ca-bundle.pem"
		echo "certfile $T/$name.pem"
		echo "keyfile $T/$name.key"
		echo "device_ca_cert $PKI/device-ca.pem"
		echo "device_ca_key $PKI/device-ca.key"
		echo "redis_url redis://127.0.0.1:$REDIS_PORT/0"
		echo "templates_dir $T/templates"
		echo "log_level debug"
		for l in "$@"; do echo "$l"; done
	} > "$T/$name.conf"
}

# start_claimsvc NAME: runs claimsvc with $T/NAME.conf; waits until it serves.
# (In a sanitizer build claimsvc also checks for leaks at exit, unlike the broker.)
start_claimsvc() {
	ASAN_OPTIONS="${ASAN_OPTIONS:+detect_leaks=1:abort_on_error=1}" "$CLAIMSVC" -c "$T/$1.conf" 2> "$T/$1.log" &
	CSVC_PIDS+=($!)
	BG_PIDS+=($!)
	wait_for 10 grep -q "serving" "$T/$1.log" || { echo "claimsvc $1 did not start"; cat "$T/$1.log"; exit 1; }
}

make_pki
start_redis
start_plain_broker
mkdir -p "$T/templates"
cp "$ONB_SOURCE_DIR/config/templates/default.json" "$T/templates/"
cat > "$T/templates/sensor.json" <<'JSON'
{ "parameters": {
    "SerialNumber": { "pattern": "^[0-9]{4,8}$" },
    "Site": { "required": false, "default": "lab", "pattern": "[a-z]+", "maxLength": 16 } },
  "thingName": "sensor-${SerialNumber}-${Site}",
  "allowlist": "optional",
  "state": "active", "tenant": "acme", "policy": "sensor",
  "deviceConfiguration": { "telemetryTopic": "devices/x/telemetry", "interval": 30 } }
JSON
for n in claimsvc-1 claimsvc-2 observer; do
	"$ONBOARDCTL" pki issue --ca "$PKI/service-ca" --cn "$n" --out "$T/$n" >/dev/null
done
write_conf claimsvc-1 "rate_per_requester 40" "rate_per_client 8" "rate_window_ms 3000"
# (claimsvc-2 answers with the chain: reply_chain, checked under "several instances")
write_conf claimsvc-2 "rate_per_requester 40" "rate_per_client 8" "rate_window_ms 3000" "reply_chain true"

check "--check accepts the configuration" "$CLAIMSVC" --check -c "$T/claimsvc-1.conf"
check "  ... and says what certificatePem holds (the certificate alone by default, the chain with reply_chain)" \
	bash -c "'$CLAIMSVC' --check -c '$T/claimsvc-1.conf' | grep -q 'certificatePem the certificate alone' &&
	         '$CLAIMSVC' --check -c '$T/claimsvc-2.conf' | grep -q 'certificatePem with the device CA (reply_chain)'"
echo "bogus_key 1" > "$T/bad.conf"; cat "$T/claimsvc-1.conf" >> "$T/bad.conf"
refute "--check refuses an unknown key" "$CLAIMSVC" --check -c "$T/bad.conf"
sed 's/^broker_port .*/broker_port 70000/' "$T/claimsvc-1.conf" > "$T/bad2.conf"
refute "--check refuses an out-of-range port" "$CLAIMSVC" --check -c "$T/bad2.conf"
# bad_conf DESCRIPTION SED-EXPRESSION: --check refuses the edited config.
bad_conf() { sed "$2" "$T/claimsvc-1.conf" > "$T/bad3.conf"; refute "--check refuses $1" "$CLAIMSVC" --check -c "$T/bad3.conf"; }
bad_conf "a number with trailing text" 's/^broker_port .*/broker_port 1883x/'
bad_conf "a key set twice" '$a log_level info'
bad_conf "a bad boolean" '$a create_keys_enabled yes'
bad_conf "a bad log level" 's/^log_level .*/log_level loud/'
bad_conf "a missing required key" '/^device_ca_key /d'
bad_conf "a device CA key that does not match" "s|^device_ca_key .*|device_ca_key $PKI/claim-ca.key|"
bad_conf "a missing templates directory" "s|^templates_dir .*|templates_dir $T/nope|"
bad_conf "an unparsable Redis URL" 's|^redis_url .*|redis_url rediss://x|'

mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" --cert "$T/observer.pem" \
	--key "$T/observer.key" -i observer -q 1 -t onb/internal/prov/reply -F '%p' > "$T/replies" 2>"$T/sub.err" &
BG_PIDS+=($!)
wait_for 5 grep -q "Received SUBSCRIBE from observer" "$T/mosquitto.log"
start_claimsvc claimsvc-1

CLAIM_FP=$(printf 'claim-cert-A' | sha256sum | cut -c1-64)
OTHER_FP=$(printf 'claim-cert-B' | sha256sum | cut -c1-64)

# send CLIENTID CLASS FP TOPIC PAYLOADFILE: publishes one request envelope.
send() {
	jq -n --arg c "$1" --arg k "$2" --arg f "$3" --arg t "$4" --rawfile p "$5" \
		'{v:1, clientId:$c, class:$k, fp:$f, address:"127.0.0.1", topic:$t, payload:$p}' > "$T/env.json"
	mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" --cert "$T/observer.pem" \
		--key "$T/observer.key" -i "pub-$RANDOM" -q 1 -t onb/internal/prov/request -f "$T/env.json"
}

# ask CLIENTID CLASS FP TOPIC PAYLOADFILE: send, then the reply to CLIENTID
# on TOPIC/accepted|rejected into $T/reply.json (the decoded AWS document)
# and its topic suffix into REPLY_KIND.
ask() {
	local before; before=$(wc -l < "$T/replies")
	send "$@"
	# (jq 1.6 -e exits 0 on empty input: count with -s instead)
	wait_for 10 bash -c "tail -n +$((before + 1)) '$T/replies' | jq -s -e --arg c '$1' --arg t '$4' \
		'map(select(.clientId==\$c and (.topic|startswith(\$t)))) | length > 0' >/dev/null" \
		|| { REPLY_KIND=none; : > "$T/reply.json"; return; }
	tail -n +$((before + 1)) "$T/replies" | jq -c --arg c "$1" --arg t "$4" \
		'select(.clientId==$c and (.topic|startswith($t)))' | tail -n 1 > "$T/reply.env"
	jq -r '.payload' "$T/reply.env" > "$T/reply.json"
	REPLY_KIND=$(jq -r '.topic' "$T/reply.env" | sed 's|.*/||')
}

field() { jq -r ".$1" "$T/reply.json"; }
rejected_with() { [ "$REPLY_KIND" = rejected ] && [ "$(field errorCode)" = "$1" ] && [ "$(field statusCode)" = "$2" ]; }

CSR_TOPIC='$aws/certificates/create-from-csr/json'
csr_payload() { jq -n --rawfile c "$1" '{certificateSigningRequest:$c}' > "$2"; }
new_csr() { # new_csr NAME KEYALG-ARGS... : $T/NAME.key, $T/NAME.csr, $T/NAME.req.json
	local name=$1; shift
	openssl req -new -newkey "$@" -nodes -keyout "$T/$name.key" -subj "/CN=$name-chosen-by-device" \
		-out "$T/$name.csr" 2>/dev/null
	csr_payload "$T/$name.csr" "$T/$name.req.json"
}

# ---------------------------------------------------------------- happy path
new_csr dev1 ec -pkeyopt ec_paramgen_curve:P-256
ask dev-claim-1 claim "$CLAIM_FP" "$CSR_TOPIC" "$T/dev1.req.json"
check "create-from-csr is accepted" [ "$REPLY_KIND" = accepted ]
jq -r .certificatePem "$T/reply.json" > "$T/dev1.chain.pem"
TOKEN1=$(field certificateOwnershipToken)
CERT1=$(field certificateId)
check "certificateId is 64 hex" grep -qE '^[0-9a-f]{64}$' <<<"$CERT1"
check "ownership token is 64 hex" grep -qE '^[0-9a-f]{64}$' <<<"$TOKEN1"
check "certificatePem holds the certificate alone (reply_chain is off)" \
	[ "$(grep -c 'BEGIN CERTIFICATE' "$T/dev1.chain.pem")" = 1 ]
openssl x509 -in "$T/dev1.chain.pem" -out "$T/dev1.pem" 2>/dev/null
check "certificateId is the leaf's SHA-256" [ "$("$ONBOARDCTL" pki fingerprint "$T/dev1.pem")" = "$CERT1" ]
check "leaf verifies against root + device CA" openssl verify -CAfile "$PKI/root-ca.pem" \
	-untrusted "$PKI/device-ca.pem" "$T/dev1.pem"
SPKI=$(openssl x509 -in "$T/dev1.pem" -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum | cut -c1-64)
check "subject CN is the key's SHA-256, not the CSR's subject" \
	grep -q "CN *= *$SPKI" <(openssl x509 -in "$T/dev1.pem" -noout -subject)
check "leaf has EKU clientAuth" grep -q "TLS Web Client Authentication" <(openssl x509 -in "$T/dev1.pem" -noout -text)
check "leaf key is the CSR's key" [ "$(openssl x509 -in "$T/dev1.pem" -pubkey -noout)" = "$(openssl pkey -in "$T/dev1.key" -pubout)" ]
check "token stored hashed, never in clear" bash -c "[ -z \"\$(redis-cli -p $REDIS_PORT --scan --pattern '*$TOKEN1*')\" ]"
check "issuance audited" audit_has "create-from-csr" "certificate $CERT1"

printf 'serial\nSN-0001\nSN-0002\n' > "$T/allow.csv"
"$ONBOARDCTL" allowlist import "$T/allow.csv" >/dev/null 2>&1
TPL_TOPIC='$aws/provisioning-templates/default/provision/json'
reg_payload() { jq -n --arg t "$1" --arg s "$2" '{certificateOwnershipToken:$t, parameters:{SerialNumber:$s}}' > "$T/reg.json"; }
reg_payload "$TOKEN1" SN-0001
ask dev-claim-1 claim "$CLAIM_FP" "$TPL_TOPIC" "$T/reg.json"
check "RegisterThing is accepted" [ "$REPLY_KIND" = accepted ]
check "  ... thingName = serial" [ "$(field thingName)" = SN-0001 ]
check "  ... deviceConfiguration is an object" [ "$(jq -r '.deviceConfiguration|type' "$T/reply.json")" = object ]
check "device is unclaimed and bound to the certificate" bash -c \
	"'$ONBOARDCTL' --json device show SN-0001 | jq -s -e '.[0] | .state==\"unclaimed\" and .cert_fp==\"$CERT1\"'"
ask dev-claim-1 claim "$CLAIM_FP" "$TPL_TOPIC" "$T/reg.json"
check "the same RegisterThing again: accepted again, thingName SN-0001 (idempotent)" \
	bash -c "[ '$REPLY_KIND' = accepted ] && [ \"\$(jq -r .thingName '$T/reply.json')\" = SN-0001 ]"
check "  ... audited as a replay (the newest entry)" bash -c \
	"redis-cli -p $REDIS_PORT --raw XREVRANGE onb:audit + - COUNT 1 | tr '\n' ' ' | grep -q 'device SN-0001 result replay '"
reg_payload "$TOKEN1" SN-0002
ask dev-claim-1 claim "$CLAIM_FP" "$TPL_TOPIC" "$T/reg.json"
check "the used token for another device: InvalidCertificateOwnershipToken 403" \
	rejected_with InvalidCertificateOwnershipToken 403

new_csr dev2 ec -pkeyopt ec_paramgen_curve:P-384
ask dev-claim-2 claim "$CLAIM_FP" "$CSR_TOPIC" "$T/dev2.req.json"
TOKEN2=$(field certificateOwnershipToken)
check "EC P-384 CSR accepted" [ "$REPLY_KIND" = accepted ]
reg_payload "$TOKEN2" SN-0002
ask dev-claim-3 claim "$CLAIM_FP" "$TPL_TOPIC" "$T/reg.json"
check "token from another connection: CertificateOwnershipTokenMismatch 403" \
	rejected_with CertificateOwnershipTokenMismatch 403
reg_payload "$TOKEN2" SN-9999
ask dev-claim-2 claim "$CLAIM_FP" "$TPL_TOPIC" "$T/reg.json"
check "serial not on the allowlist: DeviceNotAllowlisted 403" rejected_with DeviceNotAllowlisted 403
reg_payload "$TOKEN2" SN-0001
ask dev-claim-2 claim "$CLAIM_FP" "$TPL_TOPIC" "$T/reg.json"
check "serial already provisioned: DeviceAlreadyProvisioned 403" rejected_with DeviceAlreadyProvisioned 403

new_csr dev3 rsa:2048
ask dev-claim-4 claim "$CLAIM_FP" "$CSR_TOPIC" "$T/dev3.req.json"
TOKEN3=$(field certificateOwnershipToken)
check "RSA-2048 CSR accepted" [ "$REPLY_KIND" = accepted ]
jq -n --arg t "$TOKEN3" '{certificateOwnershipToken:$t, parameters:{SerialNumber:"00421"}}' > "$T/reg.json"
ask dev-claim-4 claim "$CLAIM_FP" '$aws/provisioning-templates/sensor/provision/json' "$T/reg.json"
check "sensor template: default parameter and prefix make the thing name" \
	bash -c "[ '$REPLY_KIND' = accepted ] && [ \"\$(jq -r .thingName '$T/reply.json')\" = sensor-00421-lab ]"
check "  ... deviceConfiguration from the template" [ "$(jq -r .deviceConfiguration.interval "$T/reply.json")" = 30 ]
check "  ... active for the template's tenant" bash -c \
	"'$ONBOARDCTL' --json device show sensor-00421-lab | jq -s -e '.[0] | .state==\"active\" and .tenant==\"acme\"'"

# ---------------------------------------------------------------- rejections
TOKKEYS_BEFORE=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'onb:tok:*' | wc -l)
echo 'not a csr at all' > "$T/garbage.csr"; csr_payload "$T/garbage.csr" "$T/garbage.json"
ask bad-1 claim "$CLAIM_FP" "$CSR_TOPIC" "$T/garbage.json"
check "garbage CSR: InvalidCsr 400" rejected_with InvalidCsr 400
new_csr weak rsa:1024
ask bad-2 claim "$CLAIM_FP" "$CSR_TOPIC" "$T/weak.req.json"
check "RSA-1024 CSR: WeakKey 400" rejected_with WeakKey 400
# Flip one byte of the signature (the DER's last byte) and re-encode.
openssl req -in "$T/dev1.csr" -outform DER -out "$T/tamper.der"
python3 -c "import sys;b=bytearray(open(sys.argv[1],'rb').read());b[-1]^=1;open(sys.argv[1],'wb').write(b)" "$T/tamper.der"
{ echo "-----BEGIN CERTIFICATE REQUEST-----"; base64 -w 64 "$T/tamper.der"; echo "-----END CERTIFICATE REQUEST-----"; } > "$T/tamper.csr"
csr_payload "$T/tamper.csr" "$T/tamper.json"
ask bad-3 claim "$CLAIM_FP" "$CSR_TOPIC" "$T/tamper.json"
check "tampered signature: CsrSignatureInvalid 400" rejected_with CsrSignatureInvalid 400
head -c 20000 /dev/zero | tr '\0' 'A' > "$T/big.csr"; csr_payload "$T/big.csr" "$T/big.json"
ask bad-4 claim "$CLAIM_FP" "$CSR_TOPIC" "$T/big.json"
check "20 KB CSR: CsrTooLarge 400" rejected_with CsrTooLarge 400
head -c 70000 /dev/zero | tr '\0' 'A' > "$T/huge.json"
ask bad-5 claim "$CLAIM_FP" "$CSR_TOPIC" "$T/huge.json"
check "70 KB payload: PayloadTooLarge 413 (as the plugin answers)" rejected_with PayloadTooLarge 413
echo '{"certificateSigningRequest": 12}' > "$T/typed.json"
ask bad-6 claim "$CLAIM_FP" "$CSR_TOPIC" "$T/typed.json"
check "CSR not a string: InvalidPayload 400" rejected_with InvalidPayload 400
check "no token recorded for any bad CSR" \
	[ "$(redis-cli -p "$REDIS_PORT" --scan --pattern 'onb:tok:*' | wc -l)" = "$TOKKEYS_BEFORE" ]
check "bad CSRs audited with requester and errorCode" audit_has "refused" "WeakKey" "bad-2" "$CLAIM_FP"

echo '{}' > "$T/empty.json"
ask bad-7 claim "$CLAIM_FP" '$aws/certificates/create/json' "$T/empty.json"
check "create (server-side keys) disabled: CreateKeysAndCertificateDisabled 403" \
	rejected_with CreateKeysAndCertificateDisabled 403
ask bad-8 claim "$CLAIM_FP" '$aws/provisioning-templates/nope/provision/json' "$T/reg.json"
check "unknown template: ResourceNotFound 404" rejected_with ResourceNotFound 404
jq -n --arg t "$TOKEN2" '{certificateOwnershipToken:$t, parameters:{}}' > "$T/noparam.json"
ask dev-claim-2 claim "$CLAIM_FP" "$TPL_TOPIC" "$T/noparam.json"
check "missing parameter: InvalidParameters 400" rejected_with InvalidParameters 400
jq -n --arg t "$TOKEN2" '{certificateOwnershipToken:$t, parameters:{SerialNumber:"12"}}' > "$T/shortparam.json"
ask dev-claim-2 claim "$CLAIM_FP" '$aws/provisioning-templates/sensor/provision/json' "$T/shortparam.json"
check "parameter failing its pattern: InvalidParameters 400" rejected_with InvalidParameters 400
ask dev-op-1 device "$CLAIM_FP" "$CSR_TOPIC" "$T/dev1.req.json"
check "device class may not provision: AccessDenied 403" rejected_with AccessDenied 403

# ---------------------------------------------------------------- rate limits
# One claim certificate floods (limit 40 per 3 s window); another proceeds.
# envelopes CLIENTPREFIX COUNT CLASS FP TOPIC PAYLOADFILE: one envelope per line.
envelopes() {
	for i in $(seq 1 "$2"); do
		jq -c -n --arg c "$1$i" --arg k "$3" --arg f "$4" --arg t "$5" --rawfile p "$6" \
			'{v:1, clientId:$c, class:$k, fp:$f, address:"127.0.0.1", topic:$t, payload:$p}'
	done
}
# send_lines FILE: publishes each line of FILE over one connection.
send_lines() {
	mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" --cert "$T/observer.pem" \
		--key "$T/observer.key" -i "pub-$RANDOM" -q 1 -t onb/internal/prov/request -l < "$1"
}
envelopes flood- 100 claim "$CLAIM_FP" "$CSR_TOPIC" "$T/garbage.json" > "$T/flood.txt"
send_lines "$T/flood.txt"
wait_for 10 bash -c "[ \$(jq -r 'select(.clientId|startswith(\"flood-\"))|.clientId' '$T/replies' | wc -l) -ge 100 ]"
check "a flood from one claim certificate gets 429 Throttling" \
	bash -c "jq -r .payload '$T/replies' | jq -s -e 'any(.[]; .errorCode==\"Throttling\" and .statusCode==429)' >/dev/null"
ask other-1 claim "$OTHER_FP" "$CSR_TOPIC" "$T/dev1.req.json"
check "  ... while another claim certificate proceeds" [ "$REPLY_KIND" = accepted ]
check "  ... throttling audited (once per window)" bash -c \
	"[ \$(redis-cli -p $REDIS_PORT --raw XRANGE onb:audit - + | grep -c '^Throttling') -le 2 ]"
sed 's/"clientId":"same-[0-9]*"/"clientId":"same-client"/' <(envelopes same- 12 claim "$OTHER_FP" "$CSR_TOPIC" "$T/garbage.json") > "$T/same.txt"
send_lines "$T/same.txt"
wait_for 10 bash -c "jq -r 'select(.clientId==\"same-client\")|.payload' '$T/replies' | grep -q Throttling"
check "one connection over rate_per_client is throttled" \
	bash -c "jq -r 'select(.clientId==\"same-client\")|.payload' '$T/replies' | grep -q Throttling"

# ---------------------------------------------------------------- several instances
start_claimsvc claimsvc-2
sleep 3
for i in $(seq 1 20); do
	new_csr "m$i" ec -pkeyopt ec_paramgen_curve:P-256
	send "multi-$i" claim "$(printf 'm%s' "$i" | sha256sum | cut -c1-64)" "$CSR_TOPIC" "$T/m$i.req.json"
done
wait_for 15 bash -c "[ \$(jq -r 'select(.clientId|startswith(\"multi-\"))|.topic' '$T/replies' | grep -c accepted) -eq 20 ]"
check "20 requests, 20 accepted replies with two instances" \
	[ "$(jq -r 'select(.clientId|startswith("multi-"))|.topic' "$T/replies" | grep -c accepted)" = 20 ]
check "  ... both instances served some (shared subscription)" bash -c \
	"grep -q 'create-from-csr from claim multi-.* accepted' '$T/claimsvc-1.log' && grep -q 'create-from-csr from claim multi-.* accepted' '$T/claimsvc-2.log'"
chains=$(jq -r 'select(.clientId|startswith("multi-")) | .payload | fromjson | .certificatePem
	| [scan("BEGIN CERTIFICATE")] | length' "$T/replies" | sort -u | tr '\n' ' ')
check "  ... claimsvc-1's answers hold the certificate alone, claimsvc-2's (reply_chain true) the chain ($chains)" \
	test "$chains" = "1 2 "

# ---------------------------------------------------------------- outages
stop_redis
ask out-1 claim "$OTHER_FP" "$CSR_TOPIC" "$T/dev1.req.json"
check "Redis down: ServiceUnavailable 500" rejected_with ServiceUnavailable 500
start_redis_again() {
	"$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$T" --appendonly yes \
		--save '' --daemonize no --logfile "$T/redis.log" &
	REDIS_PID=$!
	wait_for 5 redis-cli -p "$REDIS_PORT" ping
}
start_redis_again
sleep 0.5
ask out-2 claim "$OTHER_FP" "$CSR_TOPIC" "$T/dev1.req.json"
check "Redis back: served again without a restart" [ "$REPLY_KIND" = accepted ]

kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true
start_plain_broker_again() { run_broker "$T/mosquitto.conf"; }
: > "$T/mosquitto.log"
start_plain_broker_again
wait_for 10 grep -q "mosquitto version .* running" "$T/mosquitto.log"
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" --cert "$T/observer.pem" \
	--key "$T/observer.key" -i observer -q 1 -t onb/internal/prov/reply -F '%p' >> "$T/replies" 2>>"$T/sub.err" &
BG_PIDS+=($!)
check "claimsvc reconnects to a restarted broker" wait_for 15 \
	bash -c "[ \$(grep -c 'Received SUBSCRIBE from claimsvc' '$T/mosquitto.log') -ge 2 ]"
wait_for 5 grep -q "Received SUBSCRIBE from observer" "$T/mosquitto.log"
ask out-3 claim "$OTHER_FP" "$CSR_TOPIC" "$T/dev1.req.json"
check "  ... and serves again" [ "$REPLY_KIND" = accepted ]

# ---------------------------------------------------------------- shutdown
kill -TERM "${CSVC_PIDS[0]}"
kill -INT "${CSVC_PIDS[1]}"
rc1=0; wait "${CSVC_PIDS[0]}" || rc1=$?
rc2=0; wait "${CSVC_PIDS[1]}" || rc2=$?
check "SIGTERM and SIGINT: clean exit 0" [ "$rc1/$rc2" = 0/0 ]
check "  ... with a summary line each" bash -c "grep -q stopped: '$T/claimsvc-1.log' && grep -q stopped: '$T/claimsvc-2.log'"
check "no sanitizer report from claimsvc" bash -c "! grep -qE 'Sanitizer|runtime error' '$T'/claimsvc-*.log"

finish

# Fleet provisioning by claim, end to end: devsim (AWS wire format) -> broker
# with the plugin -> claimsvc -> Redis, and back to the one device that asked.
source "$(dirname "$0")/harness.sh"
up
start_claimsvc claimsvc-1

CSR_TOPIC='$aws/certificates/create-from-csr/json'
REG_TOPIC='$aws/provisioning-templates/default/provision/json'

# A spy allowed to read every $aws topic: replies must never reach it.
new_device spy; register spy active
cat > "$T/spy.json" <<'JSON'
{ "version": "2026-01-09", "statement": [
  { "effect": "allow", "action": ["connect"], "resource": ["client:*"] },
  { "effect": "allow", "action": ["subscribe", "receive"], "resource": ["topicfilter:$aws/#", "topic:$aws/#"] } ] }
JSON
"$ONBOARDCTL" policy put spy "$T/spy.json" >/dev/null
"$ONBOARDCTL" policy assign spy spy >/dev/null
sub_bg spy spy '$aws/#' "$T/spy.out"
wait_subscribed spy

printf 'serial,birth_fp,batch\n' > "$T/allow.csv"
for i in $(seq 0 29); do printf 'SN%04d,,b1\n' "$i" >> "$T/allow.csv"; done
"$ONBOARDCTL" allowlist import "$T/allow.csv" >/dev/null

devsim_claim --serial SN0000 --json > "$T/devsim1.json" 2>&1
check "one device provisions with the shared claim certificate ($PROV_FORMAT)" \
	jq -e '.succeeded == 1' "$T/devsim1.json"
# Constrained devices (the AWS SDK's demos use 2 KiB buffers): the whole
# answer, certificate (P-256, alone: reply_chain is off) and token, fits.
csr_bytes=$(jq '.csr_accepted_bytes_max' "$T/devsim1.json")
reg_bytes=$(jq '.register_accepted_bytes_max' "$T/devsim1.json")
echo "# $PROV_FORMAT answers: create-from-csr accepted $csr_bytes bytes, provision accepted $reg_bytes bytes"
check "  ... its create-from-csr answer is within 2 KiB ($csr_bytes bytes, $PROV_FORMAT)" \
	test "$csr_bytes" -gt 0 -a "$csr_bytes" -le 2048
check "  ... and so is its provision answer ($reg_bytes bytes)" test "$reg_bytes" -gt 0 -a "$reg_bytes" -le 2048
check "  ... it is unclaimed and bound to its new certificate" bash -c \
	"\"$ONBOARDCTL\" --json device show SN0000 | grep -q '\"state\":\"unclaimed\"'"
check "  ... and it connected with that certificate and published telemetry" \
	grep -q "Received PUBLISH from SN0000 .*devices/SN0000/telemetry" "$T/mosquitto.log"

devsim_claim --serial-prefix SN --serial-start 1 -n 20 -c 20 > "$T/devsim20.out" 2>&1
check "20 devices at once with one claim certificate all provision" \
	grep -q "^succeeded 20/20" "$T/devsim20.out"
check "  ... each received only its own replies" grep -q "stray replies 0$" "$T/devsim20.out"
# How long each answer took (the AWS demos wait 1 s): printed, not asserted.
sed -n "s/^\(phase\|csr\|register\) /# devsim, 20 at once, ${PROV_FORMAT:-json}: &/p" "$T/devsim20.out"
sleep 0.3
refute "  ... and a client subscribed to \$aws/# received nothing" grep -q . "$T/spy.out"

# Birth certificates: per-device identity, checked against the allowlist.
mkdir -p "$T/birth"
"$ONBOARDCTL" pki issue --ca "$PKI/manufacturer-ca" --cn BR0001 --out "$T/birth/BR0001" >/dev/null
"$ONBOARDCTL" pki issue --ca "$PKI/manufacturer-ca" --cn BR0002 --out "$T/birth/BR0002" >/dev/null
fp1=$("$ONBOARDCTL" pki fingerprint "$T/birth/BR0001.pem")
printf 'BR0001,%s,b2\nBR0002,%s,b2\n' "$fp1" "$fp1" > "$T/birth.csv"
"$ONBOARDCTL" allowlist import "$T/birth.csv" >/dev/null
birth() { "$DEVSIM" "${DEVSIM_FMT[@]}" --port "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" --birth-dir "$T/birth" --quiet --serial "$1"; }
check "a device provisions with its own birth certificate" birth BR0001
refute "a birth certificate other than the allowlisted one is refused (clone)" birth BR0002
check "  ... and audited" audit_has "birth-mismatch"

# Hand-made requests on one connection (mosquitto_rr) for the error paths.
new_device claim-hand claim-ca
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/k.pem" \
	-subj /CN=SN0029 -out "$T/good.csr" 2>/dev/null
openssl req -new -newkey rsa:1024 -nodes -keyout "$T/k1024.pem" -subj /CN=x -out "$T/weak.csr" 2>/dev/null
# Flip a bit in the signature: still a well-formed CSR.
openssl req -in "$T/good.csr" -outform DER -out "$T/good.der"
cp "$T/good.der" "$T/bad.der"
off=$(( $(stat -c %s "$T/good.der") - 5 ))
byte=$(od -An -tu1 -j "$off" -N1 "$T/good.der" | tr -d ' ')
# shellcheck disable=SC2059
printf "\\$(printf '%03o' $((byte ^ 1)))" | dd of="$T/bad.der" bs=1 seek="$off" conv=notrunc 2>/dev/null
openssl req -inform DER -in "$T/bad.der" -out "$T/bad.csr" 2>/dev/null
csr_json() { printf '{"certificateSigningRequest":"%s"}' "$(awk '{printf "%s\\n", $0}' "$1")"; }
rejected_code() { rr claim-hand claim-hand "$CSR_TOPIC" "$CSR_TOPIC/rejected" "$1" | json_field errorCode; }
keys_before=$(rcli --scan --pattern 'onb:tok:*' | wc -l)

c1=$(rejected_code '{"certificateSigningRequest":"garbage"}')
c2=$(rejected_code "$(csr_json "$T/bad.csr")")
c3=$(rejected_code "$(csr_json "$T/weak.csr")")
c4=$(rejected_code 'not json at all')
{ printf '{"certificateSigningRequest":"'; head -c 1100000 /dev/zero | tr '\0' 'A'; printf '"}'; } > "$T/huge.json"
c5=$("$ONB_BUILD_DIR/tests/tools/mqttreq" "$MQTT_PORT" "$PKI/ca-bundle.pem" "$T/claim-hand.pem" \
	"$T/claim-hand.key" claim-hand "$CSR_TOPIC" "$T/huge.json" 5000 "$CSR_TOPIC/rejected" | json_field errorCode)
echo "# errorCodes: garbage=$c1 bad-signature=$c2 rsa1024=$c3 not-json=$c4 1MiB=$c5"
check "garbage CSR is rejected" test -n "$c1"
check "a CSR with a bad signature is rejected with its own code" bash -c "[ -n '$c2' ] && [ '$c2' != '$c1' ]"
check "an RSA-1024 CSR is rejected with its own code" bash -c "[ -n '$c3' ] && [ '$c3' != '$c2' ] && [ '$c3' != '$c1' ]"
check "a non-JSON request is rejected" test -n "$c4"
check "a 1 MiB request is rejected" test -n "$c5"
check "  ... and none of them left a token behind" test "$(rcli --scan --pattern 'onb:tok:*' | wc -l)" -eq "$keys_before"
check "  ... rejections are audited" audit_has "WeakKey"

# Tokens: single use, bound to the connection that received them.
acc=$(rr claim-hand claim-hand "$CSR_TOPIC" "$CSR_TOPIC/accepted" "$(csr_json "$T/good.csr")")
token=$(json_field certificateOwnershipToken <<<"$acc")
check "a good CSR gets a certificate and an ownership token" test ${#token} -ge 32
reg() { printf '{"certificateOwnershipToken":"%s","parameters":{"SerialNumber":"%s"}}' "$1" "$2"; }
foreign=$(rr claim-hand claim-other "$REG_TOPIC" "$REG_TOPIC/rejected" "$(reg "$token" SN0029)")
check "the token presented by another connection is rejected" grep -q errorCode <<<"$foreign"
ok1=$(rr claim-hand claim-hand "$REG_TOPIC" "$REG_TOPIC/accepted" "$(reg "$token" SN0029)")
check "the rightful connection registers with it" grep -q '"thingName":"SN0029"' <<<"$ok1"
replay=$(rr claim-hand claim-hand "$REG_TOPIC" "$REG_TOPIC/accepted" "$(reg "$token" SN0029)")
check "the same request again (its answer lost): accepted again, same thingName" grep -q '"thingName":"SN0029"' <<<"$replay"
replay=$(rr claim-hand claim-hand "$REG_TOPIC" "$REG_TOPIC/rejected" "$(reg "$token" SN0030)")
check "the used token for another serial is rejected" grep -q InvalidCertificateOwnershipToken <<<"$replay"

# Template and allowlist errors.
acc=$(rr claim-hand claim-hand "$CSR_TOPIC" "$CSR_TOPIC/accepted" "$(csr_json "$T/good.csr")")
token=$(json_field certificateOwnershipToken <<<"$acc")
unknown_t='$aws/provisioning-templates/nosuch/provision/json'
r=$(rr claim-hand claim-hand "$unknown_t" "$unknown_t/rejected" "$(reg "$token" SN0028)")
check "an unknown template is rejected" grep -q errorCode <<<"$r"
r=$(rr claim-hand claim-hand "$REG_TOPIC" "$REG_TOPIC/rejected" "{\"certificateOwnershipToken\":\"$token\",\"parameters\":{}}")
check "a missing parameter is rejected" grep -q errorCode <<<"$r"
r=$(rr claim-hand claim-hand "$REG_TOPIC" "$REG_TOPIC/rejected" "$(reg "$token" NOT-LISTED)")
check "a serial not on the allowlist is rejected" grep -q errorCode <<<"$r"
r=$(rr claim-hand claim-hand "$REG_TOPIC" "$REG_TOPIC/rejected" "$(reg "$token" SN0000)")
check "a serial already provisioned is rejected" grep -q errorCode <<<"$r"
check "  ... audited" audit_has "already-provisioned"

# The .../cbor topics by hand (the devsim runs above used them when
# ONB_PROV_FORMAT=cbor): answers in CBOR, strict decoding, each refusal audited.
if [ "$PROV_FORMAT" = cbor ]; then
	CSR_C='$aws/certificates/create-from-csr/cbor'
	REG_C='$aws/provisioning-templates/default/provision/cbor'
	CBORTOOL="$ONB_BUILD_DIR/tests/tools/cbortool"
	# Client id claim-cbor, not claim-hand: claimsvc's rate_per_client (20 a
	# second, per certificate and client id) would otherwise count the 15
	# requests above with these 8 whenever both fall in the same second.
	subs=$(timeout 20 python3 "$ONB_SOURCE_DIR/tests/security/mqttraw.py" "$MQTT_PORT" "$PKI/ca-bundle.pem" \
		"$T/claim-hand.pem" "$T/claim-hand.key" connect claim-cbor sub "$CSR_C/accepted" qos=1 \
		sub "$CSR_C/rejected" qos=1 sub "$REG_C/accepted" qos=1 sub "$REG_C/rejected" qos=1 close)
	check "a claim certificate may subscribe to the four cbor answer topics (SUBACK 1)" \
		test "$(awk '$1 == "suback" { print $3 }' <<<"$subs" | tr '\n' ' ')" = "1 1 1 1 "
	# cask TOPIC FILE: one request; KIND = accepted|rejected|none, the answer in $T/answer.cbor and as JSON in $T/answer.json
	cask() {
		rm -f "$T/answer.cbor"
		MQTTREQ_PAYLOAD_OUT="$T/answer.cbor" "$ONB_BUILD_DIR/tests/tools/mqttreq" "$MQTT_PORT" "$PKI/ca-bundle.pem" \
			"$T/claim-hand.pem" "$T/claim-hand.key" claim-cbor "$1" "$2" 5000 "$1/accepted" "$1/rejected" \
			> "$T/answer.raw" 2> /dev/null || true
		KIND=$(LC_ALL=C tr '\0\n' '??' < "$T/answer.raw" | LC_ALL=C sed -n 's|^[^ ]*/\([a-z]*\) .*|\1|p')
		KIND=${KIND:-none}
		"$CBORTOOL" tojson < "$T/answer.cbor" > "$T/answer.json" 2> /dev/null || : > "$T/answer.json"
	}
	jq -cn --rawfile c "$T/good.csr" '{certificateSigningRequest: $c}' | "$CBORTOOL" fromjson > "$T/good.cbor"
	cask "$CSR_C" "$T/good.cbor"
	check "a CBOR CreateCertificateFromCsr is answered in CBOR on the cbor accepted topic" \
		jq -e '.certificateOwnershipToken | test("^[0-9a-f]{64}$")' "$T/answer.json"
	check "  ... with the device certificate alone ($(stat -c %s "$T/answer.cbor") bytes)" \
		test "$(jq -r .certificatePem "$T/answer.json" | grep -c 'BEGIN CERTIFICATE')" -eq 1
	jq -c '{certificateOwnershipToken, parameters: {SerialNumber: "SN0027"}}' "$T/answer.json" \
		| "$CBORTOOL" fromjson > "$T/reg.cbor"
	cask "$REG_C" "$T/reg.cbor"
	check "a CBOR RegisterThing is answered in CBOR" \
		bash -c "[ $KIND = accepted ] && jq -e '.thingName == \"SN0027\" and .deviceConfiguration == {}' '$T/answer.json'"
	# each malformed document: InvalidPayload 400, in CBOR, audited
	bad_cbor() { printf "$2" > "$T/bad-$1.cbor"; }
	bad_cbor truncated '\xa1\x78\x19certificateSigningRequest\x63ab'
	bad_cbor not-a-map '\x81\x61x'
	bad_cbor duplicate-key '\xa2\x78\x19certificateSigningRequest\x61x\x78\x19certificateSigningRequest\x61y'
	bad_cbor integer-key '\xa2\x78\x19certificateSigningRequest\x61x\x01\x61y'
	bad_cbor unterminated-indefinite-map '\xbf\x78\x19certificateSigningRequest\x61x'
	bad_cbor deep '\xa2\x78\x19certificateSigningRequest\x61x\x61y\x81\x81\x81\x81\xa0'
	before=$(rcli --raw XRANGE onb:audit - + | grep -c 'InvalidPayload: ' || true)
	for b in truncated not-a-map duplicate-key integer-key unterminated-indefinite-map deep; do
		cask "$CSR_C" "$T/bad-$b.cbor"
		check "malformed CBOR ($b): InvalidPayload 400 in CBOR on the cbor rejected topic" \
			bash -c "[ $KIND = rejected ] && jq -e '.statusCode == 400 and .errorCode == \"InvalidPayload\"' '$T/answer.json'"
	done
	audited() { [ "$(rcli --raw XRANGE onb:audit - + | grep -c 'InvalidPayload: ')" -ge $((before + 6)) ]; }
	check "  ... each one audited" wait_for 3 audited
	# an indefinite-length map with its break is fine
	printf '\xbf\x78\x19certificateSigningRequest\x7f\x61x\xff\xff' > "$T/indef.cbor"
	cask "$CSR_C" "$T/indef.cbor"
	check "an indefinite-length map and string are decoded (then the CSR itself is refused: InvalidCsr)" \
		jq -e '.errorCode == "InvalidCsr"' "$T/answer.json"
	: > "$T/empty.cbor"
	cask '$aws/certificates/create/cbor' "$T/empty.cbor"
	check "CreateKeysAndCertificate in CBOR (off here): CreateKeysAndCertificateDisabled 403, in CBOR" \
		bash -c "[ $KIND = rejected ] && jq -e '.statusCode == 403 and .errorCode == \"CreateKeysAndCertificateDisabled\"' '$T/answer.json'"
	csr_json "$T/good.csr" > "$T/good.json"
	cask "$CSR_C" "$T/good.json"
	check "a JSON request on the cbor topic is rejected (InvalidPayload, in CBOR)" \
		bash -c "[ $KIND = rejected ] && jq -e '.errorCode == \"InvalidPayload\"' '$T/answer.json'"
fi

# claimsvc dies; devices fail; it comes back; they retry and all succeed, once each.
kill "${CLAIMSVC_PIDS[0]}"; wait "${CLAIMSVC_PIDS[0]}" 2>/dev/null || true
refute "with claimsvc down, provisioning times out" devsim_claim --serial-prefix SN --serial-start 21 -n 4 -c 4 --timeout 1500
start_claimsvc claimsvc-1
check "with claimsvc back, the retrying devices all provision" \
	devsim_claim --serial-prefix SN --serial-start 21 -n 4 -c 4
bound=$(rcli --scan --pattern 'onb:fp:*' | wc -l)
devs=$("$ONBOARDCTL" --json device list | grep -o '"cert_fp":"[0-9a-f]\{64\}"' | sort -u | wc -l)
check "no certificate is bound twice ($bound bindings, $devs devices with a certificate)" test "$bound" -eq "$devs"

finish

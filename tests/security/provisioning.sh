# Attack catalogue: provisioning and claiming. What a holder of the shared
# claim certificate, a birth certificate, a device's operational certificate
# or a tenant's back-end certificate can try against claimsvc: reach beyond
# the provisioning topics, steal requests, forge replies, replay or borrow
# ownership tokens, name another device through a CSR or RegisterThing,
# weak/odd/huge CSRs and keys the broker would refuse (explicit EC
# parameters), oversized and malformed JSON, retained requests, a
# quarantined device re-provisioning itself, a service without a tenant
# claiming, and claim-code brute force by one tenant that must not lock out
# another tenant behind the same address.
#
# Every provisioning or claim rejection is audited by claimsvc (one entry,
# checked with audit_match). ACL denials (PUBACK/SUBACK 0x87) are not audited
# by design (no Redis on the per-message path): for those the test checks the
# answer, the broker's log, and that a spy reading everything saw nothing.
source "$(dirname "$0")/../integration/harness.sh"
source "$(dirname "$0")/lib.sh"
up
CLAIMSVC_EXTRA="claim_max_failures 3" start_claimsvc claimsvc-1

CSR_T='$aws/certificates/create-from-csr/json'
REG_T='$aws/provisioning-templates/default/provision/json'
printf 'serial\n' > "$T/allow.csv"
for i in $(seq 1 9); do printf 'P000%d\n' "$i" >> "$T/allow.csv"; done
"$ONBOARDCTL" allowlist import "$T/allow.csv" > /dev/null

new_device claim-a claim-ca
new_device claim-b claim-ca
new_device BIRTH-A manufacturer-ca
new_device dev-1; register dev-1 active
make_spy spy
make_spy spy2
make_spy rogue   # a device whose (operator-given) policy lets it publish on $aws/#
spy_bg spy "$T/spy.out"
for a in acme beta; do
	for n in "app-$a" "app-$a-2"; do
		"$ONBOARDCTL" pki issue --ca "$PKI/service-ca" --cn "$n" --tenant "$a" --out "$T/$n" > /dev/null
	done
done
new_device claimsvc-9 service-ca   # a service certificate without a tenant

# ask AS CLIENTID TOPIC FILE: one request on one connection; the answer's
# topic suffix in KIND (accepted|rejected|none) and its document in $T/reply.json.
# With ONB_PROV_FORMAT=cbor (security.provisioning_cbor) a request for an
# $aws/.../json topic goes to its .../cbor twin, as CBOR when FILE is JSON
# (cbortool; anything else as it is), and the answer is read back as JSON.
ask() {
	local out topic=$3 file=$4
	if [ "$PROV_FORMAT" = cbor ] && [[ $topic == '$aws/'*/json ]]; then
		topic=${topic%/json}/cbor
		file="$T/ask.cbor"
		if grep -qF '\u0000' "$4"; then
			# cJSON cannot hold a NUL: \u0001 stands in for it, then
			# becomes the NUL byte a CBOR text string can carry
			sed 's/\\u0000/\\u0001/g' "$4" | "$ONB_BUILD_DIR/tests/tools/cbortool" fromjson \
				| LC_ALL=C sed 's/\x01/\x00/g' > "$file"
		else
			"$ONB_BUILD_DIR/tests/tools/cbortool" fromjson < "$4" > "$file" 2> /dev/null || cp "$4" "$file"
		fi
	fi
	SENT_BYTES=$(stat -c %s "$file")
	rm -f "$T/reply.raw"
	MQTTREQ_PAYLOAD_OUT="$T/reply.raw" "$ONB_BUILD_DIR/tests/tools/mqttreq" "$MQTT_PORT" "$PKI/ca-bundle.pem" \
		"$T/$1.pem" "$T/$1.key" "$2" "$topic" "$file" 5000 "$topic/accepted" "$topic/rejected" \
		> "$T/reply.out" 2> /dev/null || true
	# (a CBOR answer is binary: the topic is read in the C locale)
	out=$(LC_ALL=C tr '\0\n' '??' < "$T/reply.out")
	KIND=$(LC_ALL=C sed -n '1s|^[^ ]*/\([a-z]*\) .*|\1|p' <<<"$out")
	KIND=${KIND:-none}
	if [ "$topic" != "$3" ]; then
		"$ONB_BUILD_DIR/tests/tools/cbortool" tojson < "$T/reply.raw" > "$T/reply.json" 2> /dev/null || : > "$T/reply.json"
	else
		cp "$T/reply.raw" "$T/reply.json" 2> /dev/null || : > "$T/reply.json"
	fi
}
code() { jq -r '.errorCode // empty' "$T/reply.json" 2> /dev/null; }
status() { jq -r '.statusCode // empty' "$T/reply.json" 2> /dev/null; }
# rejected_audited CODE ACTION: the answer was CODE and one audit entry says so.
rejected_with() { [ "$KIND" = rejected ] && [ "$(code)" = "$1" ]; }
refusal_audited() { audit_match "action=$2" 'result=refused|error' "reason=$1"; }
tokens() { rcli --scan --pattern 'onb:tok:*' | wc -l; }
pending() { rcli --scan --pattern 'onb:pending:*' | wc -l; }
nowhere() { sleep 0.3; ! grep -qF -- "$1" "$T/spy.out"; }
csr_file() { csr_json "$1" > "$2"; }
reg_file() { jq -cn --arg t "$1" --arg s "$2" '{certificateOwnershipToken: $t, parameters: {SerialNumber: $s}}' > "$3"; }

new_csr good -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=whatever
csr_file "$T/good.csr" "$T/good.json"

# ---------------------------------------------------------------- beyond the provisioning topics
# (CBOR: the victim waits on the cbor answers, and the forged envelope
# carries its answer as payloadBase64, "ATK-P1" in base64)
VT=$CSR_T
forged='{"v":1,"clientId":"victim-1","topic":"$aws/certificates/create-from-csr/json/accepted","payload":"ATK-P1"}'
if [ "$PROV_FORMAT" = cbor ]; then
	VT=${CSR_T%/json}/cbor
	forged='{"v":1,"clientId":"victim-1","topic":"$aws/certificates/create-from-csr/cbor/accepted","payloadBase64":"QVRLLVAx"}'
fi
raw_bg claim-b "$T/victim.out" connect victim-1 sub "$VT/accepted" sub "$VT/rejected" wait 3000 close
wait_for 5 grep -q "suback 2 0" "$T/victim.out"
out=$(raw claim-a connect claim-a pub devices/claim-a/telemetry ATK-P1 qos=1 pub devices/dev-1/telemetry ATK-P1 qos=1 \
	pub onb/internal/prov/reply "$forged" qos=1 pub "$VT/accepted" ATK-P1 qos=1 \
	pub onb/internal/prov/request ATK-P1 qos=1 pub onb/claim/json ATK-P1 qos=1 \
	sub '#' sub 'devices/#' sub '$aws/#' sub "$VT/+" sub '$share/claimsvc/onb/internal/prov/request' \
	sub 'onb/internal/prov/reply' sub '$onb/#' close)
check "claim identity: telemetry, forged replies, fake answers, forged requests, claims: 6 x 0x87" \
	test "$(awk '$1 == "puback" { print $3 }' <<<"$out" | tr '\n' ' ')" = "135 135 135 135 135 135 "
check "  ... '#', devices/#, \$aws/#, answers of others, stealing requests, replies, \$onb/#: 7 x 0x87" \
	test "$(awk '$1 == "suback" { print $3 }' <<<"$out" | tr '\n' ' ')" = "135 135 135 135 135 135 135 "
wait "$RAW_PID" || true
refute "  ... the waiting victim received no forged answer" grep -q ATK-P1 "$T/victim.out"
check "  ... nor did anyone else" nowhere ATK-P1
out=$(raw app-acme connect app-acme pub onb/internal/prov/reply "$forged" qos=1 pub "$CSR_T" ATK-P1b qos=1 \
	sub '$share/claimsvc/onb/internal/prov/request' sub '$share/claimsvc/onb/internal/claim/request' \
	sub 'onb/internal/claim/request' sub 'onb/internal/#' sub '$onb/#' sub '$aws/#' close)
check "tenant back-end: forged reply, provisioning request: 0x87; stealing requests, \$onb, \$aws: 6 x 0x87" \
	bash -c "[ \"\$(awk '\$1==\"puback\"{print \$3}' <<<'$out' | tr '\n' ' ')\" = '135 135 ' ] &&
	         [ \"\$(awk '\$1==\"suback\"{print \$3}' <<<'$out' | tr '\n' ' ')\" = '135 135 135 135 135 135 ' ]"
check "  ... nothing leaked" nowhere ATK-P1b
quiet_devsim() { devsim_claim "$@" > "$T/devsim.out" 2>&1; }
check "claimsvc still gets the requests: a device provisions" quiet_devsim --serial P0009

# ---------------------------------------------------------------- operational certificates do not provision
tok0=$(tokens)
out=$(raw dev-1 connect dev-1 pub "$CSR_T" x qos=1 file="$T/good.json" close)
check "dev-1's operational certificate cannot publish a CSR (0x87)" grep -q "puback 1 135" <<<"$out"
denied_logged() { grep -F "Denied PUBLISH from $1 " "$T/mosquitto.log" | grep -F "'$2'" >/dev/null; }
check "  ... the broker denied it" wait_for 3 denied_logged dev-1 "$CSR_T"
mark_audit
ask rogue rogue "$CSR_T" "$T/good.json"
check "even when a policy lets a device publish there, claimsvc refuses: AccessDenied" rejected_with AccessDenied
check "  ... audited with the device class" audit_match action=create-from-csr result=refused 'reason=AccessDenied.*requester device rogue'
check "  ... and no token was issued" test "$(tokens)" -eq "$tok0"

# ---------------------------------------------------------------- nothing under $aws/ is broadcast
BADT='$aws/provisioning-templates/a.b/provision/json'
reg_file "ATK-AWS1" P0001 "$T/badt.json"
mark_audit
ask claim-a claim-a "$BADT" "$T/badt.json"
check "a RegisterThing on an invalid template name (a.b) is answered: InvalidTemplateName" \
	rejected_with InvalidTemplateName
check "  ... audited" audit_match action=register-thing result=refused 'reason=InvalidTemplateName'
check "  ... and its request (token included) reached no spy reading \$aws/#" nowhere ATK-AWS1
out=$(raw rogue connect rogue pub "$CSR_T/accepted" ATK-AWS2 qos=1 pub "$CSR_T/extra" ATK-AWS2 qos=1 \
	pub '$aws/things/x/shadow/update' ATK-AWS2 qos=1 close)
check "a device whose policy allows \$aws/# cannot publish answers or other \$aws/ topics (3 x 0x87)" \
	test "$(grep -c 'puback [0-9]* 135' <<<"$out")" -eq 3
check "  ... and none reached a spy" nowhere ATK-AWS2
if [ "$PROV_FORMAT" = cbor ]; then
	CSR_C='$aws/certificates/create-from-csr/cbor'
	out=$(raw rogue connect rogue pub "$CSR_C/accepted" ATK-AWS3 qos=1 pub "$CSR_C/rejected" ATK-AWS3 qos=1 \
		pub "$CSR_C/extra" ATK-AWS3 qos=1 pub '$aws/provisioning-templates/x/provision/cbor/accepted' ATK-AWS3 qos=1 close)
	check "nor forge cbor answers, or a cbor request topic with more levels (4 x 0x87)" \
		test "$(grep -c 'puback [0-9]* 135' <<<"$out")" -eq 4
	check "  ... and none reached a spy" nowhere ATK-AWS3
fi
out=$(raw rogue connect rogue sub '$share/claimsvc/onb/internal/prov/request' sub 'onb/internal/#' \
	sub '$share/x/onb/internal/claim/request' close)
check "a device whose policy allows '#' cannot subscribe to the internal tree, shared or not (3 x 0x87)" \
	test "$(grep -c 'suback [0-9]* 135' <<<"$out")" -eq 3

# ---------------------------------------------------------------- ownership tokens
ask claim-a tok-1 "$CSR_T" "$T/good.json"
T1=$(jq -r .certificateOwnershipToken "$T/reply.json")
jq -r .certificatePem "$T/reply.json" | openssl x509 -out "$T/tok1.pem" 2> /dev/null || true
check "a claim connection gets a certificate and a token" test ${#T1} -eq 64
reg_file "$T1" P0001 "$T/reg1.json"
mark_audit
ask claim-b tok-1 "$REG_T" "$T/reg1.json"
check "the token from another claim certificate with the same client id: Mismatch" \
	rejected_with CertificateOwnershipTokenMismatch
check "  ... audited as token-foreign" refusal_audited token-foreign register-thing
ask BIRTH-A tok-1 "$REG_T" "$T/reg1.json"
check "the token from a birth certificate with the same client id: Mismatch" \
	rejected_with CertificateOwnershipTokenMismatch
check "  ... audited" test "$(audit_count action=register-thing result=refused reason=token-foreign)" -eq 2
reg_file "$(openssl rand -hex 32)" P0001 "$T/forged.json"
ask claim-a tok-1 "$REG_T" "$T/forged.json"
check "a made-up token: InvalidCertificateOwnershipToken" rejected_with InvalidCertificateOwnershipToken
check "  ... audited as token-invalid" refusal_audited token-invalid register-thing
for bad in '../../etc/passwd' "$(head -c 10240 /dev/zero | tr '\0' f)" 'ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789'; do
	reg_file "$bad" P0001 "$T/badtok.json"
	mark_audit
	ask claim-a tok-1 "$REG_T" "$T/badtok.json"
	check "a malformed token (${#bad} bytes) is rejected ($(code))" test "$KIND" = rejected
	check "  ... and audited" audit_match action=register-thing 'result=refused'
done

# A CSR cannot choose the name: the subject, SANs, and a CA request are ignored.
new_csr evil -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj '/O=tenant:acme/CN=dev-1' \
	-addext 'subjectAltName=DNS:dev-1,URI:mqtt://dev-1' -addext 'basicConstraints=critical,CA:TRUE'
csr_file "$T/evil.csr" "$T/evil.json"
ask claim-a evil-1 "$CSR_T" "$T/evil.json"
TE=$(jq -r .certificateOwnershipToken "$T/reply.json")
jq -r .certificatePem "$T/reply.json" | openssl x509 -out "$T/evil-1.pem" 2> /dev/null
cp "$T/evil.csr.key" "$T/evil-1.key"
check "a CSR naming dev-1 (CN, O, SAN, CA:TRUE) is signed..." test "$KIND" = accepted
check "  ... with a CN that is not dev-1" bash -c "! openssl x509 -in '$T/evil-1.pem' -noout -subject | grep -q 'dev-1\|tenant'"
check "  ... no subjectAltName, and CA:FALSE" bash -c \
	"openssl x509 -in '$T/evil-1.pem' -noout -text > '$T/evil.txt'; ! grep -q 'Subject Alternative Name' '$T/evil.txt' && grep -q 'CA:FALSE' '$T/evil.txt'"
mark_audit
check "  ... and that certificate cannot connect as dev-1" test "$(raw evil-1 connect dev-1 close | sed -n 1p)" = "connack 135"
check "  ... audited: not bound to a device" audit_match action=connect result=deny 'reason=not bound'
reg_file "$TE" dev-1 "$T/reg-dev1.json"
mark_audit
ask claim-a evil-1 "$REG_T" "$T/reg-dev1.json"
check "RegisterThing as existing device dev-1: DeviceAlreadyProvisioned" rejected_with DeviceAlreadyProvisioned
check "  ... audited" refusal_audited already-provisioned register-thing
for s in 'P0001/#' 'P0001+' '../P0002' '' "$(head -c 300 /dev/zero | tr '\0' P)" 'P0001 ' 'P0001\u0000x'; do
	jq -cn --arg t "$TE" --arg s "$s" '{certificateOwnershipToken: $t, parameters: {SerialNumber: $s}}' > "$T/inj.json"
	[ "$s" = 'P0001\u0000x' ] && sed -i 's/\\\\u0000/\\u0000/' "$T/inj.json"
	mark_audit
	ask claim-a evil-1 "$REG_T" "$T/inj.json"
	check "SerialNumber '${s:0:20}' (${#s} B) cannot make a thing name ($(code))" \
		bash -c "[ '$KIND' = rejected ] && [ '$(code)' != DeviceAlreadyProvisioned ]"
	check "  ... audited" audit_match 'action=register-thing' 'result=refused'
done
check "dev-1 is unchanged" bash -c "\"$ONBOARDCTL\" --json device show dev-1 | grep -q '\"state\":\"active\"'"
reg_file "$TE" P0002 "$T/reg-ok.json"
ask claim-a evil-1 "$REG_T" "$T/reg-ok.json"
check "the token survived the refusals: P0002 registers with it" test "$KIND" = accepted
mark_audit
ask claim-a evil-1 "$REG_T" "$T/reg-ok.json"
check "the same request again by its connection (a lost answer): accepted, thingName P0002" \
	bash -c "[ '$KIND' = accepted ] && [ \"\$(jq -r .thingName '$T/reply.json')\" = P0002 ]"
replayed_once() {
	[ "$(audit_count action=register-thing result=replay device=P0002)" -eq 1 ] &&
		[ "$(audit_count action=register-thing result=ok)" -eq 0 ]
}
check "  ... audited as a replay, not as a second registration" replayed_once
reg_file "$TE" P0003 "$T/reg-other.json"
mark_audit
ask claim-a evil-1 "$REG_T" "$T/reg-other.json"
check "the used token for another serial: InvalidCertificateOwnershipToken" rejected_with InvalidCertificateOwnershipToken
check "  ... audited as token-used" refusal_audited token-used register-thing
check "  ... and P0003 is still only allowlisted" bash -c \
	"\"$ONBOARDCTL\" --json device show P0003 | grep -q '\"state\":\"manufactured\"'"
mark_audit
ask claim-b evil-1 "$REG_T" "$T/reg-ok.json"
check "the same request with the used token from another claim certificate: InvalidCertificateOwnershipToken" \
	rejected_with InvalidCertificateOwnershipToken
check "  ... audited as token-used" refusal_audited token-used register-thing
reg_file "$T1" P0001 "$T/reg1.json"
ask claim-a tok-1 "$REG_T" "$T/reg1.json"
check "the rightful holder of the first token still registers P0001" test "$KIND" = accepted

# ---------------------------------------------------------------- CSRs claimsvc must refuse
new_csr k1 -newkey ec -pkeyopt ec_paramgen_curve:secp256k1 -subj /CN=x
new_csr p521 -newkey ec -pkeyopt ec_paramgen_curve:P-521 -subj /CN=x
new_csr sha1 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha1 -subj /CN=x
new_csr e3 -newkey rsa:2048 -pkeyopt rsa_keygen_pubexp:3 -subj /CN=x
cat "$T/good.csr" "$T/good.csr" > "$T/double.csr"
sans=$(for i in $(seq 1 900); do printf 'DNS:host-%04d.example.com,' "$i"; done)
new_csr huge -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=x -addext "subjectAltName=${sans%,}"
echo "# a valid CSR with 900 SANs: $(wc -c < "$T/huge.csr") bytes"
tok0=$(tokens); pend0=$(pending)
for c in k1:UnsupportedKeyType p521:UnsupportedKeyType sha1:UnsupportedSignatureAlgorithm e3:WeakKey \
		double:InvalidCsr huge:CsrTooLarge; do
	name=${c%%:*} want=${c#*:}
	csr_file "$T/$name.csr" "$T/$name.json"
	mark_audit
	ask claim-a "csr-$name" "$CSR_T" "$T/$name.json"
	check "CSR $name: $want ($(code) $(status))" rejected_with "$want"
	check "  ... audited" refusal_audited "$want" create-from-csr
done
check "no token and no pending certificate for any of them" \
	test "$(tokens)/$(pending)" = "$tok0/$pend0"

# ---------------------------------------------------------------- a key the broker would refuse
# P-256 with explicit curve parameters: OpenSSL 3 names the curve of such a
# key too, but its certificate fails strict verification and the broker's
# TLS. Had it been signed and registered, P0004 could never connect and a
# retry would get DeviceAlreadyProvisioned. Refused before anything is issued.
openssl ecparam -name prime256v1 -genkey -param_enc explicit -out "$T/explicit.key" 2> /dev/null
openssl req -new -key "$T/explicit.key" -subj /CN=x -out "$T/explicit.csr" 2> /dev/null
csr_file "$T/explicit.csr" "$T/explicit.json"
tok0=$(tokens); pend0=$(pending)
mark_audit
ask claim-a dev-p4 "$CSR_T" "$T/explicit.json"
check "a CSR with explicit P-256 parameters: UnsupportedKeyType 400 ($(code) $(status))" \
	bash -c "[ '$KIND' = rejected ] && [ '$(code)' = UnsupportedKeyType ] && [ '$(status)' = 400 ]"
check "  ... saying why" grep -q "explicit curve parameters" "$T/reply.json"
check "  ... audited" audit_match action=create-from-csr result=refused \
	'reason=^UnsupportedKeyType: .*explicit curve parameters.*requester claim dev-p4 '
check "  ... no token, no pending certificate, and P0004 is still only allowlisted" bash -c \
	"[ '$(tokens)/$(pending)' = '$tok0/$pend0' ] &&
	 \"$ONBOARDCTL\" --json device show P0004 | jq -e '.state == \"manufactured\" and (.cert_fp // \"\") == \"\"' > /dev/null"
# The same device tries again with an ordinary key. Its first certificate
# is lost before RegisterThing (say, a power cut): that leaves nothing
# bound, and a second CSR, a second token and RegisterThing succeed.
new_csr p4a -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=x
csr_file "$T/p4a.csr" "$T/p4a.json"
ask claim-a dev-p4 "$CSR_T" "$T/p4a.json"
check "the same device with a named P-256 key: a certificate" test "$KIND" = accepted
new_csr p4 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=x
csr_file "$T/p4.csr" "$T/p4.json"
ask claim-a dev-p4 "$CSR_T" "$T/p4.json"
T4=$(jq -r .certificateOwnershipToken "$T/reply.json")
jq -r .certificatePem "$T/reply.json" | openssl x509 -out "$T/p4.pem" 2> /dev/null || true
cp "$T/p4.csr.key" "$T/p4.key"
check "  ... lost before RegisterThing; a second CSR gets another certificate and token" \
	bash -c "[ '$KIND' = accepted ] && [ ${#T4} -eq 64 ]"
check "  ... which verifies strictly under the broker's CA bundle" \
	openssl verify -x509_strict -purpose sslclient -CAfile "$PKI/ca-bundle.pem" "$T/p4.pem"
reg_file "$T4" P0004 "$T/reg-p4.json"
mark_audit
ask claim-a dev-p4 "$REG_T" "$T/reg-p4.json"
check "  ... RegisterThing P0004: accepted" \
	bash -c "[ '$KIND' = accepted ] && [ \"\$(jq -r .thingName '$T/reply.json')\" = P0004 ]"
check "  ... audited" audit_match action=register-thing result=ok device=P0004
check "  ... and P0004 connects with it" test "$(raw p4 connect P0004 close | sed -n 1p)" = "connack 0"

# claimsvc checks a throwaway certificate of its own at start: a device CA
# whose certificates would all fail (here its own key has explicit
# parameters) stops it there, instead of failing every device.
openssl ecparam -name prime256v1 -genkey -param_enc explicit -out "$T/explicit-ca.key" 2> /dev/null
openssl req -x509 -new -key "$T/explicit-ca.key" -subj /CN=explicit-ca -days 30 \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
	-out "$T/explicit-ca.pem" 2> /dev/null
sed -e "s|^device_ca_cert .*|device_ca_cert $T/explicit-ca.pem|" -e "s|^device_ca_key .*|device_ca_key $T/explicit-ca.key|" \
	"$T/claimsvc-1.conf" > "$T/explicit-ca.conf"
check "claimsvc accepts its own configuration (--check)" "$CLAIMSVC" --check -c "$T/claimsvc-1.conf"
refute "  ... but not a device CA whose certificates fail strict verification" \
	"$CLAIMSVC" --check -c "$T/explicit-ca.conf" 2> "$T/explicit-ca.out"
check "  ... and says why" grep -q "device CA: .*explicit ECC parameters (at depth 1" "$T/explicit-ca.out"

# ---------------------------------------------------------------- oversized and malformed JSON
{ printf '{"certificateSigningRequest":"'; head -c 70000 /dev/zero | tr '\0' A; printf '"}'; } > "$T/j-70k.json"
{ printf '{"certificateSigningRequest":'; head -c 50000 /dev/zero | tr '\0' '['; } > "$T/j-deep.json"
printf '{"certificateSigningRequest":"\xff\xfe\xc3\x28"}' > "$T/j-utf8.json"
printf '{"certificateSigningRequest":"a","certificateSigningRequest":"b"}' > "$T/j-dup.json"
printf '{"certificateSigningRequest":"-----BEGIN\\u0000"}' > "$T/j-u0.json"
printf '{"certificateSigningRequest":"abc\0def"}' > "$T/j-nul.json"
: > "$T/j-empty.json"
printf '["certificateSigningRequest"]' > "$T/j-array.json"
printf '{"certificateSigningRequest":1e999999}' > "$T/j-num.json"
printf '{"certificateSigningRequest":"x"} trailing' > "$T/j-trail.json"
for f in deep utf8 dup u0 empty array num trail; do
	mark_audit
	ask claim-b "json-$f" "$CSR_T" "$T/j-$f.json"
	check "provisioning JSON '$f': rejected ($(code) $(status))" test "$KIND" = rejected
	check "  ... audited" audit_match action=create-from-csr 'result=refused'
done
# The broker refuses these two itself and forwards only their size (no Redis
# on the message path); claimsvc answers and audits them.
mark_audit
ask claim-b json-70k "$CSR_T" "$T/j-70k.json"
check "70 KB request refused by the broker: PayloadTooLarge 413 from claimsvc" \
	bash -c "[ '$KIND' = rejected ] && [ '$(code)' = PayloadTooLarge ] && [ '$(status)' = 413 ]"
check "  ... audited with its size and the requester, once" \
	test "$(audit_count action=create-from-csr result=refused \
		"reason=^PayloadTooLarge: .* $SENT_BYTES bytes.*requester claim json-70k ")" -eq 1
mark_audit
ask claim-b json-nul "$CSR_T" "$T/j-nul.json"
if [ "$PROV_FORMAT" = cbor ]; then
	# CBOR carries NUL bytes (base64 in the envelope): this text is just not CBOR
	check "a NUL byte in a (non-)CBOR request: InvalidPayload 400 from claimsvc" \
		bash -c "[ '$KIND' = rejected ] && [ '$(code)' = InvalidPayload ] && [ '$(status)' = 400 ]"
	check "  ... audited (requester)" audit_match action=create-from-csr result=refused \
		"reason=^InvalidPayload: .*requester claim json-nul "
else
check "a NUL byte refused by the broker: InvalidPayload 400 from claimsvc" \
	bash -c "[ '$KIND' = rejected ] && [ '$(code)' = InvalidPayload ] && [ '$(status)' = 400 ]"
check "  ... audited (NUL, size, requester)" audit_match action=create-from-csr result=refused \
	"reason=^InvalidPayload: .* $(stat -c %s "$T/j-nul.json") bytes contains a NUL byte.*requester claim json-nul "
fi
check "  ... no byte of either payload in the audit stream" \
	bash -c "! redis-cli -p $REDIS_PORT --raw XRANGE onb:audit - + | grep -q AAAAAAAA"
# (a flood on the json topic, shed by the broker: the same in both formats; run by the JSON pass only)
if [ "$PROV_FORMAT" = json ]; then
# A flood of requests on one connection is shed by the broker plugin before
# claimsvc: the connection's budget (a burst of 10, at most 4 unanswered)
# lets a few through; the rest get PUBACK 0x87 and are on record as one
# entry, then one count when the aggregation window closes.
mark_audit
ops=(connect flood-1)
for _ in $(seq 1 100); do ops+=(pub "$CSR_T" x qos=1 file="$T/j-nul.json"); done
out=$(raw claim-b "${ops[@]}" close)
taken=$(grep -c '^puback [0-9]* 0$' <<<"$out")
shed=$(grep -c '^puback [0-9]* 135$' <<<"$out")
check "100 requests on one connection: $taken reach claimsvc, $shed refused by the broker (0x87)" \
	bash -c "[ $taken -ge 1 ] && [ $taken -le 10 ] && [ $((taken + shed)) -eq 100 ]"
n_shed=$(audit_count action=request result=deny 'reason=^request-' class=claim)
n_ent=$(rcli --json XRANGE onb:audit "($AUDIT_MARK" + | jq '[.[] | select(.[1] | index("request"))] | length')
check "  ... the $shed refusals on record ($n_shed counted, in $n_ent entries)" \
	bash -c "[ $n_shed -eq $shed ] && [ $n_ent -le 4 ]"
n_ref=$(audit_count action=create-from-csr result=refused 'reason=^InvalidPayload.*requester claim flood-1 ')
check "  ... claimsvc answered and audited only what reached it ($n_ref)" test "$n_ref" -eq "$taken"
fi
printf '{"certificateOwnershipToken":"%s","parameters":{"SerialNumber":{"$ne":""}}}' "$T1" > "$T/j-param.json"
mark_audit
ask claim-a tok-1 "$REG_T" "$T/j-param.json"
check "RegisterThing with a non-string parameter: rejected ($(code))" test "$KIND" = rejected
check "  ... audited" audit_match action=register-thing result=refused

# (claims, onb/claim/json: the same in both formats; run by the JSON pass only)
if [ "$PROV_FORMAT" = json ]; then
new_device dev-u; register dev-u unclaimed
CODE=$("$ONBOARDCTL" claimcode issue --device dev-u --format uri)
claim() { ask "$1" "$1" onb/claim/json "$2"; }
printf 'not json' > "$T/c-bad.json"
{ printf '{"claimCode":"'; head -c 70000 /dev/zero | tr '\0' A; printf '"}'; } > "$T/c-70k.json"
printf '{"claimCode":"%s\0"}' "$CODE" > "$T/c-nul.json"
for c in bad:InvalidRequest:400 70k:PayloadTooLarge:413 nul:InvalidRequest:400; do
	IFS=: read -r f want st <<<"$c"
	mark_audit
	claim app-acme-2 "$T/c-$f.json"
	check "claim request '$f': rejected $want $st ($(code) $(status))" \
		bash -c "[ '$KIND' = rejected ] && [ '$(code)' = $want ] && [ '$(status)' = $st ]"
	check "  ... audited" audit_match action=claim 'result=refused' "reason=^$want: .*tenant acme"
done
check "  ... and dev-u is still unclaimed (its code was in the NUL request)" bash -c \
	"\"$ONBOARDCTL\" --json device show dev-u | grep -q '\"state\":\"unclaimed\"'"
fi

# ---------------------------------------------------------------- retained requests are not kept
# (raw on the json topic: the same in both formats; run by the JSON pass only)
if [ "$PROV_FORMAT" = json ]; then
out=$(raw claim-b connect ret-1 sub "$CSR_T/accepted" pub "$CSR_T" x qos=1 retain=1 file="$T/good.json" wait 1500 close)
check "a retained CSR request is still answered" grep -q "msg $CSR_T/accepted" <<<"$out"
out=$(raw spy2 connect spy2 sub 'onb/#' sub '$aws/#' sub '$onb/#' wait 800 close)
# (a late, emptied reply envelope on $onb/void is live traffic, not retained)
refute "  ... but nothing retained it (request, envelope or reply)" bash -c 'grep "^msg" | grep -vq "^msg \$onb/void"' <<<"$out"
fi

# ---------------------------------------------------------------- a quarantined device tries to get out
new_device dev-q; register dev-q active
"$ONBOARDCTL" device quarantine dev-q --reason "suspicious" > /dev/null
out=$(raw dev-q connect dev-q pub devices/dev-q/status ok qos=1 pub devices/dev-q/telemetry ATK-Q qos=1 \
	pub devices/dev-q/shadow/update ATK-Q qos=1 pub "$CSR_T" x qos=1 file="$T/good.json" \
	sub 'devices/dev-q/#' sub '#' sub "$CSR_T/accepted" close)
check "quarantined, reconnected: status accepted, telemetry/shadow/CSR 0x87" \
	grep -qE '^(0|16) 135 135 135 $' <<<"$(awk '$1 == "puback" { print $3 }' <<<"$out" | tr '\n' ' ')"
check "  ... devices/dev-q/#, '#', provisioning answers: 0x87" \
	test "$(awk '$1 == "suback" { print $3 }' <<<"$out" | tr '\n' ' ')" = "135 135 135 "
ask claim-a dev-q-re "$CSR_T" "$T/good.json"
TQ=$(jq -r .certificateOwnershipToken "$T/reply.json")
jq -r .certificatePem "$T/reply.json" | openssl x509 -out "$T/dev-q-new.pem" 2> /dev/null
cp "$T/good.csr.key" "$T/dev-q-new.key"
reg_file "$TQ" dev-q "$T/reg-q.json"
mark_audit
ask claim-a dev-q-re "$REG_T" "$T/reg-q.json"
check "with the shared claim certificate it gets a certificate, but RegisterThing as dev-q: DeviceAlreadyProvisioned" \
	rejected_with DeviceAlreadyProvisioned
check "  ... audited" refusal_audited already-provisioned register-thing
fpq=$("$ONBOARDCTL" pki fingerprint "$T/dev-q.pem")
check "  ... dev-q stays quarantined on its old certificate" bash -c \
	"\"$ONBOARDCTL\" --json device show dev-q | jq -e '.state == \"quarantined\" and .cert_fp == \"$fpq\"' > /dev/null"
mark_audit
check "  ... and the new certificate cannot connect as dev-q" \
	test "$(raw dev-q-new connect dev-q close | sed -n 1p)" = "connack 135"
check "  ... audited" audit_match action=connect result=deny 'reason=not bound'
check "nothing it sent got out" nowhere ATK-Q

# ---------------------------------------------------------------- claims: wrong identities and brute force
# (onb/claim/json: the same in both formats; run by the JSON pass only)
if [ "$PROV_FORMAT" = json ]; then
echo '{"claimCode":"'"$CODE"'"}' > "$T/c-good.json"
mark_audit
out=$(raw claimsvc-9 connect claimsvc-9 pub onb/claim/json x qos=1 file="$T/c-good.json" close)
check "a service certificate without a tenant cannot claim (0x87)" grep -q "puback 1 135" <<<"$out"
out=$(raw claim-a connect claim-a pub onb/claim/json x qos=1 file="$T/c-good.json" close)
check "nor can the claim certificate (0x87)" grep -q "puback 1 135" <<<"$out"
sleep 0.3
n_claims=$(audit_count action='^claim$')
check "  ... no claim reached claimsvc (no claim audited: $n_claims) and dev-u is unclaimed" bash -c \
	"[ $n_claims -eq 0 ] && \"$ONBOARDCTL\" --json device show dev-u | grep -q '\"state\":\"unclaimed\"'"

# Three wrong codes from acme's back-end lock acme out, and acme only: beta's
# back-end, connecting from the same address (one host, a NAT, a load
# balancer), claims with a right code at once, and acme stays locked.
new_device dev-v; register dev-v unclaimed
mark_audit
for i in 1 2 3; do
	W=$("$ONBOARDCTL" claimcode issue --device dev-v --format uri)   # real codes, superseded each time
	"$ONBOARDCTL" claimcode revoke --device dev-v > /dev/null
	echo '{"claimCode":"'"$W"'"}' > "$T/c-wrong.json"
	claim app-acme-2 "$T/c-wrong.json"
done
check "three wrong codes: the third answer announces the lockout ($(code))" bash -c \
	"[ '$KIND' = rejected ] && grep -qi 'lock' '$T/reply.json'"
check "  ... three refusals audited, the last one starting acme's lockout, also at that address" bash -c \
	"[ '$(audit_count action=claim result=refused tenant=acme)' -eq 3 ] &&
	 [ '$(audit_count action=claim result=refused tenant=acme 'lockout=^tenant,source$')' -eq 1 ]"
check "  ... acme's lockout at that address is acme's alone" bash -c \
	"[ \"\$(redis-cli -p $REDIS_PORT --raw EXISTS onb:cclock:source:acme/mqtt:127.0.0.1)\" = 1 ] &&
	 [ -z \"\$(redis-cli -p $REDIS_PORT --raw --scan --pattern 'onb:cclock:source:mqtt:*')\" ]"
mark_audit
claim app-beta-2 "$T/c-good.json"
check "another tenant from the same 127.0.0.1, with the right code: claimed at once ($KIND $(code))" \
	bash -c "[ '$KIND' = accepted ] && [ \"\$(jq -r '.deviceId + \" \" + .tenantId' '$T/reply.json')\" = 'dev-u beta' ]"
check "  ... audited" audit_match action=claim result=ok device=dev-u tenant=beta
check "  ... dev-u is beta's" bash -c \
	"\"$ONBOARDCTL\" --json device show dev-u | jq -e '.state == \"active\" and .tenant == \"beta\"' > /dev/null"
"$ONBOARDCTL" device release dev-u > /dev/null
CODE_A=$("$ONBOARDCTL" claimcode issue --device dev-u --format uri)
echo '{"claimCode":"'"$CODE_A"'"}' > "$T/c-good-a.json"
mark_audit
claim app-acme "$T/c-good-a.json"
check "acme is still locked, even with a right code and another back-end: TooManyAttempts 429" \
	bash -c "[ '$(code)' = TooManyAttempts ] && [ '$(status)' = 429 ]"
check "  ... audited as locked-out" audit_match action=claim result=refused 'reason=locked-out' 'tenant=acme'
check "  ... and dev-u is unclaimed again, its new code unused" bash -c \
	"\"$ONBOARDCTL\" --json device show dev-u | grep -q '\"state\":\"unclaimed\"' &&
	 \"$ONBOARDCTL\" claimcode show --device dev-u | grep -q '^status:  issued'"
fi

# After every case above: a spy whose policy allows '#', '$aws/#' and '$onb/#'
# never received a stamped request, a reply envelope or any $aws/ message.
check "the spy received nothing from onb/internal/, \$aws/ or \$onb/ all along" \
	bash -c "! grep -qE '^(onb/internal/|\\\$aws/|\\\$onb/)' '$T/spy.out'"
finish

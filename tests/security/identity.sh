# Attack catalogue: identities. Client ids that are not device ids (wildcards,
# '/', NUL, 10 KB, empty), client id spoofing across identity classes (also a
# takeover of a live session), certificate subjects that try to inject
# (CN with '+', '#', '/', NUL, 10 KB; a tenant O that is not an id), and
# certificates that must fail TLS: expired, not yet valid, from a look-alike
# CA, issued by a device certificate. Every CONNECT the plugin decides is
# audited: each refusal is checked in one onb:audit entry. Refusals made by
# TLS or by Mosquitto's own packet checks happen before the plugin runs and
# cannot be audited by it: for those the test checks the broker's log and
# that the plugin audited no decision at all.
source "$(dirname "$0")/../integration/harness.sh"
source "$(dirname "$0")/lib.sh"
up
start_claimsvc claimsvc-1

new_device dev-1; register dev-1 active
new_device dev-2; register dev-2 active
new_device claimer claim-ca
new_device BIRTH01 manufacturer-ca
"$ONBOARDCTL" pki issue --ca "$PKI/service-ca" --cn app-acme --tenant acme --out "$T/app-acme" > /dev/null

# connack OUTPUT: the CONNACK code of a raw run ("closed" if none).
connack() { awk '$1 == "connack" { print $2; exit } $1 == "closed" || $1 == "tls-error" { print "closed"; exit }' <<<"$1"; }
# deny_audited DETAIL-REGEX [KEY=REGEX...]: one connect/deny entry since mark_audit.
deny_audited() { local d=$1; shift; audit_match action=connect result=deny "reason=$d" "$@"; }
no_decision_audited() { [ "$(audit_count action=connect)" -eq 0 ]; }

# ---------------------------------------------------------------- client ids that are no device id
ten_k=$(head -c 10240 /dev/zero | tr '\0' a)
bad_ids=('dev-1+' '#' 'dev-1/#' 'dev-1/x' 'dev 1' 'dév-1' '$SYS' "$(head -c 129 /dev/zero | tr '\0' a)" "$ten_k")
for as in dev-1 claimer; do
	mark_audit
	n=0
	for id in "${bad_ids[@]}"; do
		r=$(connack "$(raw "$as" connect "$id" close)")
		[ "$r" = 135 ] && n=$((n + 1))
	done
	check "$as: ${#bad_ids[@]} invalid client ids ('+', '#', '/', blank, UTF-8, '\$', 129 B, 10 KB) all get CONNACK 0x87 ($n)" \
		test "$n" -eq "${#bad_ids[@]}"
	check "  ... each refusal audited as an invalid client id" \
		test "$(audit_count action=connect result=deny 'reason=client id is not a valid device id')" -eq "${#bad_ids[@]}"
done

mark_audit
out=$(raw dev-1 connect 'dev-1\x00evil' close)
# (2.0.x drops the connection as a protocol error; 2.1 answers CONNACK 0x85)
check "a client id with a NUL byte is refused by Mosquitto itself (dropped, or CONNACK 0x85)" \
	grep -qxE "closed|133" <<<"$(connack "$out")"
check "  ... before any decision of the plugin (nothing to audit)" no_decision_audited
check "  ... logged by the broker" grep -qE "disconnected due to protocol error|client identifier not valid" "$T/mosquitto.log"

mark_audit
check "MQTT 5, empty client id: the broker's auto-… id is not the device id (0x87)" \
	test "$(connack "$(raw dev-1 connect '' close)")" = 135
check "  ... audited" deny_audited "client id differs" device=dev-1 'source=127.0.0.1'
check "MQTT 3.1.1, empty client id: refused (return code 5)" \
	test "$(connack "$(raw dev-1 -V 4 connect '' close)")" = 5
check "  ... audited" test "$(audit_count action=connect result=deny 'reason=client id differs' device=dev-1)" -eq 2

# ---------------------------------------------------------------- spoofing across classes
mark_audit
check "dev-1's certificate with client id claimsvc-1 is refused" \
	test "$(connack "$(raw dev-1 connect claimsvc-1 close)")" = 135
check "  ... audited" deny_audited "client id differs" device=dev-1
check "dev-1's certificate with client id DEV-1 (case) is refused" \
	test "$(connack "$(raw dev-1 connect DEV-1 close)")" = 135
check "  ... audited" test "$(audit_count action=connect result=deny device=dev-1)" -eq 2
check "tenant app-acme's certificate with client id app-beta is refused" \
	test "$(connack "$(raw app-acme connect app-beta close)")" = 135
check "  ... audited" deny_audited "service client id differs from its certificate CN"

# A provisioning identity (the shared claim certificate, or a birth
# certificate) chooses its client id. Choosing the id of a live session must
# not throw that session out: Mosquitto closes the older connection of a
# client id as soon as the newer one is admitted.
takeover() { # takeover AS VICTIM-CERT VICTIM-ID
	local as=$1 vcert=$2 vid=$3
	raw_bg "$vcert" "$T/victim-$vid.out" connect "$vid" wait 3000 close
	local vpid=$RAW_PID
	wait_for 5 grep -q "connack 0" "$T/victim-$vid.out"
	mark_audit
	r=$(connack "$(raw "$as" connect "$vid" wait 300 close)")
	wait "$vpid" || true
	check "$as with the client id of live session $vid is refused ($r)" test "$r" = 135
	check "  ... audited" deny_audited .
	refute "  ... and $vid's session was not closed" grep -qE "^(closed|disconnect)" "$T/victim-$vid.out"
}
takeover claimer dev-1 dev-1
takeover BIRTH01 dev-2 dev-2
mark_audit
before=$(grep -c "disconnected from the broker" "$T/claimsvc-1.log" || true)
r=$(connack "$(raw claimer connect claimsvc-1 wait 300 close)")
sleep 0.3
check "the claim certificate with client id claimsvc-1 is refused ($r)" test "$r" = 135
check "  ... audited" deny_audited .
check "  ... and claimsvc was not thrown off the broker" \
	test "$(grep -c "disconnected from the broker" "$T/claimsvc-1.log" || true)" -eq "$before"
wait_for 10 grep -q "Received SUBSCRIBE from claimsvc-1" <(tail -n 20 "$T/mosquitto.log") || true
before=$(grep -c "disconnected from the broker" "$T/claimsvc-1.log" || true)

# ---------------------------------------------------------------- certificate subjects
# A device's identity is its registry binding, never its subject: a CN made
# of wildcards changes nothing.
subj_cert dev-w device-ca '/CN=devices\/\+\/#'
register dev-w active
mark_audit
out=$(raw dev-w connect dev-w pub devices/dev-2/telemetry ATK qos=1 sub 'devices/+/commands/#' \
	pub devices/dev-w/telemetry OK qos=1 close)
check "a device whose CN is 'devices/+/#' connects as its registered id" grep -q "connack 0" <<<"$out"
check "  ... audited as that device" audit_match action=connect result=allow device=dev-w
check "  ... gets nothing from the CN: dev-2's telemetry 0x87, devices/+/commands/# 0x87" \
	bash -c "grep -q 'puback 1 135' <<<'$out' && grep -q 'suback 2 135' <<<'$out'"
check "  ... and keeps its own tree" grep -qE "puback 3 (0|16)$" <<<"$out"
subj_cert dev-x device-ca '/CN=dev-2'
register dev-x active
mark_audit
check "a device whose CN names dev-2 cannot connect as dev-2" \
	test "$(connack "$(raw dev-x connect dev-2 close)")" = 135
check "  ... audited with its real id" deny_audited "client id differs" device=dev-x
odd_cert dev-nul device-ca 'dev-1\x00evil'
odd_cert dev-10k device-ca "$ten_k"
for d in dev-nul dev-10k; do
	"$ONBOARDCTL" device register --id "$d" --cert "$T/$d.pem" > /dev/null 2>&1 || true
done
check "device certificates with a NUL or a 10 KB CN register and connect as their ids" bash -c \
	"r1=\$(python3 '$MQTTRAW' $MQTT_PORT '$PKI/ca-bundle.pem' '$T/dev-nul.pem' '$T/dev-nul.key' connect dev-nul close)
	 r2=\$(python3 '$MQTTRAW' $MQTT_PORT '$PKI/ca-bundle.pem' '$T/dev-10k.pem' '$T/dev-10k.key' connect dev-10k close)
	 grep -q 'connack 0' <<<\"\$r1\" && grep -q 'connack 0' <<<\"\$r2\""
mark_audit
check "  ... but the NUL one cannot pose as dev-1" test "$(connack "$(raw dev-nul connect dev-1 close)")" = 135

# A service's identity IS its CN (client id == CN): it must be an id.
odd_cert svc-nul service-ca 'claimsvc-1\x00evil'
odd_cert svc-10k service-ca "$ten_k"
mark_audit
check "service CN 'claimsvc-1\\0evil' as claimsvc-1 is refused" \
	test "$(connack "$(raw svc-nul connect claimsvc-1 close)")" = 135
check "service CN of 10 KB as claimsvc-1 is refused" \
	test "$(connack "$(raw svc-10k connect claimsvc-1 close)")" = 135
check "  ... both audited as a CN mismatch" \
	test "$(audit_count action=connect result=deny 'reason=service client id differs from its certificate CN')" -eq 2
for cn in 'claimsvc-+' 'claimsvc-#' 'claimsvc/a'; do
	esc=${cn//\//\\/}
	subj_cert svc-odd service-ca "/CN=${esc//+/\\+}"
	mark_audit
	check "service CN '$cn' used as its own client id is refused" \
		test "$(connack "$(raw svc-odd connect "$cn" close)")" = 135
	check "  ... audited" deny_audited "client id is not a valid device id"
done
check "claimsvc kept its session through all of that" \
	test "$(grep -c "disconnected from the broker" "$T/claimsvc-1.log" || true)" -eq "$before"

# The tenant comes from the service certificate's O = tenant:<id>; anything
# else gives no tenant, hence the service policy, which has no app-* clients.
for subj in '/O=tenant:acme\/#/CN=app-acme' '/O=tenant:acme/O=tenant:beta/CN=app-acme' \
		'/O=tenant:/CN=app-acme' '/O=tenant:acme\+/CN=app-acme'; do
	subj_cert app-odd service-ca "$subj"
	mark_audit
	check "tenant O in '$subj' gives no tenant: refused" \
		test "$(connack "$(raw app-odd connect app-acme close)")" = 135
	check "  ... audited" deny_audited "does not allow connect"
done

# ---------------------------------------------------------------- certificates TLS refuses
dated_cert dev-exp device-ca dev-exp 20200101000000Z 20210101000000Z
dated_cert dev-future device-ca dev-future 20990101000000Z 20991231000000Z
dated_cert claim-exp claim-ca claim-exp 20200101000000Z 20210101000000Z
rc=0; "$ONBOARDCTL" device register --id dev-exp --cert "$T/dev-exp.pem" > "$T/err" 2>&1 || rc=$?
check "onboardctl refuses to register an expired certificate (exit $rc)" \
	bash -c "[ $rc -eq 1 ] && grep -q expired '$T/err'"
# As if both had been bound while valid: the registry admits them, TLS must not.
for d in dev-exp dev-future; do
	fp=$("$ONBOARDCTL" pki fingerprint "$T/$d.pem")
	rcli HSET "onb:dev:{$d}" state active cert_fp "$fp" created 1 updated 1 > /dev/null
	rcli SET "onb:fp:$fp" "$d" > /dev/null
done
# A CA with the device CA's very name, but another key.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
	-keyout "$T/fake-ca.key" -out "$T/fake-ca.pem" \
	-subj "$(openssl x509 -in "$PKI/device-ca.pem" -noout -subject -nameopt compat | sed 's/^subject=//')" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2> /dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/dev-fake.key" \
	-subj /CN=dev-1 -out "$T/dev-fake.csr" 2> /dev/null
openssl x509 -req -in "$T/dev-fake.csr" -CA "$T/fake-ca.pem" -CAkey "$T/fake-ca.key" -set_serial 9 \
	-days 30 -extfile "$EXT_CLIENT" -out "$T/dev-fake.pem" 2> /dev/null
# dev-1's own certificate used as an issuing CA, chain sent along.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/dev-sub.key" \
	-subj /CN=dev-2 -out "$T/dev-sub.csr" 2> /dev/null
openssl x509 -req -in "$T/dev-sub.csr" -CA "$T/dev-1.pem" -CAkey "$T/dev-1.key" -set_serial 10 \
	-days 30 -extfile "$EXT_CLIENT" -out "$T/dev-sub.leaf" 2> /dev/null
cat "$T/dev-sub.leaf" "$T/dev-1.pem" > "$T/dev-sub.pem"
log_grew() { [ "$(grep -c "certificate verify failed" "$T/mosquitto.log" || true)" -gt "$1" ]; }
for c in "dev-exp:expired device certificate (bound in the registry)" "dev-future:not yet valid device certificate (bound)" \
		"claim-exp:expired claim certificate" "dev-fake:certificate from a CA named like the device CA" \
		"dev-sub:certificate issued by dev-1's certificate"; do
	name=${c%%:*}
	mark_audit
	logged=$(grep -c "certificate verify failed" "$T/mosquitto.log" || true)
	out=$(raw "$name" connect "$name" close 2>&1)
	check "${c#*:}: no CONNACK" test "$(connack "$out")" = closed
	check "  ... refused by TLS before the plugin (nothing audited)" no_decision_audited
	check "  ... the broker logged \"certificate verify failed\"" wait_for 3 log_grew "$logged"
done

# ---------------------------------------------------------------- revoked certificates stay out
"$ONBOARDCTL" device revoke dev-2 --reason "identity test" > /dev/null
mark_audit
check "revoked dev-2 is refused" test "$(connack "$(raw dev-2 connect dev-2 close)")" = 135
check "  ... audited" deny_audited "device is revoked" device=dev-2
rc=0; "$ONBOARDCTL" device register --id dev-2-reborn --cert "$T/dev-2.pem" > "$T/err" 2>&1 || rc=$?
check "its certificate cannot be bound to a new device id (exit $rc)" test "$rc" -eq 1
check "  ... saying it is bound to dev-2" grep -q "already bound to device dev-2" "$T/err"
check "  ... the refusal is audited" audit_match action=register result=refused device=dev-2-reborn
check "  ... and still refused under the new id" test "$(connack "$(raw dev-2 connect dev-2-reborn close)")" = 135

finish

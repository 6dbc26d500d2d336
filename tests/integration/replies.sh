# Where provisioning replies go, and what a claim connection leaves behind
# (issue 14): a reply reaches the connection that asked, only on a reply
# topic it subscribed to (as on AWS IoT); nobody else subscribed to that
# topic gets it, and no client can publish a look-alike; a claim or birth
# certificate's session does not outlive its connection, whatever the client
# asked for (Mosquitto 2.1; 2.0 offers no way, which the plugin says).
source "$(dirname "$0")/harness.sh"
source "$ONB_SOURCE_DIR/tests/security/lib.sh"
up
start_claimsvc claimsvc-1
new_device claim-a claim-ca
new_device birth-a manufacturer-ca

CSR_TOPIC='$aws/certificates/create-from-csr/json'
BAD_CSR='{"certificateSigningRequest":"garbage"}'
# ask ID SUBSCRIPTIONS...: one claim connection subscribes (QoS 1), sends a
# request that is rejected, and prints what it received within 1.5 s.
ask() {
	local id=$1 ops=(); shift
	for f in "$@"; do ops+=(sub "$f" qos=1); done
	raw claim-a connect "$id" "${ops[@]}" pub "$CSR_TOPIC" "$BAD_CSR" qos=1 wait 1500 close
}

# --- replies only where the device listens
out=$(ask only-acc "$CSR_TOPIC/accepted")
refute "subscribed to .../accepted only: the .../rejected reply is not delivered" grep -q "^msg " <<<"$out"
check "  ... though the request was answered (audited as rejected)" audit_has only-acc InvalidCsr
out=$(ask only-rej "$CSR_TOPIC/rejected")
check "subscribed to .../rejected: the reply is delivered there" grep -q "^msg $CSR_TOPIC/rejected .*errorCode" <<<"$out"
out=$(ask none)
refute "subscribed to nothing: nothing is delivered" grep -q "^msg " <<<"$out"

# Another claim connection subscribed to the same reply topics, at the same
# time, gets nothing of it.
raw_bg claim-a "$T/spy.out" connect spy sub "$CSR_TOPIC/accepted" qos=1 sub "$CSR_TOPIC/rejected" qos=1 wait 4000 close
spy_pid=$RAW_PID
wait_subscribed spy
out=$(ask asker "$CSR_TOPIC/rejected")
check "a connection gets its own reply" grep -q "^msg $CSR_TOPIC/rejected" <<<"$out"
wait "$spy_pid" 2>/dev/null || true
check "  ... another subscribed to the same topic at the same time gets nothing" \
	bash -c "grep -q '^suback' '$T/spy.out' && ! grep -q '^msg ' '$T/spy.out'"

# A look-alike: an operator's generous policy lets a device publish
# anywhere under its own tree, renewal answers included; no answer claimsvc
# did not send is ever delivered, while the same connection's other
# messages are.
new_device dev-1; register dev-1 active
cat > "$T/wide.json" <<'JSON'
{ "version": "2026-01-09", "statement": [
  { "effect": "allow", "action": ["connect"], "resource": ["client:${deviceId}"] },
  { "effect": "allow", "action": ["publish", "subscribe", "receive"],
    "resource": ["topic:devices/${deviceId}/#", "topicfilter:devices/${deviceId}/#"] } ] }
JSON
"$ONBOARDCTL" policy put wide "$T/wide.json" >/dev/null
"$ONBOARDCTL" policy assign dev-1 wide >/dev/null
wait_for 5 grep -q "dev-1: .*policy wide" "$T/mosquitto.log" || true
out=$(raw dev-1 connect dev-1 sub 'devices/dev-1/#' qos=1 \
	pub devices/dev-1/certificates/renew/accepted '{"certificatePem":"forged"}' qos=1 \
	pub devices/dev-1/commands/x hello qos=1 wait 1000 close)
check "a device's own message on its own tree is delivered to it" grep -q "^msg devices/dev-1/commands/x hello" <<<"$out"
refute "  ... a look-alike renewal answer it published is not" grep -q "^msg devices/dev-1/certificates/renew/accepted" <<<"$out"

# --- claim and birth sessions end with their connection
version=$(sed -nE 's/.*mosquitto version ([0-9]+\.[0-9]+)\.[0-9]+ running.*/\1/p' "$T/mosquitto.log" | tail -n 1)
# kept AS ID VERSION [EXPIRY]: connects twice asking for a persistent
# session (the AWS SDKs' default); prints the second CONNACK.
kept() {
	local as=$1 id=$2 v=$3 expiry=${4:-0}
	raw "$as" -V "$v" connect "$id" clean=0 expiry="$expiry" sub "$CSR_TOPIC/accepted" qos=1 close >/dev/null
	sleep 0.5   # the plugin ends a kept session at its next tick (100 ms)
	raw "$as" -V "$v" connect "$id" clean=0 expiry="$expiry" close | grep connack
}
# a device keeps its session: the control
dev_kept=$(raw dev-1 -V 4 connect dev-1 clean=0 sub devices/dev-1/commands/x qos=1 close >/dev/null; sleep 0.5
	raw dev-1 -V 4 connect dev-1 clean=0 close | grep connack)
check "a device asking for a persistent session keeps it (control)" grep -q "connack 0 session-present" <<<"$dev_kept"
c311=$(kept claim-a claim-311 4)
c5=$(kept claim-a claim-5 5 3600)
b311=$(kept birth-a birth-311 4)
echo "# Mosquitto $version: claim 3.1.1 '$c311', claim 5 '$c5', birth 3.1.1 '$b311'"
if [ "${version%%.*}" -ge 2 ] && [ "${version#*.}" -ge 1 ]; then
	check "claim certificate, MQTT 3.1.1, clean session 0: no session survives the connection" \
		bash -c "grep -q '^connack 0$' <<<'$c311'"
	check "claim certificate, MQTT 5, session expiry 3600 s: no session survives" \
		bash -c "grep -q '^connack 0$' <<<'$c5'"
	check "birth certificate, MQTT 3.1.1, clean session 0: no session survives" \
		bash -c "grep -q '^connack 0$' <<<'$b311'"
	check "  ... the plugin ended them" grep -q "ended the session kept for claim-311" "$T/mosquitto.log"
else
	check "Mosquitto 2.0 cannot end a session on request: the plugin says so at start" \
		grep -q "cannot end a persistent session on request" "$T/mosquitto.log"
fi
# Nothing is queued for a claim connection that has gone, on any version:
# its request is answered after it dropped, and a return finds nothing.
raw claim-a -V 4 connect claim-drop clean=0 sub "$CSR_TOPIC/rejected" qos=1 pub "$CSR_TOPIC" "$BAD_CSR" qos=0 drop >/dev/null
audit_has claim-drop InvalidCsr || true
out=$(raw claim-a -V 4 connect claim-drop clean=0 wait 1000 close)
refute "a reply to a claim connection that dropped is not kept for its return" grep -q "^msg " <<<"$out"

finish

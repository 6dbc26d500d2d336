# Several brokers on one registry (issue 16): one live session per device
# across the fleet (plugin/fleet.c, onb:sessions), and registry events
# (revoke, quarantine, policy changes) reaching the live session on
# whichever broker holds it.
source "$(dirname "$0")/harness.sh"
up
start_fleet_broker 2
start_fleet_broker 3
LOG=([1]="$T/mosquitto.log" [2]="$T/mosquitto-2.log" [3]="$T/mosquitto-3.log")

# on K CMD...: CMD against broker K.
on() { local k=$1; shift; MQTT_PORT=${BROKER_PORTS[k]} "$@"; }
# subscribed_on K ID: broker K logged ID's SUBSCRIBE.
subscribed_on() { wait_for 5 grep -q "Received SUBSCRIBE from $2" "${LOG[$1]}"; }
gone() { ! kill -0 "$1" 2>/dev/null; }
admitted_on() { wait_for 5 grep -q "connect allow device=$2 " "${LOG[$1]}"; }
logged_on() { grep -q -- "$2" "${LOG[$1]}"; }
# kicks_of ID: how many times any broker closed ID for a newer session.
kicks_of() { cat "${LOG[@]}" | grep -c "disconnecting $1: a newer session" || true; }

new_device ops; register ops active
cat > "$T/ops.json" <<'JSON'
{ "version": "2026-01-09", "statement": [
  { "effect": "allow", "action": ["connect"], "resource": ["client:${deviceId}"] },
  { "effect": "allow", "action": ["publish"], "resource": ["topic:devices/+/commands/#"] } ] }
JSON
"$ONBOARDCTL" policy put ops-test "$T/ops.json" >/dev/null
"$ONBOARDCTL" policy assign ops ops-test >/dev/null

# --- a device on broker 1, then the same device on broker 2
new_device dev-1; register dev-1 active
on 1 sub_bg dev-1 dev-1 'devices/dev-1/commands/#' "$T/dev1-b1.out"
old=$SUB_PID
check "dev-1 subscribed on broker 1" subscribed_on 1 dev-1
on 2 sub_bg dev-1 dev-1 'devices/dev-1/commands/#' "$T/dev1-b2.out"
new=$SUB_PID
check "dev-1 subscribed on broker 2" subscribed_on 2 dev-1
check "broker 1 closes the older session when dev-1 connects to broker 2" \
	wait_for 3 logged_on 1 "disconnecting dev-1: a newer session on broker broker-2"
check "  ... its socket is closed (the client exits)" wait_for 3 gone "$old"
check "  ... the takeover is audited: old and new broker, not a clone" \
	audit_has "session-taken-over" "dev-1" "new_broker=broker-2" "possible_clone=no"
sleep 1
check "  ... the broker-2 session lives on" kill -0 "$new"
refute "  ... and nobody closed it" logged_on 2 "disconnecting dev-1"
MSG=after-takeover on 2 pub ops ops devices/dev-1/commands/x
check "  ... and receives its commands" wait_for 3 grep -q after-takeover "$T/dev1-b2.out"
kill "$new"

# --- the same id from another address: flagged as a possible clone
new_device dev-2; register dev-2 active
on 1 sub_bg dev-2 dev-2 'devices/dev-2/commands/#' "$T/dev2-b1.out"
old=$SUB_PID
check "dev-2 subscribed on broker 1" subscribed_on 1 dev-2
on 3 sub_bg dev-2 dev-2 'devices/dev-2/commands/#' "$T/dev2-b3.out" -A 127.0.0.2
new=$SUB_PID
check "dev-2 subscribed on broker 3" subscribed_on 3 dev-2
check "a connect of dev-2 from another address on broker 3 closes the older session" wait_for 3 gone "$old"
check "  ... flagged possible_clone (another address)" \
	audit_has "session-taken-over" "dev-2" "new_broker=broker-3" "new_source=127.0.0.2" "possible_clone=yes (another address)"
check "  ... broker 1 warns about it" logged_on 1 "disconnecting dev-2: a newer session on broker broker-3.*possible_clone=yes"
check "  ... the newer session lives on" kill -0 "$new"
kill "$new"

# --- a second valid certificate of the same id (a renewal's next
# certificate): the rotation retires the first one when the second is
# promoted at CONNECT, and its `cert` event closes the older session before
# the announcement arrives; the announcement that follows is still audited
# as the takeover, flagged (docs/operations.md, "One live session per device").
new_device dev-3; register dev-3 active
"$ONBOARDCTL" pki issue --ca "$PKI/device-ca" --cn dev-3 --out "$T/dev-3-next" >/dev/null
next_fp=$("$ONBOARDCTL" pki fingerprint "$T/dev-3-next.pem")
rcli HSET "onb:dev:{dev-3}" cert_fp_next "$next_fp" >/dev/null
rcli SET "onb:fp:$next_fp" dev-3 >/dev/null
on 1 sub_bg dev-3 dev-3 'devices/dev-3/commands/#' "$T/dev3-b1.out"
old=$SUB_PID
check "dev-3 subscribed on broker 1" subscribed_on 1 dev-3
on 2 sub_bg dev-3-next dev-3 'devices/dev-3/commands/#' "$T/dev3-b2.out"
new=$SUB_PID
check "dev-3 subscribed on broker 2" subscribed_on 2 dev-3
check "dev-3's second certificate on broker 2 closes the session of its first on broker 1" wait_for 3 gone "$old"
check "  ... the newer session lives on" kill -0 "$new"
sleep 0.5
check "  ... one kick only" test "$(cat "${LOG[@]}" | grep -c "disconnecting dev-3")" -eq 1
check "  ... audited as a takeover, possible_clone (another certificate)" \
	audit_has "session-taken-over" "dev-3" "new_broker=broker-2" "possible_clone=yes (another certificate)"
echo "# dev-3's older session was closed by: $(cat "${LOG[@]}" | grep -h -o "disconnecting dev-3: [^(]*" | sed -n 1p)"
kill "$new"

# --- simultaneous connects on two brokers end with exactly one session
simultaneous() {
	local id=$1 a b
	new_device "$id"; register "$id" active
	on 1 sub_bg "$id" "$id" "devices/$id/commands/#" "$T/$id-b1.out"; a=$SUB_PID
	on 2 sub_bg "$id" "$id" "devices/$id/commands/#" "$T/$id-b2.out"; b=$SUB_PID
	# (admitted, not subscribed: the older may be closed before it subscribes)
	admitted_on 1 "$id" && admitted_on 2 "$id" || { echo "# $id was not admitted on both"; return 1; }
	wait_for 3 kicked_once "$id"
	sleep 1
	local alive=0
	kill -0 "$a" 2>/dev/null && alive=$((alive + 1))
	kill -0 "$b" 2>/dev/null && alive=$((alive + 1))
	kill "$a" "$b" 2>/dev/null || true
	[ "$alive" -eq 1 ] && [ "$(kicks_of "$id")" -eq 1 ] && return 0
	echo "# $id: $alive client(s) alive, $(kicks_of "$id") takeover kick(s)"
	grep -h "$id" "${LOG[1]}" "${LOG[2]}" | grep -v "PING" | sed 's/^/#   /' | tail -n 20
	return 1
}
kicked_once() { [ "$(kicks_of "$1")" -ge 1 ]; }
for i in 1 2 3 4 5; do
	check "simultaneous connects of sim-$i on brokers 1 and 2 leave exactly one session" simultaneous "sim-$i"
done

# --- claim certificates are shared: never announced, never kicked
new_device claim-batch claim-ca
on 1 sub_bg claim-batch CLAIM-1 '$aws/certificates/create-from-csr/json/accepted' "$T/c1.out"; c1=$SUB_PID
on 2 sub_bg claim-batch CLAIM-2 '$aws/certificates/create-from-csr/json/accepted' "$T/c2.out"; c2=$SUB_PID
on 3 sub_bg claim-batch CLAIM-1 '$aws/certificates/create-from-csr/json/accepted' "$T/c3.out"; c3=$SUB_PID
claims_subscribed() { subscribed_on 1 CLAIM-1 && subscribed_on 2 CLAIM-2 && subscribed_on 3 CLAIM-1; }
check "the claim connections subscribed on brokers 1, 2 and 3" claims_subscribed
sleep 1
check "one claim certificate on three brokers (same and other client ids): all connected" \
	bash -c "kill -0 $c1 && kill -0 $c2 && kill -0 $c3"
refute "  ... not announced on onb:sessions" bash -c "redis-cli -p $REDIS_PORT --raw XRANGE onb:sessions - + | grep -q CLAIM"
kill "$c1" "$c2" "$c3"

# --- registry events reach the live session on whichever broker holds it
EVPID=()
for k in 1 2 3; do
	new_device "ev-$k"; register "ev-$k" active
	on "$k" sub_bg "ev-$k" "ev-$k" "devices/ev-$k/commands/#" "$T/ev$k.out"
	EVPID[k]=$SUB_PID
	check "ev-$k subscribed on broker $k" subscribed_on "$k" "ev-$k"
done
"$ONBOARDCTL" device revoke ev-2 --reason "stolen" >/dev/null
check "revoke reaches ev-2's session on broker 2" wait_for 2 logged_on 2 "disconnecting ev-2: device is now revoked"
check "  ... its socket is closed" wait_for 3 gone "${EVPID[2]}"
"$ONBOARDCTL" device quarantine ev-3 >/dev/null
check "quarantine reaches ev-3's session on broker 3" wait_for 2 logged_on 3 "ev-3: active -> quarantined, policy quarantine"
check "  ... which stays connected" kill -0 "${EVPID[3]}"
"$ONBOARDCTL" policy assign ev-1 ops-test >/dev/null
check "a policy assignment reaches ev-1's session on broker 1" wait_for 2 logged_on 1 "ev-1: active -> active, policy ops-test"
MSG=not-for-ev1 on 1 pub ops ops devices/ev-1/commands/x
sleep 0.5
refute "  ... ops-test grants it no receive" grep -q not-for-ev1 "$T/ev1.out"
"$ONBOARDCTL" policy put device "$ONB_SOURCE_DIR/policies/device.json" >/dev/null
for k in 1 2 3; do
	check "a policy document update is applied on broker $k" wait_for 2 logged_on "$k" "policy device updated"
done

# --- how long a takeover takes: printed, not asserted
"$ONB_BUILD_DIR/tests/bench/revoke_latency" --port "${BROKER_PORTS[1]}" --port "${BROKER_PORTS[2]}" \
	--port "${BROKER_PORTS[3]}" --pki "$PKI" --redis "$ONBOARD_REDIS_URL" -n 20 --takeover > "$T/takeover.txt" 2>&1
check "20 takeovers across 3 brokers, each closing the older session only" grep -q "^takeovers: 20" "$T/takeover.txt"
sed 's/^/# /' "$T/takeover.txt"
echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)"

finish

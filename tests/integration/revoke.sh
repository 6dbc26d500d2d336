# Revocation and quarantine reach live sessions without a reconnect.
source "$(dirname "$0")/harness.sh"
up

new_device dev-1; register dev-1 active
new_device dev-2; register dev-2 active

# A witness of every device's status topic, where both devices leave a will.
new_device watch; register watch active
cat > "$T/watch.json" <<'JSON'
{ "version": "2026-01-09", "statement": [
  { "effect": "allow", "action": ["connect"], "resource": ["client:${deviceId}"] },
  { "effect": "allow", "action": ["subscribe", "receive"],
    "resource": ["topicfilter:devices/+/status", "topic:devices/+/status"] } ] }
JSON
"$ONBOARDCTL" policy put watch "$T/watch.json" >/dev/null
"$ONBOARDCTL" policy assign watch watch >/dev/null
sub_bg watch watch 'devices/+/status' "$T/watch.out"
wait_subscribed watch

sub_bg dev-1 dev-1 'devices/dev-1/commands/#' "$T/dev1.out" --will-topic devices/dev-1/status --will-payload WILL-REVOKED
pid1=$SUB_PID
wait_subscribed dev-1
sub_bg dev-2 dev-2 'devices/dev-2/commands/#' "$T/dev2.out" --will-topic devices/dev-2/status --will-payload WILL-DROPPED
pid2=$SUB_PID
wait_subscribed dev-2

t0=$(date +%s%N)
"$ONBOARDCTL" device revoke dev-1 --reason "stolen" >/dev/null
gone() { ! kill -0 "$pid1" 2>/dev/null || grep -q "disconnecting dev-1" "$T/mosquitto.log"; }
check "revoked live subscriber is disconnected" wait_for 2 gone
t1=$(date +%s%N)
echo "# revoke -> disconnect: $(( (t1 - t0) / 1000000 )) ms (includes onboardctl start-up)"
check "the disconnect is logged with the reason" grep -q "disconnecting dev-1: device is now revoked" "$T/mosquitto.log"
check "the revocation is audited" audit_has "state" "dev-1" "stolen"
check "the other device's session is untouched" kill -0 "$pid2"
check "the revoked device cannot come back" refused dev-1 dev-1 devices/dev-1/telemetry

# Wills: dev-2 drops its connection after dev-1 was revoked. The broker
# handles both in order on one thread, and the witness reads both on one
# connection: once dev-2's will has arrived, dev-1's would have too.
kill -9 "$pid2"
check "an ordinary drop publishes the device's will (control)" \
	wait_for 3 grep -q "devices/dev-2/status WILL-DROPPED" "$T/watch.out"
refute "the revoked device's will is not published" grep -q WILL-REVOKED "$T/watch.out"

# Quarantine a live session: its next publish outside status is refused.
new_device dev-3; register dev-3 active
coproc PUBQ { mosquitto_pub $(tls_args dev-3) -i dev-3 -V 5 -q 1 -t devices/dev-3/telemetry -l 2>&1; }
BG_PIDS+=("$PUBQ_PID")
echo before >&"${PUBQ[1]}"
wait_for 5 grep -q "Received PUBLISH from dev-3" "$T/mosquitto.log"
"$ONBOARDCTL" device quarantine dev-3 >/dev/null
check "quarantine reaches the live session" wait_for 2 grep -q "dev-3: active -> quarantined" "$T/mosquitto.log"
echo after >&"${PUBQ[1]}"
check "the live session's telemetry is now refused" wait_for 3 grep -q "Denied PUBLISH from dev-3" "$T/mosquitto.log"
exec {PUBQ[1]}>&-

# A device whose session outlives its connection (clean session off) has no
# live session once it is offline: 2.1 raises CLIENT_OFFLINE for it, not
# DISCONNECT (2.0.x raises DISCONNECT for every connection). Revoking it then
# kicks nobody. Events apply in order: once dev-5's kick is logged, dev-4's
# revocation has been applied too.
new_device dev-4; register dev-4 active
new_device dev-5; register dev-5 active
# shellcheck disable=SC2046
timeout 10 mosquitto_sub $(tls_args dev-4) -i dev-4 -c -q 1 -t 'devices/dev-4/commands/#' -W 1 >/dev/null 2>&1 || true
# (the client may exit before the broker has handled its DISCONNECT)
check "a persistent session went offline" wait_for 5 grep -q "Client dev-4 .*disconnected" "$T/mosquitto.log"
sub_bg dev-5 dev-5 'devices/dev-5/commands/#' "$T/dev5.out"
wait_subscribed dev-5
"$ONBOARDCTL" device revoke dev-4 --reason "offline" >/dev/null
"$ONBOARDCTL" device revoke dev-5 --reason "online" >/dev/null
check "the online device is disconnected" wait_for 3 grep -q "disconnecting dev-5: device is now revoked" "$T/mosquitto.log"
refute "  ... the offline one has no session left to disconnect" grep -q "disconnecting dev-4" "$T/mosquitto.log"
check "  ... and cannot come back" refused dev-4 dev-4 devices/dev-4/telemetry

finish

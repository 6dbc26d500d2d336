# Policies change under live sessions: updates, assignments and state changes
# are applied within milliseconds, without a reconnect; bad documents never
# reach Redis.
source "$(dirname "$0")/harness.sh"
up

new_device dev-1; register dev-1 active
new_device dev-2; register dev-2 active
new_device ops; register ops active
cat > "$T/ops.json" <<'JSON'
{ "version": "2026-01-09", "statement": [
  { "effect": "allow", "action": ["connect"], "resource": ["client:${deviceId}"] },
  { "effect": "allow", "action": ["publish"], "resource": ["topic:devices/+/commands/#"] } ] }
JSON
"$ONBOARDCTL" policy put ops-test "$T/ops.json" >/dev/null
"$ONBOARDCTL" policy assign ops ops-test >/dev/null

sub_bg dev-1 dev-1 'devices/dev-1/commands/#' "$T/dev1.out"
wait_subscribed dev-1
MSG=first pub ops ops devices/dev-1/commands/a
check "a live session receives its commands" wait_for 3 grep -q first "$T/dev1.out"

# Narrow the shared device policy: commands may no longer be received.
sed '/"sid": "Commands"/,/commands\/#"\] },/d' "$ONB_SOURCE_DIR/policies/device.json" > "$T/narrow.json"
check "the narrowed document is still valid" bash -c "\"$ONBOARDCTL\" policy test --policy \"$T/narrow.json\" --var deviceId=dev-1 --action publish --topic devices/dev-1/telemetry >/dev/null"
"$ONBOARDCTL" policy put device "$T/narrow.json" >/dev/null
check "the broker recompiles the live sessions" wait_for 2 grep -q "policy device updated" "$T/mosquitto.log"
MSG=second pub ops ops devices/dev-1/commands/a
sleep 0.5
refute "after the update the existing subscription delivers nothing" grep -q second "$T/dev1.out"
check "  ... and the session was not dropped" kill -0 "$SUB_PID"

# Give dev-1 its own policy: it applies live.
"$ONBOARDCTL" policy put device "$ONB_SOURCE_DIR/policies/device.json" >/dev/null
"$ONBOARDCTL" policy assign dev-1 ops-test >/dev/null
check "an assignment reaches the live session" wait_for 2 grep -q "dev-1: active -> active, policy ops-test" "$T/mosquitto.log"
MSG=third pub ops ops devices/dev-1/commands/a
sleep 0.5
refute "  ... and ops-test grants it no receive" grep -q third "$T/dev1.out"
# The same line may already be in the log (dev-1's registration, applied
# after it connected when the watcher is slow): wait for one more.
to_default() { grep -c "dev-1: active -> active, policy device$" "$T/mosquitto.log" || true; }
before=$(to_default)
"$ONBOARDCTL" policy assign dev-1 --default >/dev/null
one_more() { [ "$(to_default)" -gt "$before" ]; }
check "back to the default" wait_for 2 one_more
MSG=fourth pub ops ops devices/dev-1/commands/a
check "  ... receives again" wait_for 3 grep -q fourth "$T/dev1.out"

# Quarantine and activation switch a live publisher's permissions both ways.
coproc PUBQ { mosquitto_pub $(tls_args dev-2) -i dev-2 -V 5 -q 1 -t devices/dev-2/telemetry -l 2>&1; }
BG_PIDS+=("$PUBQ_PID")
denied_count() { grep -c "Denied PUBLISH from dev-2" "$T/mosquitto.log" || true; }
echo one >&"${PUBQ[1]}"
wait_for 3 grep -q "Received PUBLISH from dev-2" "$T/mosquitto.log"
"$ONBOARDCTL" device quarantine dev-2 >/dev/null
check "quarantine reaches the live session" wait_for 2 grep -q "dev-2: active -> quarantined, policy quarantine" "$T/mosquitto.log"
echo two >&"${PUBQ[1]}"
check "  ... whose telemetry is now refused" wait_for 3 grep -q "Denied PUBLISH from dev-2" "$T/mosquitto.log"
"$ONBOARDCTL" device activate dev-2 >/dev/null
check "activation reaches the live session" wait_for 2 grep -q "dev-2: quarantined -> active, policy device" "$T/mosquitto.log"
before=$(denied_count)
echo three >&"${PUBQ[1]}"
sleep 0.5
check "  ... whose telemetry is accepted again" test "$(denied_count)" -eq "$before"
exec {PUBQ[1]}>&-

# Invalid documents are refused before Redis, with the reason, and audited.
echo '{"version":"1","statement":[{"effect":"allow","action":["publish"],"resource":["topic:a/#/b"]}]}' > "$T/bad.json"
bad_refused() { ! "$ONBOARDCTL" policy put device "$T/bad.json" 2> "$T/err.out" && grep -q "statement\[0\]" "$T/err.out"; }
check "an invalid policy is refused, naming the statement" bad_refused
check "  ... the stored document is unchanged" bash -c "\"$ONBOARDCTL\" policy get device | cmp -s - \"$ONB_SOURCE_DIR/policies/device.json\""
check "  ... and the refusal is audited" audit_has "policy-put" "refused"

# policy test explains decisions, online and offline.
check "policy test online: allow with the deciding statement" bash -c \
	"\"$ONBOARDCTL\" policy test --device dev-1 --action publish --topic devices/dev-1/telemetry | grep -q '^allow.*Telemetry'"
check "policy test offline: deny" bash -c \
	"\"$ONBOARDCTL\" policy test --policy \"$ONB_SOURCE_DIR/policies/device.json\" --var deviceId=dev-1 --action subscribe --topic 'devices/+/commands/#' | grep -q '^deny'"

finish

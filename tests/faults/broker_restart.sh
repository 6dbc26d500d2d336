# Fault injection: the broker is killed and restarted under live sessions.
# Devices (a loop that reconnects 0.3 s after losing its connection, as
# device firmware does) come back and work;
# a device revoked before the crash, one revoked while the broker was down
# and one quarantined while it was down are judged afresh at their next
# CONNECT: the revoked stay out (audited), the quarantined comes back narrowed.
source "$(dirname "$0")/../integration/harness.sh"
source "$(dirname "$0")/../security/lib.sh"
up

new_device ops; register ops active
policy_for ops ops-test '{ "version": "2026-01-09", "statement": [
  { "effect": "allow", "action": ["connect"], "resource": ["client:${deviceId}"] },
  { "effect": "allow", "action": ["publish"], "resource": ["topic:devices/+/commands/#"] } ] }'
# device_loop ID UNTIL_NS OUT: stays connected to devices/ID/commands/#,
# reconnecting 0.3 s after every loss or refusal, until UNTIL_NS.
device_loop() {
	local id=$1 until=$2 out=$3 left
	while left=$(( (until - $(date +%s%N)) / 1000000 )); [ "$left" -gt 300 ]; do
		raw "$id" connect "$id" sub "devices/$id/commands/#" qos=1 wait "$left" close >> "$out" 2>&1 || true
		sleep 0.3
	done
}
UNTIL=$(( $(date +%s%N) + 25000000000 ))
DEVS=(r-1 r-2 r-3 r-4 r-5 r-6)
for d in "${DEVS[@]}"; do
	new_device "$d"; register "$d" active
	device_loop "$d" "$UNTIL" "$T/$d.out" &
	BG_PIDS+=($!)
done
for d in "${DEVS[@]}"; do wait_subscribed "$d"; done
"$ONBOARDCTL" device revoke r-5 --reason "before the crash" > /dev/null
wait_for 3 grep -q "disconnecting r-5" "$T/mosquitto.log"

kill -9 "$BROKER_PID"; wait "$BROKER_PID" 2> /dev/null || true; BROKER_PID=""
"$ONBOARDCTL" device revoke r-6 --reason "while the broker was down" > /dev/null
"$ONBOARDCTL" device quarantine r-4 --reason "while the broker was down" > /dev/null
mv "$T/mosquitto.log" "$T/mosquitto-1.log"
t0=$(date +%s%N)
start_broker
t_up=$(ms_since "$t0")

back() { local d; for d in r-1 r-2 r-3 r-4; do grep -q "Received SUBSCRIBE from $d" "$T/mosquitto.log" || return 1; done; }
check "after a broker crash and restart, the live devices reconnect by themselves" wait_for 10 back
t_back=$(ms_since "$t0")
echo "# broker restart: up in $t_up ms; r-1..r-4 reconnected $t_back ms after the restart began"
for d in r-1 r-2 r-3 r-4 r-5 r-6; do MSG="after-restart-$d" pub ops ops "devices/$d/commands/ping" || true; done
MSG=after-restart-fix pub ops ops devices/r-4/commands/remediation/fix
for d in r-1 r-2 r-3; do
	check "$d receives commands again" wait_for 3 grep -q "after-restart-$d" "$T/$d.out"
done
check "r-4, quarantined while the broker was down, came back under quarantine: remediation only" \
	bash -c "for i in \$(seq 60); do grep -q after-restart-fix '$T/r-4.out' && break; sleep 0.05; done
	         grep -q after-restart-fix '$T/r-4.out' && ! grep -q after-restart-r-4 '$T/r-4.out'"

mark_audit
for d in r-5 r-6; do
	check "$d (revoked $( [ $d = r-5 ] && echo before the crash || echo while the broker was down)) is refused" \
		test "$(raw "$d" connect "$d" close | sed -n 1p)" = "connack 135"
done
revoked_audited() { audit_match action=connect result=deny 'reason=device is revoked' "device=$1"; }
check "  ... r-5's refusal audited as revoked" revoked_audited r-5
check "  ... r-6's refusal audited as revoked" revoked_audited r-6
refute "  ... and neither got a command" grep -q "after-restart-r-[56]" "$T/r-5.out" "$T/r-6.out"
refute "  ... nor was admitted by the new broker at all, though they kept trying" grep -q "connect allow device=r-[56]" "$T/mosquitto.log"
check "  ... (their own reconnect loops were refused too, and audited)" \
	test "$(grep -c "connect deny device=r-[56] .*device is revoked" "$T/mosquitto.log")" -ge 3

finish

# Attack catalogue: topics. A registered device tries to reach what its
# policy does not give it: another device's topics (publish, subscribe,
# receive), wildcard and '$' escapes, the internal topics, retained messages
# and wills aimed at forbidden topics, topic aliases, very deep and very long
# topics, and the same through MQTT 3.1.1 and 3.1.
#
# ACL denials are audited aggregated, one entry per session, action and
# reason in each window, written by the plugin's watcher thread (the message
# path never waits on Redis, DESIGN.md s.1; docs/registry.md). The evidence
# checked here is the broker's answer (PUBACK/SUBACK 0x87, or 0x80 in 3.1.1),
# its "Denied PUBLISH" log line, and a spy allowed to read every topic (#,
# $aws/#, $onb/#) that never receives the attack's payload.
source "$(dirname "$0")/../integration/harness.sh"
source "$(dirname "$0")/lib.sh"
up

new_device dev-1; register dev-1 active
new_device dev-2; register dev-2 active
new_device ops; register ops active
policy_for ops ops-test '{ "version": "2026-01-09", "statement": [
  { "effect": "allow", "action": ["connect"], "resource": ["client:${deviceId}"] },
  { "effect": "allow", "action": ["publish"], "resource": ["topic:devices/+/commands/#"] } ] }'
make_spy spy
make_spy spy2
spy_bg spy "$T/spy.out"
sub_bg dev-2 dev-2 'devices/dev-2/commands/#' "$T/dev2.out"
wait_subscribed dev-2

# denied_logged CLIENT TOPIC: the broker logged a denied PUBLISH of TOPIC.
denied_logged() { grep -F "Denied PUBLISH from $1 " "$T/mosquitto.log" | grep -F "'$2'" >/dev/null; }
# nowhere MARKER: after a moment, no subscriber (spy, dev-2) got MARKER.
nowhere() { sleep 0.3; ! grep -qF -- "$1" "$T/spy.out" "$T/dev2.out"; }
# pubacks OUTPUT: the PUBACK reason codes of a raw run, one per line.
pubacks() { awk '$1 == "puback" { print $3 }' <<<"$1"; }
accepted() { [ "$1" = 0 ] || [ "$1" = 16 ]; } # 16: accepted, no subscriber

# ---------------------------------------------------------------- another device's topics
others=(devices/dev-2/telemetry devices/dev-2/telemetry/x devices/dev-2/status
	devices/dev-2/shadow/update devices/dev-2/commands/reboot tenants/acme/devices/dev-2/telemetry
	devices/dev-2/certificates/renew)
ops=(connect dev-1)
for t in "${others[@]}"; do ops+=(pub "$t" ATK-A1 qos=1); done
out=$(raw dev-1 "${ops[@]}" close)
check "publish into dev-2's topics: every PUBACK is 0x87" all_denied "$(pubacks "$out")"
check "  ... one PUBACK per attempt" test "$(pubacks "$out" | wc -l)" -eq "${#others[@]}"
for t in "${others[@]}"; do
	check "  ... the broker denied '$t'" wait_for 3 denied_logged dev-1 "$t"
done
check "  ... nothing reached dev-2 or the spy" nowhere ATK-A1

codes=$(sub_codes dev-1 dev-1 'devices/dev-2/commands/#' devices/dev-2/telemetry \
	devices/dev-2/shadow/update/accepted 'tenants/+/devices/dev-2/commands/#' '$share/g/devices/dev-2/commands/#' \
	devices/dev-2/certificates/renew/accepted 'devices/+/certificates/renew/#')
check "subscribe to dev-2's topics (commands, telemetry, shadow, renewals): all 7 refused (0x87)" \
	bash -c "[ \$(wc -l <<<'$codes') -eq 7 ] && ! grep -qv '^135$' <<<'$codes'"

# Receive: what ops sends dev-2 reaches dev-2 only, even through a filter of
# dev-1's that looks like a path traversal (MQTT levels are literal).
codes=$(sub_codes dev-1 dev-1 'devices/dev-1/commands/../../dev-2/commands/#')
check "a '..' filter inside dev-1's tree is granted (literal levels)" test "$codes" = 0
raw_bg dev-1 "$T/dev1.raw" connect dev-1 sub 'devices/dev-1/commands/#' \
	sub 'devices/dev-1/commands/../../dev-2/commands/#' wait 2500 close
wait_for 5 grep -q "suback 2 0" "$T/dev1.raw"
MSG=RECV-A3 pub ops ops devices/dev-2/commands/reboot
check "receive: dev-2 gets its command (control)" wait_for 3 grep -q RECV-A3 "$T/dev2.out"
wait "$RAW_PID" || true
refute "  ... dev-1's subscriptions received none of it" grep -q RECV-A3 "$T/dev1.raw"

MSG=RET-A4 pub ops ops devices/dev-2/commands/cfg -r
codes=$(raw dev-1 connect dev-1 sub 'devices/+/commands/cfg' sub 'devices/dev-1/commands/#' wait 500 close)
check "retained command for dev-2: dev-1's wildcard subscription is refused" grep -q "suback 1 135" <<<"$codes"
refute "  ... and dev-1 never receives the retained message" grep -q RET-A4 <<<"$codes"
out=$(raw spy2 connect spy2 sub 'devices/dev-2/commands/cfg' wait 500 close)
check "  ... while it is retained for those allowed to read it (control)" \
	grep -q "msg devices/dev-2/commands/cfg RET-A4" <<<"$out"

# ---------------------------------------------------------------- wildcard and '$' escapes
escapes=('#' '+' '+/#' '+/+/commands/#' 'devices/+/commands/#' 'devices/+/telemetry/#' 'devices/#'
	'tenants/#' 'Devices/dev-2/commands/#' 'devices/DEV-2/commands/#'
	'$SYS/#' '$SYS/broker/clients/connected' '$SYS/onboard/#' '$aws/#' '$aws/certificates/create-from-csr/json/accepted'
	'$aws/provisioning-templates/+/provision/json/accepted' '$aws/things/dev-2/shadow/#'
	'$onb/#' '$onb/void' 'onb/#' 'onb/internal/#' 'onb/internal/prov/reply' 'onb/internal/prov/request'
	'onb/claim/json/accepted' '$share/g/#' '$share/g/devices/+/commands/#'
	'$share/claimsvc/onb/internal/prov/request' '$share/claimsvc/onb/internal/claim/request'
	'$share/g/$onb/#' '$share/g/$SYS/#' '$share//devices/dev-1/commands/#' '$share/g' '$share/+/#')
codes=$(sub_codes dev-1 dev-1 "${escapes[@]}")
check "${#escapes[@]} wildcard, '\$' and internal filters: every SUBACK is 0x87" \
	bash -c "[ \$(wc -l <<<'$codes') -eq ${#escapes[@]} ] && ! grep -qv '^135$' <<<'$codes'"

# Malformed filters and wildcards in a PUBLISH are protocol errors: the
# broker hangs up on the client (and stays up: later cases use it).
check "a malformed filter ('#' not last) ends the connection" \
	test "$(sub_codes dev-1 dev-1 'devices/dev-1/commands/#/x')" = closed
check "a malformed filter ('+' inside a level) ends the connection" \
	test "$(sub_codes dev-1 dev-1 'devices/dev-1/commands/a+')" = closed
# (2.0.11 says 0x82 protocol error, 2.0.15 and later 0x81 malformed packet)
out=$(raw dev-1 connect dev-1 pub 'devices/dev-1/telemetry/+' ATK-B3 qos=1 close)
check "PUBLISH to a topic with '+': DISCONNECT 0x81 or 0x82" grep -qE "disconnect (129|130)" <<<"$out"
out=$(raw dev-1 connect dev-1 pub 'devices/+/commands/#' ATK-B3 qos=1 close)
check "PUBLISH to a topic with '#': DISCONNECT 0x81 or 0x82" grep -qE "disconnect (129|130)" <<<"$out"
check "  ... and nothing was delivered" nowhere ATK-B3

dollar=('$SYS/broker/x' '$aws/certificates/create-from-csr/json/accepted'
	'$aws/provisioning-templates/default/provision/json/accepted' '$aws/things/dev-2/shadow/update'
	'$onb/void' 'onb/internal/prov/request' 'onb/internal/prov/reply' 'onb/internal/claim/request'
	'onb/claim/json' 'onb/internal/stats' '$SYS/onboard/claimsvc/claimsvc-1'
	'$share/g/devices/dev-2/commands/x' 'devices/DEV-1/telemetry')
ops=(connect dev-1)
for t in "${dollar[@]}"; do ops+=(pub "$t" '{"v":1,"clientId":"dev-2","topic":"$aws/certificates/create-from-csr/json/accepted","payload":"ATK-B4"}' qos=1); done
out=$(raw dev-1 "${ops[@]}" close)
check "publish to ${#dollar[@]} '\$', internal and lookalike topics: every PUBACK is 0x87" \
	bash -c "[ \$(awk '\$1==\"puback\"' <<<'$out' | wc -l) -eq ${#dollar[@]} ] && ! awk '\$1==\"puback\"{print \$3}' <<<'$out' | grep -qv '^135$'"
for t in onb/internal/prov/reply onb/internal/prov/request '$onb/void'; do
	check "  ... the broker denied '$t'" wait_for 3 denied_logged dev-1 "$t"
done
check "  ... nothing reached anyone (forged envelopes included)" nowhere ATK-B4

# ---------------------------------------------------------------- retained messages
ops=(connect dev-1)
for t in devices/dev-2/commands/cfg2 devices/dev-2/status onb/internal/prov/reply '$onb/void' '$SYS/broker/x'; do
	ops+=(pub "$t" ATK-C qos=1 retain=1)
done
ops+=(pub devices/dev-1/status RET-OK-C qos=1 retain=1)
out=$(raw dev-1 "${ops[@]}" close)
check "retained publishes to 5 forbidden topics: 0x87" \
	test "$(pubacks "$out" | sed -n 1,5p | sort -u)" = 135
check "  ... while its own status may be retained (control)" accepted "$(pubacks "$out" | tail -n 1)"
out=$(raw spy2 connect spy2 sub '#' sub '$onb/#' sub '$SYS/broker/x' wait 800 close)
check "a later subscriber to everything gets the allowed retained message" grep -q "RET-OK-C" <<<"$out"
refute "  ... and no forbidden one was stored" grep -q ATK-C <<<"$out"

# ---------------------------------------------------------------- topic aliases (MQTT 5)
out=$(raw dev-1 connect dev-1 pub devices/dev-1/telemetry OK-E qos=1 alias=1 pub '' OK-E qos=1 alias=1 \
	pub devices/dev-2/commands/x ATK-E qos=1 alias=1 pub '' ATK-E qos=1 alias=1 close)
codes=$(pubacks "$out" | tr '\n' ' ')
check "topic alias: own topic accepted, alias re-pointed at dev-2 refused twice ($codes)" \
	bash -c "accepted() { [ \"\$1\" = 0 ] || [ \"\$1\" = 16 ]; }; set -- $codes; accepted \$1 && accepted \$2 && [ \$3 = 135 ] && [ \$4 = 135 ]"
check "  ... nothing reached dev-2 or the spy" nowhere ATK-E

# ---------------------------------------------------------------- very deep and very long topics
deep_other="devices/dev-2/commands$(printf '/x%.0s' $(seq 197))"
deep_own="devices/dev-1/telemetry$(printf '/x%.0s' $(seq 197))"
long_other="devices/dev-2/commands/$(head -c 65000 /dev/zero | tr '\0' a)"
out=$(raw dev-1 connect dev-1 pub "$deep_other" ATK-F qos=1 pub "$long_other" ATK-F qos=1 \
	pub "$deep_own" OK-F qos=1 close)
check "200-level and 64 KB topics into dev-2's tree: 0x87" test "$(pubacks "$out" | sed -n 1,2p | sort -u)" = 135
check "  ... a 200-level topic in its own tree is accepted (control)" accepted "$(pubacks "$out" | tail -n 1)"
check "  ... and delivered" wait_for 3 grep -qF "$deep_own OK-F" "$T/spy.out"
codes=$(sub_codes dev-1 dev-1 "devices/dev-2/commands/$(head -c 65000 /dev/zero | tr '\0' b)" \
	"devices/+$(printf '/+%.0s' $(seq 198))")
check "64 KB and 200-level filters outside its tree: 0x87" test "$(sort -u <<<"$codes")" = 135
check "  ... nothing reached dev-2 or the spy" nowhere ATK-F
check "the broker still serves after all of it" pub dev-1 dev-1 devices/dev-1/telemetry

# ---------------------------------------------------------------- wills
# A will is checked when it fires, against the policy of that moment. The
# broker sends it after the DISCONNECT event (2.0.11: context__disconnect),
# so the plugin keeps an ended session's policy until the next tick for it.
# The broker logs no denied will: the plugin does ("denied will of ...").
# will_denied CLIENT TOPIC: the plugin logged the denial of that will.
will_denied() { grep -qF "onboard: denied will of $1 to '$2'" "$T/mosquitto.log"; }
raw_bg dev-1 "$T/will1.out" connect dev-1 will=devices/dev-2/commands/reboot willmsg=ATK-D1 wait 300 drop
wait "$RAW_PID" || true
check "a will aimed at dev-2's commands was accepted at CONNECT" grep -q "connack 0" "$T/will1.out"
check "  ... but when it fired it was denied and logged" wait_for 3 will_denied dev-1 devices/dev-2/commands/reboot
check "  ... and nothing reached dev-2 or the spy" nowhere ATK-D1
raw_bg dev-1 "$T/will2.out" connect dev-1 will=devices/dev-2/commands/cfg3 willmsg=ATK-D2 willretain=1 wait 300 drop
wait "$RAW_PID" || true
raw_bg dev-1 "$T/will3.out" connect dev-1 will=onb/internal/prov/reply \
	'willmsg={"v":1,"clientId":"dev-2","topic":"$aws/certificates/create-from-csr/json/accepted","payload":"ATK-D3"}' \
	wait 300 drop
wait "$RAW_PID" || true
check "a retained will into dev-2's tree was denied" wait_for 3 will_denied dev-1 devices/dev-2/commands/cfg3
out=$(raw spy2 connect spy2 sub '#' sub '$onb/#' wait 800 close)
check "  ... and not stored" bash -c "! grep -q ATK-D2 <<<'$out' && ! grep -q ATK-D2 '$T/spy.out'"
check "a will forging a provisioning reply was denied" wait_for 3 will_denied dev-1 onb/internal/prov/reply
check "  ... and went nowhere" nowhere ATK-D3

# Control: a will on the device's own status topic (docs/policies.md calls
# it "a good last-will topic") is delivered, or the cases above prove
# nothing about the will path.
raw_bg dev-1 "$T/will4.out" connect dev-1 will=devices/dev-1/status willmsg=WILL-OK-D4 wait 300 drop
wait "$RAW_PID" || true
check "a will on its own status topic is delivered (control)" \
	wait_for 3 grep -q "devices/dev-1/status WILL-OK-D4" "$T/spy.out"
raw_bg dev-1 "$T/will4r.out" connect dev-1 will=devices/dev-1/status willmsg=WILL-RET-D4 willretain=1 wait 300 drop
wait "$RAW_PID" || true
check "a retained will on its own status topic is delivered" \
	wait_for 3 grep -q "devices/dev-1/status WILL-RET-D4" "$T/spy.out"
out=$(raw spy2 connect spy2 sub devices/dev-1/status wait 800 close)
check "  ... and kept for later subscribers" \
	grep -q "msg devices/dev-1/status WILL-RET-D4" <<<"$out"
raw dev-1 connect dev-1 pub devices/dev-1/status '' qos=1 retain=1 close > /dev/null # clears it

# A takeover (same client id connects again) sends the old connection's
# will after the new one was admitted, before the old one's DISCONNECT.
raw_bg dev-1 "$T/will8.out" connect dev-1 will=devices/dev-1/status willmsg=WILL-TAKEOVER-D8 wait 5000
wait_for 5 grep -q "connack 0" "$T/will8.out"
raw dev-1 connect dev-1 wait 200 close > /dev/null
check "a takeover delivers the replaced connection's will" \
	wait_for 3 grep -q "devices/dev-1/status WILL-TAKEOVER-D8" "$T/spy.out"
wait "$RAW_PID" || true

# Wills skip MOSQ_EVT_MESSAGE, where requests are stamped and re-routed and
# internal replies swallowed: a will may not use those topics even where the
# identity's policy lets it publish there (claim: the request topics;
# claimsvc: the reply topic).
new_device claimer claim-ca
new_device claimsvc-w service-ca
raw_bg claimer "$T/will9c.out" connect claimer will='$aws/certificates/create-from-csr/json' \
	willmsg=ATK-D9 wait 300 drop
wait "$RAW_PID" || true
raw_bg claimsvc-w "$T/will9s.out" connect claimsvc-w will=onb/internal/prov/reply \
	'willmsg={"v":1,"clientId":"dev-2","topic":"$aws/certificates/create-from-csr/json/accepted","payload":"ATK-D9S"}' \
	wait 300 drop
wait "$RAW_PID" || true
check "a claim identity's will on a provisioning request topic is denied" \
	wait_for 3 will_denied claimer '$aws/certificates/create-from-csr/json'
check "a service's will on the internal reply topic is denied" \
	wait_for 3 will_denied claimsvc-w onb/internal/prov/reply
check "  ... and neither went anywhere raw" nowhere ATK-D9

# MQTT 5 delayed wills fire after the tick has dropped the ended session:
# denied (docs/policies.md, "Wills").
raw_bg dev-1 "$T/will10.out" connect dev-1 will=devices/dev-1/status willmsg=WILL-DELAYED-D10 willdelay=1 \
	wait 300 drop
wait "$RAW_PID" || true
check "a delayed will is denied and logged" wait_for 5 grep -qF \
	"denied will of dev-1 to 'devices/dev-1/status': its connection has ended" "$T/mosquitto.log"
check "  ... and not delivered" nowhere WILL-DELAYED-D10

new_device dev-3; register dev-3 active
raw_bg dev-3 "$T/will5.out" connect dev-3 will=devices/dev-3/status willmsg=ATK-D5 wait 5000
wait_for 5 grep -q "connack 0" "$T/will5.out"
"$ONBOARDCTL" device revoke dev-3 --reason "will test" > /dev/null
check "revoked: the session with a pending will is disconnected" wait_for 3 grep -q "disconnecting dev-3" "$T/mosquitto.log"
check "  ... and the revoked device's will is not delivered" nowhere ATK-D5
new_device dev-4; register dev-4 active
raw_bg dev-4 "$T/will6.out" connect dev-4 will=devices/dev-4/telemetry willmsg=ATK-D6 wait 1200 drop
wait_for 5 grep -q "connack 0" "$T/will6.out"
"$ONBOARDCTL" device quarantine dev-4 > /dev/null
wait_for 3 grep -q "dev-4: active -> quarantined" "$T/mosquitto.log"
wait "$RAW_PID" || true
check "a telemetry will set while active is denied once quarantined" \
	wait_for 3 will_denied dev-4 devices/dev-4/telemetry
check "  ... and does not fire" nowhere ATK-D6
raw_bg dev-4 "$T/will6q.out" connect dev-4 will=devices/dev-4/status willmsg=WILL-Q-D6 wait 300 drop
wait "$RAW_PID" || true
check "  ... while its status will, allowed in quarantine, is delivered (control)" \
	wait_for 3 grep -q "devices/dev-4/status WILL-Q-D6" "$T/spy.out"

# ---------------------------------------------------------------- MQTT 3.1.1 and 3.1
out=$(raw dev-1 -V 4 connect dev-1 pub devices/dev-2/commands/reboot ATK-G qos=1 sub '#' sub 'devices/+/commands/#' close)
check "3.1.1: the PUBACK cannot say 'denied' (reason-less)" grep -q "^puback 1 0$" <<<"$out"
check "  ... but the broker denied the PUBLISH" wait_for 3 denied_logged dev-1 devices/dev-2/commands/reboot
check "  ... and SUBSCRIBE to '#' and devices/+/commands/# gets 0x80" \
	test "$(awk '$1 == "suback" { print $3 }' <<<"$out" | sort -u)" = 128
raw_bg dev-1 "$T/will7.out" -V 4 connect dev-1 will=devices/dev-2/commands/will311 willmsg=ATK-G wait 300 drop
wait "$RAW_PID" || true
check "  ... a 3.1.1 will into dev-2's tree is denied" wait_for 3 will_denied dev-1 devices/dev-2/commands/will311
check "  ... and goes nowhere either" nowhere ATK-G
timeout 10 mosquitto_pub $(tls_args dev-1) -i dev-1 -V mqttv31 -q 1 -t devices/dev-2/commands/v31 -m ATK-G31 \
	> "$T/v31.out" 2>&1 || true
check "3.1: the broker denied the PUBLISH" wait_for 3 denied_logged dev-1 devices/dev-2/commands/v31
check "  ... nothing delivered" nowhere ATK-G31

finish

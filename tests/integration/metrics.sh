# Metrics: the plugin and claimsvc publish their counters retained under
# $SYS/onboard/... (readable by service identities, not by devices) and store
# them for `onboardctl stats`; a scripted scenario moves the counters it should.
source "$(dirname "$0")/harness.sh"
BROKER_EXTRA="plugin_opt_metrics_interval_s 1
plugin_opt_broker_id mqtt-test" up
CLAIMSVC_EXTRA="metrics_interval_s 1" start_claimsvc claimsvc-1

stats() { "$ONBOARDCTL" --json stats; }
# counter SOURCE JQ-PATH: one number from `onboardctl stats --json` (0 if absent)
counter() { stats | jq -r "(.\"$1\"$2 // 0)"; }
# grows SOURCE JQ-PATH BEFORE: the counter rises above BEFORE within 4 s
grows() { wait_for 4 bash -c "[ \"\$(\"$ONBOARDCTL\" --json stats | jq -r '(.\"$1\"$2 // 0)')\" -gt $3 ]"; }

check "the broker's counters reach onboardctl stats" wait_for 5 bash -c "\"$ONBOARDCTL\" --json stats | jq -e '.\"broker/mqtt-test\".connects' >/dev/null"
check "claimsvc's counters reach onboardctl stats" wait_for 5 bash -c "\"$ONBOARDCTL\" --json stats | jq -e '.\"claimsvc/claimsvc-1\".handled' >/dev/null"
"$ONBOARDCTL" stats > "$T/stats.txt"
check "onboardctl stats prints both, one counter per line" \
	bash -c "grep -q '^broker/mqtt-test' '$T/stats.txt' && grep -q '^claimsvc/claimsvc-1' '$T/stats.txt' \
		&& grep -q 'connects.denied.not-registered' '$T/stats.txt'"

# $SYS/onboard/#: a service identity reads the retained documents, a device may not.
new_device claimsvc-mon service-ca
# shellcheck disable=SC2046
timeout 10 mosquitto_sub $(tls_args claimsvc-mon) -i claimsvc-mon -V 5 -t '$SYS/onboard/#' -v -C 2 -W 5 \
	> "$T/sys.out" 2>&1 || true
check "a service identity receives the retained \$SYS/onboard/broker/<id> document" \
	grep -q '^\$SYS/onboard/broker/mqtt-test {' "$T/sys.out"
check "  ... and claimsvc's \$SYS/onboard/claimsvc/<client id>" grep -q '^\$SYS/onboard/claimsvc/claimsvc-1 {' "$T/sys.out"
new_device dev-1; register dev-1 active
# shellcheck disable=SC2046
timeout 10 mosquitto_sub $(tls_args dev-1) -i dev-1 -V 5 -t '$SYS/onboard/#' -C 1 -W 3 > "$T/devsys.out" 2>&1 || true
check "a device may not subscribe to \$SYS/onboard/#" grep -q "denied" "$T/devsys.out"
check "a device may not publish counters" denied_pub dev-1 dev-1 '$SYS/onboard/claimsvc/dev-1'

# A refused connect.
b=$(counter broker/mqtt-test '.connects.denied."not-registered"')
new_device stranger
refused stranger stranger devices/stranger/telemetry || true
check "a connect refused as not-registered increments connects.denied.not-registered" \
	grows broker/mqtt-test '.connects.denied."not-registered"' "$b"
a=$(counter broker/mqtt-test '.connects.allowed')
pub dev-1 dev-1 devices/dev-1/telemetry
check "an admitted connect increments connects.allowed" grows broker/mqtt-test '.connects.allowed' "$a"

# ACL denials by action.
b=$(counter broker/mqtt-test '.acl_denied.publish')
denied_pub dev-1 dev-1 devices/dev-2/telemetry || true
check "a denied publish increments acl_denied.publish" grows broker/mqtt-test '.acl_denied.publish' "$b"
b=$(counter broker/mqtt-test '.acl_denied.subscribe')
# shellcheck disable=SC2046
timeout 10 mosquitto_sub $(tls_args dev-1) -i dev-1 -V 5 -t 'devices/+/telemetry' -C 1 -W 2 >/dev/null 2>&1 || true
check "a denied subscribe increments acl_denied.subscribe" grows broker/mqtt-test '.acl_denied.subscribe' "$b"

# Registry events applied, with their lag.
b=$(counter broker/mqtt-test '.events.applied.state')
"$ONBOARDCTL" device quarantine dev-1 >/dev/null
check "a state change increments events.applied.state" grows broker/mqtt-test '.events.applied.state' "$b"
lag=$(counter broker/mqtt-test '.events.lag_ms.max')
check "  ... and reports the event lag in ms (max $lag)" test "$lag" -ge 0 -a "$lag" -lt 5000

# claimsvc: handled and rejected by errorCode.
new_device claim-1 claim-ca
b=$(counter claimsvc/claimsvc-1 '.rejected_by.InvalidCsr')
h=$(counter claimsvc/claimsvc-1 '.handled')
rr claim-1 claim-1 '$aws/certificates/create-from-csr/json' '$aws/certificates/create-from-csr/json/rejected' \
	'{"certificateSigningRequest":"garbage"}' >/dev/null
check "a bad CSR increments claimsvc's rejected_by.InvalidCsr" grows claimsvc/claimsvc-1 '.rejected_by.InvalidCsr' "$b"
check "  ... and handled" grows claimsvc/claimsvc-1 '.handled' "$h"
b=$(counter broker/mqtt-test '.provisioning.requests')
rr claim-1 claim-1 '$aws/certificates/create/json' '$aws/certificates/create/json/rejected' '{}' >/dev/null
check "a provisioning request increments the plugin's provisioning.requests" \
	grows broker/mqtt-test '.provisioning.requests' "$b"

# Redis errors: a hung registry costs a refused connect and is counted.
b=$(counter broker/mqtt-test '.redis_errors')
pause_redis
refused stranger dev-1 devices/dev-1/telemetry || true
sleep 0.5
resume_redis
check "a hung registry increments redis_errors" grows broker/mqtt-test '.redis_errors' "$b"

# The documents expire when their publisher stops.
kill "${CLAIMSVC_PIDS[0]}"; wait "${CLAIMSVC_PIDS[0]}" 2>/dev/null || true
check "a stopped claimsvc disappears from onboardctl stats" \
	wait_for 12 bash -c "! \"$ONBOARDCTL\" --json stats | jq -e '.\"claimsvc/claimsvc-1\"' >/dev/null"

finish

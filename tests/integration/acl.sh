# Authorisation of publish, subscribe and delivery through the shipped
# policies (policies/*.json), with real clients.
source "$(dirname "$0")/harness.sh"
up

new_device dev-1; register dev-1 active
new_device dev-2; register dev-2 active
new_device dev-q; register dev-q active
new_device ops; register ops active
"$ONBOARDCTL" device quarantine dev-q >/dev/null

# "ops" holds an operator policy that may command any device.
cat > "$T/ops.json" <<'JSON'
{ "version": "2026-01-09", "statement": [
  { "effect": "allow", "action": ["connect"], "resource": ["client:${deviceId}"] },
  { "effect": "allow", "action": ["publish"], "resource": ["topic:devices/+/commands/#"] } ] }
JSON
"$ONBOARDCTL" policy put ops-test "$T/ops.json" >/dev/null
"$ONBOARDCTL" policy assign ops ops-test >/dev/null

# sub_denied AS FILTER: the broker refuses the subscription.
sub_denied() {
	# shellcheck disable=SC2046
	timeout 10 mosquitto_sub $(tls_args "$1") -i "$1" -V 5 -t "$2" -C 1 -W 3 > "$T/sub.out" 2>&1
	grep -q "denied" "$T/sub.out"
}
# sub_granted AS FILTER: subscribed, and still waiting when the timeout ends it.
sub_granted() {
	# shellcheck disable=SC2046
	timeout 10 mosquitto_sub $(tls_args "$1") -i "$1" -V 5 -t "$2" -C 1 -W 1 > "$T/sub.out" 2>&1
	! grep -q "denied" "$T/sub.out"
}

# dev-2 listens to its commands: nothing dev-1 does may show up there.
sub_bg dev-2 dev-2 'devices/dev-2/commands/#' "$T/dev2.out"
wait_subscribed dev-2

check "publish telemetry in its own tree" pub dev-1 dev-1 devices/dev-1/telemetry
check "publish status in its own tree" pub dev-1 dev-1 devices/dev-1/status
check "publish to another device's commands is refused" denied_pub dev-1 dev-1 devices/dev-2/commands/x
check "publish outside any device tree is refused" denied_pub dev-1 dev-1 other/topic
check "publish to \$SYS is refused" denied_pub dev-1 dev-1 '$SYS/broker/x'
check "publish to the internal tree is refused" denied_pub dev-1 dev-1 onb/internal/prov/reply
check "publish to devices/dev-1 (no sub-topic) is refused" denied_pub dev-1 dev-1 devices/dev-1
check "publish to a prefix twin (devices/dev-1x/...) is refused" denied_pub dev-1 dev-1 devices/dev-1x/telemetry
check "publish to its own commands (device -> device) is refused" denied_pub dev-1 dev-1 devices/dev-1/commands/x
sleep 0.3
refute "dev-2 received nothing from dev-1" grep -q . "$T/dev2.out"

check "subscribe to its own commands" sub_granted dev-1 'devices/dev-1/commands/#'
check "subscribe to a narrower filter of its commands" sub_granted dev-1 'devices/dev-1/commands/+/x'
check "shared subscription to its own commands" sub_granted dev-1 '$share/g/devices/dev-1/commands/#'
for f in 'devices/+/commands/#' '#' '+/+/+' '$SYS/#' 'devices/dev-2/#' 'devices/dev-1/#' \
		'devices/#' '$share/g/devices/dev-2/commands/#' '$share/g/#' '$aws/#' 'onb/#' \
		'onb/internal/prov/request' '$share/claimsvc/onb/internal/prov/request'; do
	check "subscribe to '$f' is refused" sub_denied dev-1 "$f"
done

# Delivery: what ops sends to dev-2 reaches dev-2, and only dev-2.
sub_bg dev-1 dev-1 'devices/dev-1/commands/#' "$T/dev1.out"
wait_subscribed dev-1
MSG=reboot pub ops ops devices/dev-2/commands/reboot
check "a command reaches its device" wait_for 3 grep -q "devices/dev-2/commands/reboot reboot" "$T/dev2.out"
refute "  ... and no other" grep -q reboot "$T/dev1.out"

# Quarantine: status out; subscribed to its commands, it receives remediation only.
check "quarantined device may publish its status" pub dev-q dev-q devices/dev-q/status
check "quarantined device may not publish telemetry" denied_pub dev-q dev-q devices/dev-q/telemetry
sub_bg dev-q dev-q 'devices/dev-q/commands/#' "$T/devq.out"
wait_subscribed dev-q
MSG=ordinary pub ops ops devices/dev-q/commands/reboot
MSG=fixit pub ops ops devices/dev-q/commands/remediation/patch
check "quarantined device receives remediation" wait_for 3 grep -q fixit "$T/devq.out"
refute "  ... but not ordinary commands" grep -q ordinary "$T/devq.out"

# device-tenant.json: an active device bound to a tenant also lives in the tenant's tree.
new_device dev-t; "$ONBOARDCTL" device register --id dev-t --cert "$T/dev-t.pem" --tenant acme >/dev/null
check "tenant device publishes in its tenant tree" pub dev-t dev-t tenants/acme/devices/dev-t/telemetry
check "tenant device still has its own tree" pub dev-t dev-t devices/dev-t/telemetry
check "tenant device cannot publish into another tenant" denied_pub dev-t dev-t tenants/other/devices/dev-t/telemetry
check "tenant device cannot publish as another device of its tenant" denied_pub dev-t dev-t tenants/acme/devices/dev-1/telemetry
check "tenant device subscribes to its tenant broadcast" sub_granted dev-t 'tenants/acme/broadcast/#'
check "tenant device cannot subscribe to its whole tenant" sub_denied dev-t 'tenants/acme/#'
check "a device without a tenant has no tenant tree" denied_pub dev-1 dev-1 tenants/acme/devices/dev-1/telemetry

# claim.json: a claim identity reaches the provisioning topics and nothing else.
new_device claim-1 claim-ca
check "claim identity subscribes to its provisioning answers" \
	sub_granted claim-1 '$aws/certificates/create-from-csr/json/accepted'
check "claim identity cannot subscribe to \$aws/#" sub_denied claim-1 '$aws/#'
check "claim identity cannot subscribe to device trees" sub_denied claim-1 'devices/#'
check "claim identity cannot publish telemetry" denied_pub claim-1 claim-1 devices/claim-1/telemetry
check "claim identity cannot publish an answer itself" denied_pub claim-1 claim-1 '$aws/certificates/create-from-csr/json/accepted'

# service.json: claimsvc takes requests in and sends replies out, nothing else.
new_device claimsvc-1 service-ca
check "service subscribes to provisioning requests (shared)" \
	sub_granted claimsvc-1 '$share/claimsvc/onb/internal/prov/request'
check "service cannot subscribe to device trees" sub_denied claimsvc-1 'devices/#'
check "service cannot publish device commands" denied_pub claimsvc-1 claimsvc-1 devices/dev-1/commands/x
check "service cannot inject requests" denied_pub claimsvc-1 claimsvc-1 onb/internal/prov/request
check "a service client id must be its certificate's CN" refused claimsvc-1 claimsvc-2 onb/internal/prov/reply

finish

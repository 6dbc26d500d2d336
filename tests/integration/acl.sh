# Authorisation of publish, subscribe and delivery for admitted devices.
source "$(dirname "$0")/harness.sh"
up

new_device dev-1; register dev-1 active
new_device dev-2; register dev-2 active
new_device dev-q; register dev-q active
"$ONBOARDCTL" device quarantine dev-q >/dev/null

# dev-2 watches its own tree: nothing dev-1 does may show up there.
sub_bg dev-2 dev-2 'devices/dev-2/#' "$T/dev2.out"
wait_subscribed dev-2

# sub_denied AS FILTER: the broker refuses the subscription.
sub_denied() {
	# shellcheck disable=SC2046
	timeout 10 mosquitto_sub $(tls_args "$1") -i "$1" -V 5 -t "$2" -C 1 -W 3 > "$T/sub.out" 2>&1
	grep -q "denied" "$T/sub.out"
}
# sub_granted AS FILTER: subscribed, and still waiting for messages when the
# timeout ends it.
sub_granted() {
	# shellcheck disable=SC2046
	timeout 10 mosquitto_sub $(tls_args "$1") -i "$1" -V 5 -t "$2" -C 1 -W 1 > "$T/sub.out" 2>&1
	! grep -q "denied" "$T/sub.out"
}

check "publish inside its own tree" pub dev-1 dev-1 devices/dev-1/telemetry
check "publish to another device's tree is refused" denied_pub dev-1 dev-1 devices/dev-2/commands/x
check "publish outside any device tree is refused" denied_pub dev-1 dev-1 other/topic
check "publish to \$SYS is refused" denied_pub dev-1 dev-1 '$SYS/broker/x'
check "publish to devices/dev-1 (no sub-topic) is refused" denied_pub dev-1 dev-1 devices/dev-1
check "publish to a prefix twin (devices/dev-1x/...) is refused" denied_pub dev-1 dev-1 devices/dev-1x/t
sleep 0.5
refute "dev-2 received nothing from dev-1" grep -q . "$T/dev2.out"

check "subscribe inside its own tree" sub_granted dev-1 'devices/dev-1/commands/#'
check "shared subscription inside its own tree" sub_granted dev-1 '$share/g/devices/dev-1/#'
for f in 'devices/+/telemetry' '#' '$SYS/#' 'devices/dev-2/#' '+/dev-1/#' 'devices/#' \
		'$share/g/devices/dev-2/#' '$share/g/#' 'devices/dev-1' '$aws/#'; do
	check "subscribe to '$f' is refused" sub_denied dev-1 "$f"
done

# Delivery is checked too: a retained message in dev-1's tree reaches dev-1 only.
MSG=retained pub dev-1 dev-1 devices/dev-1/state -r
check "dev-1 receives its own retained state" bash -c \
	"timeout 10 mosquitto_sub $(tls_args dev-1) -i dev-1 -V 5 -t devices/dev-1/state -C 1 -W 3 | grep -q retained"

# Quarantine narrows to status reports only.
check "quarantined device may publish its status" pub dev-q dev-q devices/dev-q/status
check "quarantined device may not publish telemetry" denied_pub dev-q dev-q devices/dev-q/telemetry
check "quarantined device may not subscribe to its commands" sub_denied dev-q 'devices/dev-q/commands/#'

finish

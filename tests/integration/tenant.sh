# Tenants over MQTT: a tenant's back-end redeems a claim code on its own
# connection, the device's live session switches to its tenant policy, and
# tenants cannot see or command each other's devices.
source "$(dirname "$0")/harness.sh"
up
CLAIMSVC_EXTRA="claim_max_failures 3" start_claimsvc claimsvc-1

printf 'serial\nT0001\nT0002\n' > "$T/allow.csv"
"$ONBOARDCTL" allowlist import "$T/allow.csv" >/dev/null
devsim_claim --serial T0001 --out "$T/dev" >/dev/null
devsim_claim --serial T0002 --out "$T/dev" >/dev/null
for d in T0001 T0002; do cp "$T/dev/$d.pem" "$T/$d.pem"; cp "$T/dev/$d.key" "$T/$d.key"; done
code=$("$ONBOARDCTL" claimcode issue --device T0001 --format uri)
code2=$("$ONBOARDCTL" claimcode issue --device T0002 --format uri)
"$ONBOARDCTL" pki issue --ca "$PKI/service-ca" --cn app-acme --tenant acme --out "$T/app-acme" >/dev/null
"$ONBOARDCTL" pki issue --ca "$PKI/service-ca" --cn app-beta --tenant beta --out "$T/app-beta" >/dev/null
# One connection per certificate (client id == CN): the listener and the
# claiming connection of acme's back-end hold two certificates.
"$ONBOARDCTL" pki issue --ca "$PKI/service-ca" --cn app-acme-2 --tenant acme --out "$T/app-acme-2" >/dev/null
"$ONBOARDCTL" pki issue --ca "$PKI/service-ca" --cn app-beta-2 --tenant beta --out "$T/app-beta-2" >/dev/null

sub_bg app-acme app-acme 'tenants/acme/#' "$T/acme.out"
wait_subscribed app-acme
sub_bg app-beta app-beta 'tenants/beta/#' "$T/beta.out"
wait_subscribed app-beta
# T0001's live session: listening for its tenant's commands is refused while unclaimed.
coproc DEV { mosquitto_pub $(tls_args T0001) -i T0001 -V 5 -q 1 -t tenants/acme/devices/T0001/telemetry -l 2>&1; }
BG_PIDS+=("$DEV_PID")
wait_for 5 grep -q "New client connected .* as T0001" "$T/mosquitto.log"
echo before >&"${DEV[1]}"
check "unclaimed, the device may not publish under a tenant" wait_for 3 grep -q "Denied PUBLISH from T0001" "$T/mosquitto.log"

claim() { rr "$1" "$1" onb/claim/json "onb/claim/json/$2" "$3"; }
r=$(claim app-acme-2 accepted "{\"claimCode\":\"$code\",\"clientToken\":\"t-1\"}")
echo "# $r"
check "acme's back-end claims T0001 over MQTT" grep -q '"deviceId":"T0001","tenantId":"acme","state":"active"' <<<"$r"
check "  ... the clientToken comes back" grep -q '"clientToken":"t-1"' <<<"$r"
check "  ... the live session switches to its tenant policy" \
	wait_for 2 grep -q "T0001: unclaimed -> active, policy device-tenant" "$T/mosquitto.log"
echo after >&"${DEV[1]}"
check "  ... and acme's back-end receives its telemetry, no reconnect" \
	wait_for 3 grep -q "tenants/acme/devices/T0001/telemetry after" "$T/acme.out"
refute "beta's back-end received nothing" grep -q . "$T/beta.out"
exec {DEV[1]}>&-

r=$(claim app-beta-2 rejected "{\"claimCode\":\"$code\"}")
check "the same code for another tenant is rejected" grep -q '"errorCode":"InvalidCode"' <<<"$r"
check "  ... T0001 stays with acme" bash -c "\"$ONBOARDCTL\" --json device show T0001 | grep -q '\"tenant\":\"acme\"'"
r=$(claim app-beta-2 rejected "{\"claimCode\":\"$code2\",\"tenantId\":\"acme\"}")
check "a tenantId in the payload is refused (the certificate names the tenant)" grep -q InvalidRequest <<<"$r"

# Isolation between tenants.
sub_denied() {
	# shellcheck disable=SC2046
	timeout 10 mosquitto_sub $(tls_args "$1") -i "$1" -V 5 -t "$2" -C 1 -W 3 > "$T/sub.out" 2>&1
	grep -q "denied" "$T/sub.out"
}
check "beta cannot subscribe to acme's tree" sub_denied app-beta 'tenants/acme/#'
check "beta cannot command acme's device" denied_pub app-beta app-beta tenants/acme/devices/T0001/commands/reboot
check "acme cannot publish as its device" denied_pub app-acme app-acme tenants/acme/devices/T0001/telemetry
check "acme commands its own device" pub app-acme app-acme tenants/acme/devices/T0001/commands/reboot
check "a claim identity cannot claim" denied_pub claimsvc-1 claimsvc-1 onb/claim/json
new_device claimer claim-ca
check "a device-side identity cannot claim" denied_pub claimer claimer onb/claim/json

# Brute force: three wrong codes lock beta out; then even a right code is refused.
wrong='{"claimCode":"0000-0000-0000-0000-0000-0000"}'
for i in 1 2 3; do claim app-beta-2 rejected "$wrong" > "$T/bf$i.out" || true; done
r=$(claim app-beta-2 rejected "{\"claimCode\":\"$code2\"}")
echo "# $r"
check "after 3 failures the tenant is locked out (429), even with a right code" grep -q '"statusCode":429' <<<"$r"
check "  ... T0002 is still unclaimed" bash -c "\"$ONBOARDCTL\" --json device show T0002 | grep -q '\"state\":\"unclaimed\"'"
check "  ... the lockout is audited" audit_has "locked-out"

# A phone opens the label's https link; the tenant's page hands it to its
# back-end, which claims with the link as it came.
new_device T0003; register T0003 unclaimed
link=$("$ONBOARDCTL" claimcode issue --device T0003 --format uri --link 'https://claim.example.com/c?d={device}&c={code}')
c3=${link##*c=}
for ((i = 0; i < 23; i++)); do  # swap the first two adjacent symbols that differ
	a=${c3:i:1}; b=${c3:i+1:1}
	if [ "$a" != "$b" ]; then typo3=${c3:0:i}$b$a${c3:i+2}; break; fi
done
r=$(claim app-acme-2 rejected "{\"claimCode\":\"https://claim.example.com/c?d=T0003&c=$typo3\"}")
check "a typo in a phone link is caught by the check symbol (400)" grep -q '"statusCode":400.*typo' <<<"$r"
r=$(claim app-acme-2 accepted "{\"claimCode\":\"$link\"}")
echo "# $r"
check "acme's back-end claims T0003 with the https link over MQTT" \
	grep -q '"deviceId":"T0003","tenantId":"acme","state":"active"' <<<"$r"

finish

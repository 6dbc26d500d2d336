#!/usr/bin/env bash
# The local demo, on loopback only: a development PKI, redis-server, mosquitto
# with the plugin and claimsvc on free ports; a simulated device provisions
# itself by claim (AWS IoT fleet-provisioning wire format), a customer claims
# it with its QR code, its telemetry reaches the customer's back-end, and the
# operator revokes it. Everything runs in a temp dir and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

scripts/deps.sh
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$ROOT/build" -j"$(nproc)" >/dev/null

B="$ROOT/build"
CTL="$B/cli/onboardctl"
T=$(mktemp -d "${TMPDIR:-/tmp}/onb-demo.XXXXXX")
PKI="$T/pki"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
port() { "$B/tests/tools/freeport"; }
wait_file() { for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; return 1; }

step "1. a development PKI: root, device, claim, manufacturer and service CAs"
"$CTL" pki init "$PKI" | grep -v '^created' || true
ls "$PKI"

step "2. redis-server, mosquitto with the plugin, the shipped policies, claimsvc"
REDIS_PORT=$(port); MQTT_PORT=$(port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
	--logfile "$T/redis.log" & PIDS+=($!)
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.05; done
export ONBOARD_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
"$CTL" policy init "$ROOT/policies"
# The shipped config, as is: started as root, the broker drops to the
# mosquitto user (Debian's package creates it) before it loads the plugin and
# its TLS files, so it gets a directory of its own with copies of what it
# reads. The CA keys stay in $PKI, readable by root alone.
BRK="$T/broker"
mkdir -p "$BRK"
cp "$PKI"/{ca-bundle,server,device-ca,claim-ca,manufacturer-ca,service-ca}.pem "$PKI/server.key" \
	"$B/plugin/mosquitto_onboard.so" "$BRK/"
: > "$BRK/mosquitto.log"
RUN_AS=()
if [ "$(id -u)" -eq 0 ]; then
	if id mosquitto >/dev/null 2>&1; then
		chmod 711 "$T"
		chown -R mosquitto: "$BRK"
		chmod 700 "$BRK"
	else
		echo "(no 'mosquitto' user on this machine: the broker keeps running as root, with a warning)"
		RUN_AS=(-e "s#^user mosquitto#user root#")
	fi
fi
sed -e "s#@PORT@#$MQTT_PORT#; s#@PKI@#$BRK#g; s#@PLUGIN@#$BRK/mosquitto_onboard.so#" \
	-e "s#@REDIS_URL@#$ONBOARD_REDIS_URL#; s#@LOG@#$BRK/mosquitto.log#" "${RUN_AS[@]}" \
	config/mosquitto.conf > "$T/mosquitto.conf"
"$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$T/mosquitto.conf" & PIDS+=($!)
BROKER_PID=$!
wait_file "$BRK/mosquitto.log" "running"
"$CTL" pki issue --ca "$PKI/service-ca" --cn claimsvc-1 --out "$T/claimsvc-1" >/dev/null
mkdir -p "$T/templates"; cp config/templates/*.json "$T/templates/"
cat > "$T/claimsvc.conf" <<CONF
broker_host 127.0.0.1
broker_port $MQTT_PORT
cafile $PKI/ca-bundle.pem
certfile $T/claimsvc-1.pem
keyfile $T/claimsvc-1.key
device_ca_cert $PKI/device-ca.pem
device_ca_key $PKI/device-ca.key
redis_url $ONBOARD_REDIS_URL
templates_dir $T/templates
CONF
"$B/claimsvc/claimsvc" -c "$T/claimsvc.conf" 2> "$T/claimsvc.log" & PIDS+=($!)
wait_file "$BRK/mosquitto.log" "claimsvc-1 .*onb/internal/prov/request" || wait_file "$BRK/mosquitto.log" "Subscribe.*claimsvc-1" || sleep 1
echo "redis 127.0.0.1:$REDIS_PORT, mosquitto (mTLS only, TLS 1.3, running as user $(ps -o user= -p "$BROKER_PID")) 127.0.0.1:$MQTT_PORT, claimsvc connected as a service identity"

step "3. manufacturing: the batch's serials on the allowlist, one claim certificate for the batch"
printf 'serial,birth_fp,batch\nsensor-0001,,batch-42\nsensor-0002,,batch-42\n' > "$T/batch.csv"
"$CTL" allowlist import "$T/batch.csv"
"$CTL" pki issue --ca "$PKI/claim-ca" --cn batch-42-claim --out "$T/claim" >/dev/null
"$CTL" claimcode issue --device sensor-0001 --ttl 90d --format txt > "$T/label.txt"
echo "a claim code for sensor-0001's label was issued (only its hash is stored):"
"$CTL" claimcode show --device sensor-0001

step "4. first boot: sensor-0001 provisions itself by claim (devsim: CSR -> certificate + token -> RegisterThing)"
"$B/tests/devsim/devsim" --port "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" \
	--claim-cert "$T/claim.pem" --claim-key "$T/claim.key" --serial sensor-0001 --out "$T/dev" -v 2>&1 \
	| grep -E "succeeded|provisioned|sensor-0001" || true
"$CTL" device show sensor-0001 | grep -E "^(id|state|tenant|cert_fp):"

step "5. the label on the device: a QR code for the customer's phone"
cat "$T/label.txt"
CODE=$(grep -Eo '([0-9A-Z]{4}-){5}[0-9A-Z]{4}' "$T/label.txt" | sed -n 1p)

step "6. acme's back-end listens to its tenant tree; the device runs, with its new certificate"
"$CTL" pki issue --ca "$PKI/service-ca" --cn app-acme --tenant acme --out "$T/app-acme" >/dev/null
TLS_APP=(-h 127.0.0.1 -p "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" --cert "$T/app-acme.pem" --key "$T/app-acme.key" -V 5)
TLS_DEV=(-h 127.0.0.1 -p "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" --cert "$T/dev/sensor-0001.pem" --key "$T/dev/sensor-0001.key" -V 5)
stdbuf -oL mosquitto_sub "${TLS_APP[@]}" -i app-acme -t 'tenants/acme/#' -v > "$T/app.out" 2>&1 & PIDS+=($!)
# The device: one long-lived MQTT session publishing whatever it is fed.
mkfifo "$T/dev.in"
mosquitto_pub "${TLS_DEV[@]}" -i sensor-0001 -q 1 -t tenants/acme/devices/sensor-0001/telemetry -l \
	< "$T/dev.in" > "$T/dev.out" 2>&1 & DEV=$!; PIDS+=($DEV)
exec 3> "$T/dev.in"
wait_file "$BRK/mosquitto.log" "New client connected .* as sensor-0001"
echo '{"temp":21.0}' >&3
wait_file "$T/dev.out" "Not authorized"
echo "unclaimed, the device may not publish under tenants/acme: $(head -n 1 "$T/dev.out")"

step "7. the customer redeems the code for tenant acme: the live session switches policy, no reconnect"
"$CTL" claim --tenant acme "$CODE"
wait_file "$BRK/mosquitto.log" "sensor-0001: unclaimed -> active"
grep "sensor-0001: unclaimed -> active" "$BRK/mosquitto.log" | sed 's/^[0-9]*: //'
echo "a second redemption of the same code:"
"$CTL" claim --tenant evil "$CODE" || true

step "8. the same session publishes under its tenant; acme's back-end receives it"
echo '{"temp":21.5}' >&3
wait_file "$T/app.out" "sensor-0001/telemetry" && cat "$T/app.out"

step "9. incident: the operator revokes the device; its live session is closed at once"
"$CTL" device revoke sensor-0001 --reason "demo: reported stolen"
wait_file "$BRK/mosquitto.log" "disconnecting sensor-0001" && grep "disconnecting sensor-0001" "$BRK/mosquitto.log" | sed 's/^[0-9]*: //'
exec 3>&-
echo "and it cannot come back:"
mosquitto_pub "${TLS_DEV[@]}" -i sensor-0001 -q 1 -t devices/sensor-0001/telemetry -m x 2>&1 | sed -n 1p || true

step "10. the audit trail of sensor-0001"
"$CTL" audit --device sensor-0001
step "done: everything was stopped and $T removed"

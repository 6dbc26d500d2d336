#!/usr/bin/env bash
# The local demo, on loopback only: a development PKI, redis-server and
# mosquitto with the plugin on free ports, a device that connects and
# publishes, then is revoked and thrown out of its live session.
# Everything runs in a temp dir and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

scripts/deps.sh
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$ROOT/build" -j"$(nproc)" >/dev/null

B="$ROOT/build"
CTL="$B/cli/onboardctl"
T=$(mktemp -d "${TMPDIR:-/tmp}/onb-demo.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
port() { "$B/tests/tools/freeport"; }

step "1. development PKI (onboardctl pki init)"
"$CTL" pki init "$T/pki"

step "2. redis-server and mosquitto with the plugin, on loopback"
REDIS_PORT=$(port); MQTT_PORT=$(port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
	--logfile "$T/redis.log" & PIDS+=($!)
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.05; done
export ONBOARD_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
sed -e "s#@PORT@#$MQTT_PORT#; s#@PKI@#$T/pki#g; s#@PLUGIN@#$B/plugin/mosquitto_onboard.so#" \
	-e "s#@REDIS_URL@#$ONBOARD_REDIS_URL#; s#@LOG@#$T/mosquitto.log#; s#^user mosquitto#user root#" \
	config/mosquitto.conf > "$T/mosquitto.conf"
"$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$T/mosquitto.conf" & PIDS+=($!)
until grep -q "running" "$T/mosquitto.log" 2>/dev/null; do sleep 0.05; done
echo "redis on 127.0.0.1:$REDIS_PORT, mosquitto (mTLS) on 127.0.0.1:$MQTT_PORT"
grep "onboard:" "$T/mosquitto.log" || true

step "3. the shipped policies (policies/*.json) into the registry"
"$CTL" policy init "$ROOT/policies"

step "4. a device certificate, registered in the registry"
"$CTL" pki issue --ca "$T/pki/device-ca" --cn sensor-0001 --out "$T/sensor-0001"
"$CTL" device register --id sensor-0001 --cert "$T/sensor-0001.pem" --state active
"$CTL" device show sensor-0001
TLS=(-h 127.0.0.1 -p "$MQTT_PORT" --cafile "$T/pki/ca-bundle.pem" --cert "$T/sensor-0001.pem" --key "$T/sensor-0001.key" -V 5)

step "5. the device connects and publishes telemetry (QoS 1, acknowledged by the broker)"
mosquitto_pub "${TLS[@]}" -i sensor-0001 -q 1 -t devices/sensor-0001/telemetry -m '{"temp":21.5}' -d \
	| grep -E "CONNACK|PUBACK"
echo "and is refused outside its own tree:"
mosquitto_pub "${TLS[@]}" -i sensor-0001 -q 1 -t devices/sensor-0002/telemetry -m '{}' 2>&1 || true

step "6. the device stays connected, listening for commands"
stdbuf -oL mosquitto_sub "${TLS[@]}" -i sensor-0001 -t 'devices/sensor-0001/commands/#' -d > "$T/sub.out" 2>&1 & SUB=$!; PIDS+=($SUB)
until grep -q "received SUBACK" "$T/sub.out" 2>/dev/null; do sleep 0.05; done
echo "subscriber pid $SUB is connected"

step "7. the operator revokes it: the live session is closed at once"
"$CTL" device revoke sensor-0001 --reason "demo: reported stolen"
for _ in $(seq 40); do kill -0 "$SUB" 2>/dev/null || break; grep -q "disconnecting sensor-0001" "$T/mosquitto.log" && break; sleep 0.05; done
grep "disconnecting sensor-0001" "$T/mosquitto.log"
echo "and it cannot come back:"
mosquitto_pub "${TLS[@]}" -i sensor-0001 -q 1 -t devices/sensor-0001/telemetry -m x 2>&1 || true

step "8. the audit trail"
"$CTL" device show sensor-0001
redis-cli -p "$REDIS_PORT" --raw XRANGE onb:audit - + \
	| awk '/^[0-9]+-[0-9]+$/ { if (line) print line; line = ""; k = ""; next }
	       k == "" { k = $0; next } { line = line k "=" $0 "  "; k = "" } END { if (line) print line }'
step "done: everything was stopped and $T removed"

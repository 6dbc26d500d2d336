#!/usr/bin/env bash
# Starts Redis and the broker with the plugin on loopback, then measures the
# time from `revoke` to the device's socket closing over N devices (default 50).
#   revoke_latency.sh [N] [BROKERS] [--takeover]
# BROKERS (default 1) brokers on the same Redis, devices spread over them;
# --takeover measures the fleet's single-session rule instead (needs 2+).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export ONB_SOURCE_DIR=$ROOT ONB_BUILD_DIR=${ONB_BUILD_DIR:-$ROOT/build}
N=${1:-50} BROKERS=${2:-1} MODE=${3:-}
source "$ROOT/tests/integration/harness.sh"
up
PORT_ARGS=(--port "$MQTT_PORT")
for ((k = 2; k <= BROKERS; k++)); do
	start_fleet_broker "$k"
	PORT_ARGS+=(--port "${BROKER_PORTS[k]}")
done
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
"$ONB_BUILD_DIR/tests/bench/revoke_latency" "${PORT_ARGS[@]}" --pki "$PKI" \
	--redis "$ONBOARD_REDIS_URL" -n "$N" $MODE
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# Starts Redis and the broker with the plugin on loopback, then measures the
# time from `revoke` to the device's socket closing over N devices (default 50).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export ONB_SOURCE_DIR=$ROOT ONB_BUILD_DIR=${ONB_BUILD_DIR:-$ROOT/build}
source "$ROOT/tests/integration/harness.sh"
up
"$ONB_BUILD_DIR/tests/bench/revoke_latency" --port "$MQTT_PORT" --pki "$PKI" \
	--redis "$ONBOARD_REDIS_URL" -n "${1:-50}"

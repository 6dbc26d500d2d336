#!/usr/bin/env bash
# mTLS connects/s of one broker with the plugin, Redis on loopback against
# Redis behind a delaying TCP proxy (tests/tools/delayproxy) at about 1 ms
# and 3 ms round trip, in one run: with the admission view (the default) and
# without it (plugin_opt_admission_view_stale_ms 0: every CONNECT reads
# Redis on the broker's thread, as before the view).
#
#   tests/bench/admview_rtt.sh [BUILD_DIR] [-n CONNECTS] [-c IN_FLIGHT] [--rtts "0 1 3"]
#
# DELAYPROXY=path overrides BUILD_DIR/tests/tools/delayproxy. Prints one
# line per run and a table; figures are medians of nothing (one run each):
# read them with the machine's load, which is printed too.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build
N=1500
C=50
RTTS="0 1 3"
while [ $# -gt 0 ]; do
	case $1 in
	-n) N=$2; shift ;;
	-c) C=$2; shift ;;
	--rtts) RTTS=$2; shift ;;
	*) BUILD=$(cd "$1" && pwd) ;;
	esac
	shift
done
export ONB_BUILD_DIR=$BUILD ONB_SOURCE_DIR=$ROOT
# shellcheck source=../integration/harness.sh
source "$ROOT/tests/integration/harness.sh"
BROKER_ENV=(ONB_BENCH=1) # plain malloc: no checking allocator in a measurement
DELAYPROXY=${DELAYPROXY:-$BUILD/tests/tools/delayproxy}
[ -x "$DELAYPROXY" ] || { echo "admview_rtt.sh: no delayproxy at $DELAYPROXY" >&2; exit 2; }
DEVICES=$((C * 2))

make_pki
start_redis
"$ONBOARDCTL" policy init "$ONB_SOURCE_DIR/policies" >/dev/null
mkdir -p "$T/ids"
for i in $(seq 0 $((DEVICES - 1))); do
	id=$(printf 'pub%03d' "$i")
	"$ONBOARDCTL" pki issue --ca "$PKI/device-ca" --cn "$id" --out "$T/ids/$id" >/dev/null
	"$ONBOARDCTL" device register --id "$id" --cert "$T/ids/$id.pem" --state active >/dev/null
done
REAL_REDIS_PORT=$REDIS_PORT
PROXY_PID=""
stop_proxy() { [ -z "$PROXY_PID" ] || { kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null || true; PROXY_PID=""; }; }

declare -A RATE P50
run() { # MODE RTT
	local mode=$1 rtt=$2 port=$REAL_REDIS_PORT stale=1000 out runs
	[ "$mode" = view ] || stale=0
	if [ "$rtt" != 0 ]; then
		coproc PROXY { exec "$DELAYPROXY" --listen 0 --target "$REAL_REDIS_PORT" --rtt-ms "$rtt"; }
		PROXY_PID=$PROXY_PID
		read -r port <&"${PROXY[0]}"
	fi
	REDIS_PORT=$port
	BROKER_EXTRA="plugin_opt_admission_view_stale_ms $stale
plugin_opt_redis_timeout_ms 200"
	runs=$(broker_runs)
	start_broker >/dev/null
	REDIS_PORT=$REAL_REDIS_PORT
	if [ "$mode" = view ]; then
		wait_for 20 grep -q "admission view loaded: $DEVICES devices" "$T/mosquitto.log" \
			|| { echo "view not loaded"; tail "$T/mosquitto.log"; exit 1; }
	else
		sleep 1
	fi
	out=$(timeout 300 "$ONB_BUILD_DIR/tests/bench/connect_rate" --port "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" \
		--certdir "$T/ids" --prefix pub --width 3 --devices $DEVICES -n "$N" -c "$C" \
		--broker-pid "$BROKER_PID" --label "$mode-$rtt" --json 2>"$T/cr.err") || true
	RATE[$mode-$rtt]=$(jq -r '.connects_per_s // 0' <<<"$out")
	P50[$mode-$rtt]=$(jq -r '.p50_ms // .latency_ms.p50 // 0' <<<"$out")
	echo "# $mode rtt=${rtt}ms: $(jq -c '{succeeded, failed, connects_per_s, p50_ms, p99_ms, broker_cpu_per_connect_ms}' <<<"$out" 2>/dev/null || echo "$out") load $(cut -d' ' -f1 /proc/loadavg)"
	stop_broker
	stop_proxy
}
for mode in view noview; do
	for rtt in $RTTS; do run "$mode" "$rtt"; done
done
echo
echo "| Redis round trip added | view: connects/s | ratio to loopback | no view: connects/s | ratio to loopback |"
echo "|---|---|---|---|---|"
for rtt in $RTTS; do
	printf '| %s ms | %s | %s | %s | %s |\n' "$rtt" "${RATE[view-$rtt]}" \
		"$(awk -v a="${RATE[view-$rtt]}" -v b="${RATE[view-0]}" 'BEGIN { if(b > 0) printf "%.2f", a / b; else printf "-" }')" \
		"${RATE[noview-$rtt]}" \
		"$(awk -v a="${RATE[noview-$rtt]}" -v b="${RATE[noview-0]}" 'BEGIN { if(b > 0) printf "%.2f", a / b; else printf "-" }')"
done
PASSES=1
finish

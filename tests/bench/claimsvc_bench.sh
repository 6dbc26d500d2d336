# claimsvc throughput without the broker plugin: N create-from-csr request
# envelopes (one EC P-256 CSR, distinct client ids) published as fast as one
# mosquitto_pub can, answered by I claimsvc instances; prints requests/s.
# Then N RegisterThing requests for the issued tokens (allowlist optional).
#   ONB_BUILD_DIR=build ONB_SOURCE_DIR=. bash tests/bench/claimsvc_bench.sh [N] [INSTANCES]
source "$(dirname "$0")/../integration/harness.sh"
N=${1:-2000}
INSTANCES=${2:-1}
CLAIMSVC="$ONB_BUILD_DIR/claimsvc/claimsvc"

make_pki
start_redis
MQTT_PORT=$(freeport)
cat > "$T/mosquitto.conf" <<CONF
per_listener_settings false
allow_anonymous true
user root
max_queued_messages 100000
listener $MQTT_PORT 127.0.0.1
cafile $PKI/ca-bundle.pem
certfile $PKI/server.pem
keyfile $PKI/server.key
require_certificate true
log_dest file $T/mosquitto.log
CONF
"$MOSQUITTO_BIN" -c "$T/mosquitto.conf" &
BROKER_PID=$!
sleep 0.5
mkdir -p "$T/templates"
echo '{"parameters":{"SerialNumber":{}},"thingName":"${SerialNumber}","allowlist":"optional"}' > "$T/templates/bench.json"
"$ONBOARDCTL" pki issue --ca "$PKI/service-ca" --cn observer --out "$T/observer" >/dev/null
for i in $(seq 1 "$INSTANCES"); do
	"$ONBOARDCTL" pki issue --ca "$PKI/service-ca" --cn "claimsvc-$i" --out "$T/claimsvc-$i" >/dev/null
	cat > "$T/c$i.conf" <<CONF
broker_port $MQTT_PORT
cafile $PKI/ca-bundle.pem
certfile $T/claimsvc-$i.pem
keyfile $T/claimsvc-$i.key
device_ca_cert $PKI/device-ca.pem
device_ca_key $PKI/device-ca.key
redis_url redis://127.0.0.1:$REDIS_PORT/0
templates_dir $T/templates
rate_per_requester 0
rate_global 0
log_level warning
CONF
	"$CLAIMSVC" -c "$T/c$i.conf" 2> "$T/c$i.log" &
	BG_PIDS+=($!)
done
sleep 1
TLS=(-h 127.0.0.1 -p "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" --cert "$T/observer.pem" --key "$T/observer.key")
mosquitto_sub "${TLS[@]}" -i observer -q 1 -t onb/internal/prov/reply -F '%p' > "$T/replies" &
BG_PIDS+=($!)
sleep 0.5

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/k" -subj /CN=x -out "$T/csr" 2>/dev/null
FP=$(printf 'bench' | sha256sum | cut -c1-64)
python3 - "$T/csr" "$N" "$FP" > "$T/csr.lines" <<'PY'
import json, sys
csr = open(sys.argv[1]).read()
payload = json.dumps({"certificateSigningRequest": csr})
for i in range(int(sys.argv[2])):
    print(json.dumps({"v": 1, "clientId": "bench-%d" % i, "class": "claim", "fp": sys.argv[3],
        "address": "", "topic": "$aws/certificates/create-from-csr/json", "payload": payload}, separators=(",", ":")))
PY

# run PHASE LINESFILE: publishes the lines, waits for N replies, prints the rate.
run() {
	local start end
	: > "$T/replies.$1"
	local before; before=$(wc -l < "$T/replies")
	start=$(date +%s%N)
	mosquitto_pub "${TLS[@]}" -i "pub-$1" -q 1 -t onb/internal/prov/request -l < "$2"
	wait_for 120 bash -c "[ \$(( \$(wc -l < '$T/replies') - $before )) -ge $N ]" || echo "timeout: only $(( $(wc -l < "$T/replies") - before )) replies"
	end=$(date +%s%N)
	tail -n +$((before + 1)) "$T/replies" > "$T/replies.$1"
	echo "$1: $N requests, $INSTANCES instance(s): $(( N * 1000000000 / (end - start) )) requests/s;" \
		"accepted $(grep -c '/accepted"' "$T/replies.$1"), rejected $(grep -c '/rejected"' "$T/replies.$1")"
}
run create-from-csr "$T/csr.lines"
ps -o pid,times,comm -C claimsvc,mosquitto,redis-server,mosquitto_sub | sed "s/^/  cpu s: /"

jq -c '{c: .clientId, t: (.payload | fromjson | .certificateOwnershipToken)}' "$T/replies.create-from-csr" \
	| jq -c --arg fp "$FP" '{v:1, clientId:.c, class:"claim", fp:$fp, address:"",
		topic:"$aws/provisioning-templates/bench/provision/json",
		payload:({certificateOwnershipToken:.t, parameters:{SerialNumber:("sn-" + .c)}}|tojson)}' > "$T/reg.lines"
run register-thing "$T/reg.lines"

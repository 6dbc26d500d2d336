#!/usr/bin/env bash
# devsim's own smoke test, with no claimsvc and no plugin: a plain Mosquitto
# broker (mTLS, loopback, free port, PKI made at run time) and
# fake_responder.sh answering on the shared accepted/rejected topics. Checks
# devsim's side of the wire format, its timeouts and its error reporting.
#
# usage: tests/devsim/smoke.sh [BUILD_DIR]   (or ONB_BUILD_DIR from ctest)
set -euo pipefail

BUILD=${1:-${ONB_BUILD_DIR:-}}
[ -n "$BUILD" ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD=$(cd "$BUILD" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
DEVSIM="$BUILD/tests/devsim/devsim"
ONBOARDCTL="$BUILD/cli/onboardctl"
MOSQUITTO_BIN=${ONB_MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}
T=$(mktemp -d "${TMPDIR:-/tmp}/devsim-smoke.XXXXXX")
PKI="$T/pki"
BROKER_PID="" RESP_PID="" WATCH_PID=""
FAILS=0 PASSES=0

cleanup() {
	for p in $WATCH_PID $RESP_PID $BROKER_PID; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ "$FAILS" -eq 0 ] || { echo "--- mosquitto.log (tail) ---"; tail -n 30 "$T/mosquitto.log" 2>/dev/null || true; }
	rm -rf "$T"
}
trap cleanup EXIT

pass() { PASSES=$((PASSES + 1)); echo "ok   $1"; }
failt() { FAILS=$((FAILS + 1)); echo "FAIL $1"; sed 's/^/     | /' "$T/out" 2>/dev/null | tail -n 25; }

# wait_for SECONDS CMD...: retries CMD every 50 ms until it succeeds.
wait_for() {
	local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s%N)" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

# --- PKI: claim, birth and responder certificates ---
"$ONBOARDCTL" pki init "$PKI" >/dev/null
"$ONBOARDCTL" pki issue --ca "$PKI/claim-ca" --cn fleet-claim --out "$PKI/claim" >/dev/null
"$ONBOARDCTL" pki issue --ca "$PKI/service-ca" --cn responder --out "$PKI/responder" >/dev/null
mkdir -p "$T/birth"
for s in BD0000 BD0001; do
	"$ONBOARDCTL" pki issue --ca "$PKI/manufacturer-ca" --cn "$s" --out "$T/birth/$s" >/dev/null
done

# --- broker ---
PORT=$("$BUILD/tests/tools/freeport")
cat > "$T/mosquitto.conf" <<CONF
per_listener_settings false
allow_anonymous true
user root
persistence false
log_dest file $T/mosquitto.log
log_type all
set_tcp_nodelay true
listener $PORT 127.0.0.1
cafile $PKI/ca-bundle.pem
certfile $PKI/server.pem
keyfile $PKI/server.key
require_certificate true
CONF
"$MOSQUITTO_BIN" -c "$T/mosquitto.conf" 2>/dev/null &
BROKER_PID=$!
wait_for 5 grep -q "running" "$T/mosquitto.log" || { echo "broker did not start"; FAILS=1; exit 1; }

# start_responder ARGS...: (re)starts fake_responder.sh and waits until it is subscribed.
start_responder() {
	[ -z "$RESP_PID" ] || { kill "$RESP_PID" 2>/dev/null || true; wait "$RESP_PID" 2>/dev/null || true; }
	: > "$T/mosquitto.log.mark"
	local before; before=$(grep -c 'provision/json (QoS 1)' "$T/mosquitto.log" || true)
	"$HERE/fake_responder.sh" --port "$PORT" --pki "$PKI" --state "$T/state" "$@" > "$T/responder.log" 2>&1 &
	RESP_PID=$!
	wait_for 5 bash -c "[ \$(grep -c 'provision/json (QoS 1)' '$T/mosquitto.log') -gt $before ]" \
		|| { echo "responder did not subscribe"; FAILS=1; exit 1; }
}

CLAIM=(--host 127.0.0.1 --port "$PORT" --cafile "$PKI/ca-bundle.pem" --claim-cert "$PKI/claim.pem" --claim-key "$PKI/claim.key")
run() { set +e; "$DEVSIM" "$@" > "$T/out" 2>&1; RC=$?; set -e; }

# --- 1. claim certificate, happy path, credentials written, telemetry arrives ---
start_responder
mosquitto_sub -h 127.0.0.1 -p "$PORT" --cafile "$PKI/ca-bundle.pem" --cert "$PKI/responder.pem" \
	--key "$PKI/responder.key" -i watcher -t 'devices/+/telemetry' -t '$aws/certificates/create-from-csr/json' \
	-t '$aws/provisioning-templates/+/provision/json' -v > "$T/watch.log" 2>/dev/null &
WATCH_PID=$!
wait_for 5 grep -q "watcher" "$T/mosquitto.log"
run "${CLAIM[@]}" -n 3 --telemetry 2 --out "$T/out-claim"
if [ $RC -eq 0 ] && grep -q '^succeeded 3/3, failed 0' "$T/out" \
		&& [ "$(stat -c %a "$T/out-claim/SN0001.key")" = 600 ] \
		&& openssl verify -CAfile "$PKI/ca-bundle.pem" "$T/out-claim/SN0002.pem" >/dev/null 2>&1 \
		&& wait_for 3 bash -c "[ \$(grep -c '^devices/SN000[0-2]/telemetry {\"seq\":' '$T/watch.log') -eq 6 ]"; then
	pass "claim: 3 devices provisioned, key 0600, certificate verifies, 6 telemetry messages"
else
	failt "claim happy path (rc $RC)"
fi
kill "$WATCH_PID" 2>/dev/null || true; WATCH_PID=""

# --- 2. the request documents are the AWS ones ---
if grep -q '^$aws/certificates/create-from-csr/json {"certificateSigningRequest":"-----BEGIN CERTIFICATE REQUEST-----\\n' "$T/watch.log" \
		&& grep -Eq '^\$aws/provisioning-templates/default/provision/json \{"certificateOwnershipToken":"[0-9a-f]{64}","parameters":\{"SerialNumber":"SN0001"\}\}$' "$T/watch.log" \
		&& grep -q 'Received PUBLISH from SN0000 (d0, q1, r0, m[0-9]*, .\$aws/certificates/create-from-csr/json' "$T/mosquitto.log"; then
	pass "requests: AWS topics and documents, QoS 1, client id = serial"
else
	cp "$T/watch.log" "$T/out"; failt "request documents"
fi

# --- 3. birth certificates, MQTT 3.1.1, chain in certificatePem ---
# (the broker logs MQTT 3.1.1 as p2 up to 2.0.x, as p4 from 2.1 on)
start_responder --chain
run --port "$PORT" --cafile "$PKI/ca-bundle.pem" --birth-dir "$T/birth" --serial-prefix BD -n 2 --mqtt-version 311
if [ $RC -eq 0 ] && grep -q 'birth certificate, MQTT 3.1.1' "$T/out" && grep -qE "as BD0001 \(p(2|4)," "$T/mosquitto.log"; then
	pass "birth certificates over MQTT 3.1.1 with a chained certificatePem"
else
	failt "birth / 3.1.1 (rc $RC)"
fi

# --- 4. libmosquitto's own SSL_CTX per connection; JSON summary. (Sequential:
# with -c > 1 on a plain broker every device sees every RegisterThing reply.)
run "${CLAIM[@]}" -n 3 --serial-start 100 --tls-per-connection --json
if [ $RC -eq 0 ] && grep -q '"succeeded":[[:space:]]*3' "$T/out" && grep -q '"tls_context":[[:space:]]*"per-connection"' "$T/out"; then
	pass "--tls-per-connection, JSON summary"
else
	failt "per-connection / json (rc $RC)"
fi

# --- 5. a rejected RegisterThing is reported with its errorCode ---
start_responder --reject-serial '^SN0201$'
run "${CLAIM[@]}" -n 3 --serial-start 200
if [ $RC -eq 1 ] && grep -q '^succeeded 2/3, failed 1' "$T/out" \
		&& grep -Eq '^ +1  register: DeviceNotAllowlisted  \(e.g. SN0201: statusCode 403: serial SN0201 is not on the allowlist\)' "$T/out"; then
	pass "RegisterThing rejected: counted under register: DeviceNotAllowlisted, exit 1"
else
	failt "register rejected (rc $RC)"
fi

# --- 6. a rejected CSR ---
start_responder --reject-csr
run "${CLAIM[@]}" -n 2 --serial-start 300 --json
if [ $RC -eq 1 ] && grep -q '"reason":[[:space:]]*"csr: InvalidCsr"' "$T/out"; then
	pass "CreateCertificateFromCsr rejected: csr: InvalidCsr"
else
	failt "csr rejected (rc $RC)"
fi

# --- 7. no answer: every phase is bounded ---
# 2 s, not less: the CSR phase must still be answered in time on a loaded
# 2-core machine (0.8 s once let a CSR answer miss it), and devsim must end
# well before the test's own bound.
start_responder --silent-register
start=$(date +%s%N)
run "${CLAIM[@]}" -n 2 -c 2 --serial-start 400 --timeout 2000
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ $RC -eq 1 ] && grep -Eq '^ +2  register: timeout' "$T/out" && [ "$ms" -lt 8000 ]; then
	pass "silent server: register: timeout after 2 s, devsim ended in ${ms} ms"
else
	failt "timeout (rc $RC, ${ms} ms)"
fi

# --- 8. --stay receives commands ---
start_responder
run "${CLAIM[@]}" --serial SN0500 --stay 3 &
STAY_PID=$!
wait_for 5 grep -q "devices/SN0500/commands/# (QoS" "$T/mosquitto.log" || true
sleep 0.2
mosquitto_pub -h 127.0.0.1 -p "$PORT" --cafile "$PKI/ca-bundle.pem" --cert "$PKI/responder.pem" \
	--key "$PKI/responder.key" -t devices/SN0500/commands/reboot -m '{"delay":5}' -q 1
wait "$STAY_PID" || true
if grep -q 'SN0500: command on devices/SN0500/commands/reboot: {"delay":5}' "$T/out" \
		&& grep -q 'commands received 1' "$T/out"; then
	pass "--stay prints commands"
else
	failt "--stay"
fi

# --- 9. broker unreachable ---
run --port "$("$BUILD/tests/tools/freeport")" --cafile "$PKI/ca-bundle.pem" --claim-cert "$PKI/claim.pem" \
	--claim-key "$PKI/claim.key" -n 2
if [ $RC -eq 1 ] && grep -q 'connect-claim: connect failed' "$T/out"; then
	pass "broker unreachable: connect-claim: connect failed"
else
	failt "unreachable (rc $RC)"
fi

# --- 10. usage errors ---
if "$DEVSIM" --help | grep '^usage: devsim' >/dev/null && ! "$DEVSIM" -n 0 2>/dev/null \
		&& ! "$DEVSIM" --cafile x --birth-dir y --claim-cert a --claim-key b 2>/dev/null \
		&& ! "$DEVSIM" --cafile x --birth-dir y --template 'bad/name' 2>/dev/null; then
	pass "usage errors exit 2, --help exits 0"
else
	failt "usage"
fi

echo "devsim smoke: $PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]

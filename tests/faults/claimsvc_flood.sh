#!/usr/bin/env bash
# claimsvc under a flood that reaches it (the broker's budgets switched off,
# as an operator might): its intake, memory and MQTT flow control stay
# bounded, and it answers normally by itself once the flood ends (issue 13:
# 400,000 malformed CSRs used to leave it silent until a restart).
source "$(dirname "$0")/../integration/harness.sh"
source "$(dirname "$0")/../security/lib.sh"
BROKER_EXTRA="plugin_opt_request_rate 0
plugin_opt_request_inflight 0
plugin_opt_request_cert_rate 0"
up
# Under AddressSanitizer freed memory waits in a quarantine (256 MB by
# default) before reuse: keep it small so that RSS still shows growth.
[ -z "${ASAN_OPTIONS:-}" ] || export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=8"
start_claimsvc claimsvc-1
CSR_T='$aws/certificates/create-from-csr/json'
new_device claim-a claim-ca
printf 'serial\nAFTER1\nAFTER2\n' > "$T/allow.csv"
"$ONBOARDCTL" allowlist import "$T/allow.csv" > /dev/null
printf '{"certificateSigningRequest":"not a CSR"}' > "$T/bad.json"

pid=${CLAIMSVC_PIDS[0]}
rss0=$(ps -o rss= -p "$pid")
peak=$rss0
"$ONB_BUILD_DIR/tests/tools/mqttflood" "$MQTT_PORT" "$PKI/ca-bundle.pem" "$T/claim-a.pem" "$T/claim-a.key" \
	flood- 10 "$CSR_T" "$T/bad.json" 400000 8 > "$T/flood.out" 2>&1 &
FLOOD_PID=$!
BG_PIDS+=("$FLOOD_PID")
while alive "$FLOOD_PID"; do
	r=$(ps -o rss= -p "$pid" || echo 0)
	[ "$r" -gt "$peak" ] && peak=$r
	sleep 0.2
done
flood_rc=0
wait "$FLOOD_PID" || flood_rc=$?
echo "# flood: $(cat "$T/flood.out")"
check "the flood ran: 10 connections, one claim certificate, no budget at the broker" test "$flood_rc" -eq 0
# After the flood, what the broker queued for claimsvc drains; then it answers.
t0=$(date +%s%N)
answered=1
deadline=$(( $(date +%s) + 60 ))
while [ "$(date +%s)" -lt "$deadline" ]; do
	if devsim_claim --serial AFTER1 --timeout 3000 --out "$T/after" > "$T/after.out" 2>&1; then answered=0; break; fi
	sleep 0.5
done
grep -v "rejected: 400" "$T/claimsvc-1.log" | sed "s/^/# claimsvc: /" | tail -8
[ "$answered" -eq 0 ] || { tail -5 "$T/after.out"; [ -z "${ONB_DEBUG_PAUSE:-}" ] || { echo "$T" > /tmp/wedge.dir; sleep 600; }; }
after_ms=$(ms_since "$t0")
echo "# claimsvc RSS: ${rss0} kB before, peak ${peak} kB; a device provisioned ${after_ms} ms after the flood ended"
check "claimsvc is alive after the flood" kill -0 "$pid"
check "  ... its memory stayed bounded (peak ${peak} kB, ${rss0} kB before)" test "$peak" -lt $((rss0 + 65536))
check "  ... and it answers by itself once the flood ends (${after_ms} ms)" test "$answered" -eq 0
check "  ... and keeps answering" devsim_claim --serial AFTER2 --out "$T/after"
finish

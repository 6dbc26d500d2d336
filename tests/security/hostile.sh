#!/usr/bin/env bash
# Hostile load (issue 13): what a leaked claim certificate, a tenant's
# back-end or a device can do with volume or with someone else's name. Each
# flood is bounded (a few seconds, 127.0.0.1 only).
source "$(dirname "$0")/../integration/harness.sh"
source "$(dirname "$0")/lib.sh"
up
start_claimsvc claimsvc-1

CSR_T='$aws/certificates/create-from-csr/json'
new_device claim-a claim-ca
new_device claim-x claim-ca
new_device BIRTH-A manufacturer-ca
new_device dev-1; register dev-1 active
new_device ops; register ops active
make_spy spy
spy_bg spy "$T/spy.out"
"$ONBOARDCTL" pki issue --ca "$PKI/service-ca" --cn app-acme --tenant acme --out "$T/app-acme" > /dev/null
fp_of() { "$ONBOARDCTL" pki fingerprint "$T/$1.pem"; }
nowhere() { sleep 0.3; ! grep -qF -- "$1" "$T/spy.out"; }

# ---------------------------------------------------------------- 8. who connected, on record
mark_audit
out=$(raw dev-1 connect dev-1 close)
check "a device's connect is on record with client id, class and certificate fingerprint" \
	audit_match action=connect result=allow client_id='^dev-1$' class='^device$' fp="^$(fp_of dev-1)$"
raw claim-a connect sn-0001 close > /dev/null
check "  ... a claim certificate's too" \
	audit_match action=connect result=allow client_id='^sn-0001$' class='^claim$' fp="^$(fp_of claim-a)$"
raw dev-1 connect 'dev-1+' close > /dev/null
check "  ... and a refused one's (an invalid client id is not recorded)" \
	audit_match action=connect result=deny class='^device$' fp="^$(fp_of dev-1)$" reason=bad-client-id

# ---------------------------------------------------------------- 6. reserved client ids
new_device dev-off; register dev-off active
for as in claim-a BIRTH-A; do
	mark_audit
	r=$(raw "$as" connect dev-off close | sed -n 1p)
	check "$as with the client id of registered (offline) device dev-off is refused ($r)" test "$r" = "connack 135"
	check "  ... audited as a reserved client id" \
		audit_match action=connect result=deny reason='^client-id-reserved' client_id='^dev-off$' fp="^$(fp_of "$as")$"
done
check "  ... dev-off itself still connects" grep -q "connack 0" <<<"$(raw dev-off connect dev-off close)"

# ---------------------------------------------------------------- 7. commands for a sleeping device
new_device dev-zz; register dev-zz active
policy_for ops ops-cmd '{ "version": "2026-01-09", "statement": [
  { "effect": "allow", "action": ["connect"], "resource": ["client:${deviceId}"] },
  { "effect": "allow", "action": ["publish"], "resource": ["topic:devices/+/commands/#"] } ] }'
for v in 311 5; do
	# shellcheck disable=SC2046
	timeout 10 mosquitto_sub $(tls_args dev-zz) -i dev-zz -V "$v" -c -x 600 -q 1 -t 'devices/dev-zz/commands/#' \
		-W 1 > /dev/null 2>&1 || true
	wait_for 3 grep -q "Client dev-zz .*disconnected\|Client dev-zz closed its connection" "$T/mosquitto.log" || true
	sleep 0.3 # the tick after the disconnect parks its entry
	# shellcheck disable=SC2046
	timeout 10 mosquitto_pub $(tls_args ops) -i ops -V 5 -q 1 -t devices/dev-zz/commands/reboot -m "CMD-$v" \
		> "$T/pub.out" 2>&1
	# shellcheck disable=SC2046
	timeout 10 mosquitto_sub $(tls_args dev-zz) -i dev-zz -V "$v" -c -x 600 -q 1 -t 'devices/dev-zz/commands/#' \
		-C 1 -W 5 > "$T/zz-$v.out" 2>&1 || true
	check "MQTT $v: a QoS 1 command sent while dev-zz slept is delivered when it returns" grep -q "^CMD-$v$" "$T/zz-$v.out"
done
# asleep, it follows the registry: quarantined, only remediation is queued
timeout 10 mosquitto_sub $(tls_args dev-zz) -i dev-zz -V 5 -c -x 600 -q 1 -t 'devices/dev-zz/commands/#' -W 1 \
	> /dev/null 2>&1 || true
sleep 0.5
"$ONBOARDCTL" device quarantine dev-zz > /dev/null
sleep 0.5
MSG=CMD-Q-REBOOT pub ops ops devices/dev-zz/commands/reboot
MSG=CMD-Q-FIX pub ops ops devices/dev-zz/commands/remediation/fix
"$ONBOARDCTL" device activate dev-zz > /dev/null
sleep 0.5
# shellcheck disable=SC2046
timeout 10 mosquitto_sub $(tls_args dev-zz) -i dev-zz -V 5 -c -x 600 -q 1 -t 'devices/dev-zz/commands/#' -C 1 -W 3 \
	> "$T/zz-after.out" 2>&1 || true
check "  ... quarantined while asleep: remediation was queued for it" grep -q "^CMD-Q-FIX$" "$T/zz-after.out"
refute "  ... and nothing its quarantine policy refuses" grep -q "CMD-Q-REBOOT" "$T/zz-after.out"

# ---------------------------------------------------------------- 4. replies belong to claimsvc
# an operator's generous tenant policy: everything, under any topic
printf '%s\n' '{ "version": "2026-01-09", "statement": [
  { "effect": "allow", "action": ["connect"], "resource": ["client:app-${tenantId}"] },
  { "effect": "allow", "action": ["subscribe", "receive", "publish"],
    "resource": ["topicfilter:#", "topic:#"] } ] }' > "$T/generous.json"
"$ONBOARDCTL" policy put tenant-app "$T/generous.json" > /dev/null
forged='{"v":1,"clientId":"victim-1","topic":"$aws/certificates/create-from-csr/json/accepted","payload":"ATK-R1"}'
raw_bg claim-x "$T/victim.out" connect victim-1 sub "$CSR_T/accepted" sub "$CSR_T/rejected" wait 2000 close
wait_for 5 grep -q "suback 2 0" "$T/victim.out"
mark_audit
out=$(raw app-acme connect app-acme pub onb/internal/prov/reply "$forged" qos=1 pub onb/internal/stats '{}' qos=1 close)
check "a tenant back-end whose policy allows '#' cannot publish claimsvc's replies or counters (0x87)" \
	test "$(awk '$1 == "puback" { print $3 }' <<<"$out" | tr '\n' ' ')" = "135 135 "
wait "$RAW_PID" || true
refute "  ... the waiting claim connection received no forged answer" grep -q ATK-R1 "$T/victim.out"
check "  ... nor did anyone else" nowhere ATK-R1
check "  ... audited, naming the tenant's certificate" \
	audit_match action=publish result=deny reason='^internal-topic' class='^service$' fp="^$(fp_of app-acme)$"
"$ONBOARDCTL" policy put tenant-app "$ONB_SOURCE_DIR/policies/tenant-app.json" > /dev/null

# ---------------------------------------------------------------- 1. a flood from a leaked claim certificate
{ printf "serial\nLEGIT2\n"; for i in $(seq 0 19); do printf "LEGIT%04d\nBASE%04d\n" "$i" "$i"; done; } > "$T/allow.csv"
"$ONBOARDCTL" allowlist import "$T/allow.csv" > /dev/null
# the same 20 provisionings without a flood, for comparison
devsim_claim --serial-prefix BASE -n 20 --out "$T/base" > "$T/base.out" 2>&1 || true
sed -n 's/^total/# devsim without a flood: total/p' "$T/base.out"
printf '{"certificateSigningRequest":"not a CSR"}' > "$T/bad.json"
mark_audit
flood_start=$(date +%s)
rss0=$(ps -o rss= -p "${CLAIMSVC_PIDS[0]}")
"$ONB_BUILD_DIR/tests/tools/mqttflood" "$MQTT_PORT" "$PKI/ca-bundle.pem" "$T/claim-a.pem" "$T/claim-a.key" \
	flood- 10 "$CSR_T" "$T/bad.json" 400000 10 4 > "$T/flood.out" 2>&1 &
FLOOD_PID=$!
BG_PIDS+=("$FLOOD_PID")
sleep 0.5
t0=$(date +%s%N)
legit=0
devsim_claim --serial-prefix LEGIT -n 20 --out "$T/legit" > "$T/legit.out" 2>&1 || legit=$?
legit_ms=$(ms_since "$t0")
flood_rc=0
wait "$FLOOD_PID" || flood_rc=$?
sent=$(sed -n 's/^sent \([0-9]*\) .*/\1/p' "$T/flood.out")
echo "# flood: $(cat "$T/flood.out"); 20 devices provisioned one after another in ${legit_ms} ms meanwhile"
check "the flood ran (10 connections with the shared claim certificate, $sent requests)" \
	bash -c "[ $flood_rc -eq 0 ] && [ ${sent:-0} -ge 10000 ]"
sed -n 's/^\(phase\|total\|succeeded\)/# devsim during the flood: \1/p' "$T/legit.out"
check "  ... 20 legitimate devices with the same claim certificate provisioned meanwhile" test "$legit" -eq 0
check "  ... claimsvc is alive" kill -0 "${CLAIMSVC_PIDS[0]}"
rss1=$(ps -o rss= -p "${CLAIMSVC_PIDS[0]}")
echo "# claimsvc RSS: ${rss0} kB before, ${rss1} kB after"
check "  ... and its memory did not grow with the flood (${rss0} -> ${rss1} kB)" test "$rss1" -lt $((rss0 + 20000))
n_shed=$(audit_count action=request result=deny 'reason=^request-' class=claim)
n_ent=$(rcli --json XRANGE onb:audit "($AUDIT_MARK" + | jq '[.[] | select(.[1] | index("request"))] | length')
flood_s=$(( $(date +%s) - flood_start ))
echo "# audit: $n_ent entries for $n_shed shed requests, over ${flood_s} s"
# Entries grow with time, not with requests: a few per 1 s window and kind
# (the first refusal of a kind, then one count; at most 16 a second here,
# however long a loaded machine takes to read the flood), and each stands
# for hundreds of refusals.
few_entries() { [ "$1" -ge 10000 ] && [ "$2" -le $(( 16 * ($3 + 2) )) ] && [ $(( $1 / ($2 > 0 ? $2 : 1) )) -ge 500 ]; }
check "  ... the shed requests are on record ($n_shed) in a handful of entries ($n_ent in ${flood_s} s)" \
	few_entries "$n_shed" "$n_ent" "$flood_s"
t0=$(date +%s%N)
legit=0
devsim_claim --serial LEGIT2 --out "$T/legit" > "$T/legit2.out" 2>&1 || legit=$?
check "  ... and right after it, claimsvc answers normally ($(ms_since "$t0") ms)" test "$legit" -eq 0

# ---------------------------------------------------------------- 2. a tenant cannot erase the audit trail
"$ONBOARDCTL" pki issue --ca "$PKI/service-ca" --cn app-beta --tenant beta --out "$T/app-beta" > /dev/null
printf '{"claimCode":"ABCD-EFGH-JKLM-NPQR-STUV"}' > "$T/badcode.json"
before=$(rcli XLEN onb:audit)
oldest=$(rcli XRANGE onb:audit - + COUNT 1 | sed -n 1p)
mark_audit
flood_start=$(date +%s)
"$ONB_BUILD_DIR/tests/tools/mqttflood" "$MQTT_PORT" "$PKI/ca-bundle.pem" "$T/app-acme.pem" "$T/app-acme.key" \
	app-acme 1 onb/claim/json "$T/badcode.json" 200000 3 > "$T/cflood.out" 2>&1 || true
sent=$(sed -n 's/^sent \([0-9]*\) .*/\1/p' "$T/cflood.out")
n_claim=$(audit_count action='^claim$' result=refused)
n_req=$(audit_count action='^request$' result=deny)
added=$(( $(rcli XLEN onb:audit) - before ))
echo "# claim flood: $(cat "$T/cflood.out"); $n_claim refused claims and $n_req shed requests on record in $added entries"
flood_s=$(( $(date +%s) - flood_start ))
check "a tenant's flood of $sent bad claim codes is on record ($((n_claim + n_req)) refusals) in a handful of entries ($added in ${flood_s} s)" \
	bash -c "[ ${sent:-0} -ge 10000 ] && [ $(( 16 * (flood_s + 2) )) -ge $added ] && [ $(( (n_claim + n_req) / (added > 0 ? added : 1) )) -ge 500 ]"
check "  ... and the entries from before the flood are all still there" \
	test "$(rcli XRANGE onb:audit - + COUNT 1 | sed -n 1p)" = "$oldest"
new_device dev-b; register dev-b unclaimed
CODE=$("$ONBOARDCTL" claimcode issue --device dev-b --format uri)
out=$(rr app-beta app-beta onb/claim/json onb/claim/json/accepted "{\"claimCode\":\"$CODE\"}")
check "  ... another tenant claims a device at once" grep -q '"deviceId":"dev-b"' <<<"$out"

# ---------------------------------------------------------------- 2. off-box retention: audit to syslog
# onboardctl audit --follow --syslog, in a private mount namespace whose
# /dev/log is a datagram socket of this test (nothing of the host's is touched).
cat > "$T/syslogd.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(8)
with open(sys.argv[2], "w") as out:
    try:
        while True:
            out.write(s.recv(65536).decode(errors="replace") + "\n")
            out.flush()
    except socket.timeout:
        pass
PY
if unshare -m true 2> /dev/null; then
	python3 "$T/syslogd.py" "$T/log.sock" "$T/syslog.out" &
	BG_PIDS+=($!)
	wait_for 3 test -S "$T/log.sock"
	raw dev-1 connect dev-1 close > /dev/null
	timeout 10 unshare -m bash -c "mount -t tmpfs tmpfs /dev && touch /dev/log && mount --bind '$T/log.sock' /dev/log &&
		timeout 2 '$ONBOARDCTL' audit --follow --syslog --since 5s" || true
	check "onboardctl audit --follow --syslog: entries reach syslog (authpriv.notice) as JSON" \
		grep -q '^<85>.*onboard-audit\[[0-9]*\]: {.*"action":"connect".*"client_id":"dev-1"' "$T/syslog.out"
else
	echo "# skipped: syslog forwarding (unshare -m is not permitted here)"
fi

finish

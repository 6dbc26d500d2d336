# claimsvc serving several brokers (issue 16): three brokers on one Redis,
# two claimsvc instances each holding a link to all three. Devices provision
# through every broker and each request is answered exactly once; with one
# instance stopped the other still answers on every broker; a broker added
# to an instance's list is served after SIGHUP without a restart and
# without disturbing the other links; a broker removed from the list is
# drained and closed while the others keep serving. Real redis-server,
# Mosquitto with the plugin and claimsvc on loopback.
source "$(dirname "$0")/harness.sh"
command -v curl >/dev/null || { echo "curl not found: scripts/deps.sh installs it"; exit 1; }

up
start_fleet_broker 2
start_fleet_broker 3
P1=$MQTT_PORT P2=${BROKER_PORTS[2]} P3=${BROKER_PORTS[3]}

printf 'serial,birth_fp,batch\n' > "$T/allow.csv"
for b in 1 2 3 4; do
	for i in $(seq 0 19); do printf 'B%d-%04d,,fleet\n' "$b" "$i" >> "$T/allow.csv"; done
done
"$ONBOARDCTL" allowlist import "$T/allow.csv" >/dev/null

HTTP_A=$(freeport)
HTTP_B=$(freeport)
CLAIMSVC_BROKERS="$P1 $P2 $P3" CLAIMSVC_EXTRA="http_listen 127.0.0.1:$HTTP_A" start_claimsvc claimsvc-a
PID_A=${CLAIMSVC_PIDS[-1]}
CLAIMSVC_BROKERS="$P1 $P2 $P3" CLAIMSVC_EXTRA="http_listen 127.0.0.1:$HTTP_B" start_claimsvc claimsvc-b
PID_B=${CLAIMSVC_PIDS[-1]}

# handled HTTP_PORT: every request that instance counted (all actions and results).
handled() {
	curl -s --max-time 5 "http://127.0.0.1:$1/metrics" \
		| awk '$1 ~ /^onboard_claimsvc_requests_total[{]/ { s += $2 } END { print s + 0 }'
}
# healthz HTTP_PORT: the /healthz body (any status).
healthz() { curl -s --max-time 5 "http://127.0.0.1:$1/healthz"; }
# provision PORT BATCH FIRST N: N devices B<BATCH>-<FIRST..> provision through
# the broker on PORT; devsim's JSON summary in $T/devsim-PORT.json.
provision() {
	MQTT_PORT=$1 devsim_claim --serial-prefix "B$2-" --serial-start "$3" -n "$4" -c 2 --timeout "${TIMEOUT_MS:-10000}" \
		--json > "$T/devsim-$1.json" 2>/dev/null || true
}
succeeded() { jq -r '.succeeded // 0' "$T/devsim-$1.json" 2>/dev/null; }
# telemetry_seen PORT SERIAL: the device connected to that broker with its new
# certificate and published (devsim's operational connection).
telemetry_seen() { grep -q "Received PUBLISH from $2 .*devices/$2/telemetry" "$(broker_log "$1")"; }
# connects_of NAME PORT: how many times client NAME connected to that broker.
connects_of() { grep -c "New client connected from .* as $1 " "$(broker_log "$2")" || true; }

check "--check names the three brokers" bash -c "'$CLAIMSVC' --check -c '$T/claimsvc-a.conf' \
	| grep -qF '3 broker(s) 127.0.0.1:$P1, 127.0.0.1:$P2, 127.0.0.1:$P3'"
check "/healthz: ready, with every broker serving" bash -c "healthz() { curl -s --max-time 5 http://127.0.0.1:$HTTP_A/healthz; }; \
	b=\$(healthz); head -1 <<<\"\$b\" | grep -qx ready && grep -qx 'brokers serving: 3 of 3' <<<\"\$b\""

# ---------------------------------------------- every broker, answered once
port_of=([1]=$P1 [2]=$P2 [3]=$P3)
for b in 1 2 3; do
	provision "${port_of[b]}" "$b" 0 4
	check "broker $b: 4 devices provision through it ($(succeeded "${port_of[b]}") succeeded)" \
		[ "$(succeeded "${port_of[b]}")" = 4 ]
	check "  ... and connect to it with their new certificate" telemetry_seen "${port_of[b]}" "B$b-0000"
done
A1=$(handled "$HTTP_A") B1=$(handled "$HTTP_B")
echo "# requests handled: claimsvc-a $A1, claimsvc-b $B1 (12 devices, 2 requests each)"
check "every request answered exactly once: the two instances handled 24 in all" [ $((A1 + B1)) -eq 24 ]
check "  ... and both took a share (shared subscription on each broker)" [ "$A1" -gt 0 -a "$B1" -gt 0 ]

# ------------------------------------------- one instance stops, one remains
kill -TERM "$PID_A"
wait "$PID_A" 2>/dev/null || true
check "claimsvc-a stopped cleanly, closing each link" bash -c "[ \$(grep -c 'closed the link to' '$T/claimsvc-a.log') -eq 3 ]"
for b in 1 2 3; do
	provision "${port_of[b]}" "$b" 4 2
	check "with claimsvc-a stopped, broker $b still provisions (claimsvc-b)" [ "$(succeeded "${port_of[b]}")" = 2 ]
done
B2=$(handled "$HTTP_B")
check "  ... claimsvc-b answered those 12 requests exactly once" [ $((B2 - B1)) -eq 12 ]

# ------------------------------------------- a broker joins: SIGHUP, no restart
start_fleet_broker 4
P4=${BROKER_PORTS[4]}
port_of[4]=$P4
before_conn=$(for p in $P1 $P2 $P3; do connects_of claimsvc-b "$p"; done | tr '\n' ' ')
echo "broker 127.0.0.1:$P4" >> "$T/claimsvc-b.conf"
kill -HUP "$PID_B"
subscribed_on() { [ "$(subscribe_count "$1" "$2")" -gt 0 ]; }
check "SIGHUP: claimsvc-b subscribes on the new broker 4" wait_for 10 subscribed_on claimsvc-b "$P4"
check "  ... /healthz lists it serving" wait_for 5 bash -c \
	"curl -s --max-time 5 http://127.0.0.1:$HTTP_B/healthz | grep -qx 'broker 127.0.0.1:$P4 ok'"
provision "$P4" 4 0 3
check "  ... devices provision through broker 4" [ "$(succeeded "$P4")" = 3 ]
check "  ... the links to brokers 1-3 were not touched (no reconnect)" \
	[ "$(for p in $P1 $P2 $P3; do connects_of claimsvc-b "$p"; done | tr '\n' ' ')" = "$before_conn" ]
check "  ... same pid: no restart" kill -0 "$PID_B"

# ------------------------------------------- a broker leaves: drained and closed
sed -i "/^broker 127.0.0.1:$P2\$/d" "$T/claimsvc-b.conf"
kill -HUP "$PID_B"
client_gone() { grep -q "Received DISCONNECT from $1\$" "$(broker_log "$2")"; }
check "SIGHUP without broker 2: claimsvc-b disconnects from it cleanly" wait_for 10 client_gone claimsvc-b "$P2"
check "  ... and says so, after draining it" wait_for 5 grep -q "closed the link to 127.0.0.1:$P2" "$T/claimsvc-b.log"
check "  ... and removes it" grep -q "broker 127.0.0.1:$P2 is no longer listed: link removed" "$T/claimsvc-b.log"
check "  ... /healthz no longer lists it, still ready with 3 of 3" bash -c \
	"b=\$(curl -s --max-time 5 http://127.0.0.1:$HTTP_B/healthz); head -1 <<<\"\$b\" | grep -qx ready \
	&& ! grep -q ':$P2 ' <<<\"\$b\" && grep -qx 'brokers serving: 3 of 3' <<<\"\$b\""
B3=$(handled "$HTTP_B")
for b in 1 3 4; do
	provision "${port_of[b]}" "$b" 10 1
	check "  ... broker $b still provisions" [ "$(succeeded "${port_of[b]}")" = 1 ]
done
TIMEOUT_MS=2000 provision "$P2" 2 12 1
check "  ... broker 2, served by nobody now, answers no device" [ "$(succeeded "$P2")" = 0 ]
check "  ... claimsvc-b handled exactly the 6 requests of brokers 1, 3 and 4" [ $(( $(handled "$HTTP_B") - B3 )) -eq 6 ]

# ------------------------------------------- a broker that accepts and says nothing
# A TCP listener that never answers the TLS handshake: connects are
# asynchronous, so waiting for it holds up neither the other links nor HTTP.
SILENT=$(freeport)
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16); time.sleep(600)' "$SILENT" &
BG_PIDS+=($!)
listening() { ss -ltn "sport = :$1" | grep LISTEN >/dev/null; }
wait_for 5 listening "$SILENT" || { echo "the silent listener did not start"; exit 1; }
echo "broker 127.0.0.1:$SILENT" >> "$T/claimsvc-b.conf"
kill -HUP "$PID_B"
check "a silent broker added: /healthz shows it down, the others serving, still ready" wait_for 5 bash -c \
	"b=\$(curl -s --max-time 2 http://127.0.0.1:$HTTP_B/healthz); head -1 <<<\"\$b\" | grep -qx ready \
	&& grep -qx 'broker 127.0.0.1:$SILENT down: not connected' <<<\"\$b\" && grep -qx 'brokers serving: 3 of 4' <<<\"\$b\""
B4=$(handled "$HTTP_B")
provision "$P1" 1 11 1
check "  ... while its handshake hangs, broker 1 still provisions" [ "$(succeeded "$P1")" = 1 ]
check "  ... answered by claimsvc-b" [ $(( $(handled "$HTTP_B") - B4 )) -eq 2 ]

# ------------------------------------------- a bad list is refused, nothing lost
echo "broker_port $P1" >> "$T/claimsvc-b.conf"
kill -HUP "$PID_B"
check "SIGHUP with both broker forms: refused, the brokers served are kept" \
	wait_for 5 grep -q "configuration reload failed, keeping the brokers served: .*broker lines and broker_host/broker_port" \
	"$T/claimsvc-b.log"
check "  ... still ready with 3 of 4" bash -c "curl -s --max-time 5 http://127.0.0.1:$HTTP_B/healthz | grep -qx 'brokers serving: 3 of 4'"
check "  ... --check refuses that file too" bash -c "! '$CLAIMSVC' --check -c '$T/claimsvc-b.conf' 2>/dev/null"
check "claimsvc-b is still running" kill -0 "$PID_B"
refute "  ... and no reload so far was taken for a change of other settings" \
	grep -q "settings other than the broker list changed" "$T/claimsvc-b.log"
sed -i "/^broker_port /d" "$T/claimsvc-b.conf"
echo "keepalive 45" >> "$T/claimsvc-b.conf"
kill -HUP "$PID_B"
check "SIGHUP with another setting changed: logged as needing a restart" wait_for 5 \
	grep -q "settings other than the broker list changed; they take effect at a restart" "$T/claimsvc-b.log"
check "  ... the brokers still served, 3 of 4" bash -c \
	"curl -s --max-time 5 http://127.0.0.1:$HTTP_B/healthz | grep -qx 'brokers serving: 3 of 4'"

# ------------------------------------------- a clean stop after all that
before_closed=$(grep -c 'closed the link to' "$T/claimsvc-b.log" || true)
kill -TERM "$PID_B"
st=0; wait "$PID_B" 2>/dev/null || st=$?
check "claimsvc-b stops with status 0 (under ASan: no error in the link bookkeeping)" [ "$st" -eq 0 ]
check "  ... closing its three connected links (the silent one never connected)" \
	[ $(( $(grep -c 'closed the link to' "$T/claimsvc-b.log") - before_closed )) -eq 3 ]
refute "  ... and no sanitizer report in its log" grep -q Sanitizer "$T/claimsvc-b.log" "$T/claimsvc-a.log"

finish

# claimsvc's HTTP server (claimsvc/http.c): /healthz says ready only while
# Redis answers and the broker connection serves; /metrics is Prometheus
# text format (checked by promtool) with claimsvc's and the broker's
# counters; a stalled HTTP client never holds up provisioning. Real
# redis-server, Mosquitto with the plugin and claimsvc on loopback.
source "$(dirname "$0")/harness.sh"

PROMTOOL=${ONB_PROMTOOL:-$(command -v promtool || true)}
[ -x "$PROMTOOL" ] || { echo "promtool not found: scripts/deps.sh installs it"; exit 1; }
command -v curl >/dev/null || { echo "curl not found: scripts/deps.sh installs it"; exit 1; }

BROKER_EXTRA="plugin_opt_metrics_interval_s 1
plugin_opt_broker_id mqtt-test" up
HTTP_PORT=$(freeport)
CLAIMSVC_EXTRA="http_listen 127.0.0.1:$HTTP_PORT" start_claimsvc claimsvc-1
CSVC_PID=${CLAIMSVC_PIDS[0]}
URL="http://127.0.0.1:$HTTP_PORT"

# code PATH [CURL ARGS...]: prints the HTTP status (000: no answer); body in
# $T/body, headers in $T/headers.
code() {
	local p=$1; shift
	curl -s --max-time 5 -o "$T/body" -D "$T/headers" -w '%{http_code}' "$@" "$URL$p" || true
}
# is STATUS PATH [CURL ARGS...]: PATH answers STATUS.
is() { local want=$1; shift; [ "$(code "$@")" = "$want" ]; }
# metric 'NAME{LABELS}': its value on /metrics, empty when absent.
metric() { curl -s --max-time 5 "$URL/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
# metric_is 'NAME{LABELS}' VALUE
metric_is() { [ "$(metric "$1")" = "$2" ]; }
# reaches 'NAME{LABELS}' N: the value is at least N (the broker writes its
# counters every second, claimsvc reads them at most once a second).
reaches() { local v; v=$(metric "$1"); [ -n "$v" ] && [ "$v" -ge "$2" ]; }

# ---------------------------------------------------------------- healthz
check "/healthz answers 200 once claimsvc serves" wait_for 10 is 200 /healthz
check "  ... saying ready, Redis ok and the broker ok" bash -c "head -1 '$T/body' | grep -qx ready \
	&& grep -qx 'redis ok' '$T/body' && grep -qx 'broker 127.0.0.1:$MQTT_PORT ok' '$T/body'"
check "  ... as text/plain, not cached" bash -c "grep -qi '^content-type: text/plain' '$T/headers' \
	&& grep -qi '^cache-control: no-store' '$T/headers'"
check "one connection serves two requests (keep-alive)" bash -c "curl -sv -o /dev/null -o /dev/null \
	'$URL/metrics' '$URL/healthz' 2>&1 | grep -qi 're-using existing connection'"
check "a GET with a body gets its connection closed, no page" is 000 /metrics -X GET --data x=1
check "HEAD /healthz answers 200 without a body" bash -c "[ \"\$(curl -s -I --max-time 5 -o /dev/null \
	-w '%{http_code}' '$URL/healthz')\" = 200 ]"

# ---------------------------------------------------------------- methods and paths
check "an unknown path answers 404" is 404 /nope
check "  ... and so does /" is 404 /
check "  ... and a path that only starts like a known one" is 404 /metricsx
check "POST /metrics answers 405" is 405 /metrics -X POST --data x=1
check "  ... naming GET and HEAD in Allow" grep -qi '^allow: GET, HEAD' "$T/headers"
check "PUT /healthz answers 405" is 405 /healthz -X PUT --data x
check "DELETE /metrics answers 405" is 405 /metrics -X DELETE
check "POST to an unknown path answers 404" is 404 /nope -X POST --data x=1

BIG=$(head -c 20000 /dev/zero | tr '\0' a)
check "a 20 KB request header answers 431 (per-connection memory cap)" is 431 /metrics -H "X-Big: $BIG"
check "a 20 KB URL answers 414" is 414 "/metrics?$BIG"
check "  ... and claimsvc still answers" is 200 /healthz

# ---------------------------------------------------------------- metrics
check "/metrics carries the broker's counters, labelled broker=\"mqtt-test\"" \
	wait_for 10 bash -c "curl -s '$URL/metrics' | grep -q '^onboard_broker_connects_allowed_total{broker=\"mqtt-test\"} '"
check "/metrics answers 200 as text format 0.0.4" bash -c "[ \"\$(curl -s -o '$T/metrics.txt' -D '$T/mh' \
	-w '%{http_code}' '$URL/metrics')\" = 200 ] && grep -qi '^content-type: text/plain; version=0.0.4' '$T/mh'"
check "promtool check metrics accepts it (names, HELP, TYPE, syntax)" \
	bash -c "'$PROMTOOL' check metrics < '$T/metrics.txt'"
# every sample's name has its own HELP and TYPE lines (no histogram here:
# a sample's name is its family's)
families_complete() {
	awk '/^# HELP /{h[$3]=1} /^# TYPE /{t[$3]=1}
		/^[^#]/{n=$1; sub(/\{.*/, "", n); s[n]=1}
		END { for(n in s) if(!(n in h) || !(n in t)) { print "no HELP/TYPE: " n; bad=1 } exit bad }' "$1"
}
check "  ... every family has HELP and TYPE, every sample a family" families_complete "$T/metrics.txt"
check "  ... claimsvc's families are there" bash -c "grep -q '^onboard_claimsvc_requests_total{action=\"register-thing\",result=\"accepted\"} ' \
	'$T/metrics.txt' && grep -q '^onboard_claimsvc_redis_up 1$' '$T/metrics.txt' \
	&& grep -q '^onboard_claimsvc_broker_up{address=\"127.0.0.1:$MQTT_PORT\"} 1$' '$T/metrics.txt' \
	&& grep -q '^onboard_claimsvc_info{client_id=\"claimsvc-1\",ca_key=\"file\"} 1$' '$T/metrics.txt'"
check "  ... and the broker's labelled ones" bash -c "grep -q '^onboard_broker_connects_denied_total{broker=\"mqtt-test\",reason=\"not-registered\"} ' \
	'$T/metrics.txt' && grep -q '^onboard_broker_acl_denied_total{broker=\"mqtt-test\",kind=\"publish\"} ' '$T/metrics.txt'"
bytes=$(stat -c %s "$T/metrics.txt")
echo "# /metrics: $bytes bytes, $(grep -c '^[^#]' "$T/metrics.txt") samples," \
	"$(curl -s -o /dev/null -w '%{time_total}' "$URL/metrics") s for one scrape"

# Provisioning moves the counters by exactly what happened.
printf 'serial,birth_fp,batch\n' > "$T/allow.csv"
for i in $(seq 0 9); do printf 'SN%04d,,b1\n' "$i" >> "$T/allow.csv"; done
"$ONBOARDCTL" allowlist import "$T/allow.csv" >/dev/null
REG='onboard_claimsvc_requests_total{action="register-thing",result="accepted"}'
CSR='onboard_claimsvc_requests_total{action="create-from-csr",result="accepted"}'
REQS='onboard_broker_provisioning_requests_total{broker="mqtt-test"}'
reg0=$(metric "$REG"); csr0=$(metric "$CSR"); req0=$(metric "$REQS")
devsim_claim --serial-prefix SN --serial-start 0 -n 3 -c 3 > "$T/devsim.out" 2>&1 || true
check "three devices provision" grep -q "^succeeded 3/3" "$T/devsim.out"
check "  ... register-thing accepted rises by exactly 3 ($reg0 -> $(metric "$REG"))" \
	test "$(metric "$REG")" -eq $((reg0 + 3))
check "  ... create-from-csr accepted rises by exactly 3" test "$(metric "$CSR")" -eq $((csr0 + 3))
check "  ... the broker's provisioning requests reach +6" wait_for 10 reaches "$REQS" $((req0 + 6))
check "  ... and stop there (exactly 6)" test "$(metric "$REQS")" -eq $((req0 + 6))

new_device claim-hand claim-ca
BAD='onboard_claimsvc_rejected_total{error_code="InvalidCsr"}'
bad0=$(metric "$BAD"); bad0=${bad0:-0}
rr claim-hand claim-hand '$aws/certificates/create-from-csr/json' '$aws/certificates/create-from-csr/json/rejected' \
	'{"certificateSigningRequest":"garbage"}' >/dev/null
check "a bad CSR raises rejected_total{error_code=\"InvalidCsr\"} by exactly 1" \
	wait_for 5 metric_is "$BAD" $((bad0 + 1))

# ---------------------------------------------------------------- a stalled client
# Slowloris: one connection sends half a request, the others nothing; all
# from 127.0.0.1, as many as one address may hold (8). First, claimsvc holds
# no other connection (curl's kept-alive ones are closed by curl; claimsvc
# counts one until it has read the close).
idle_http() { [ -z "$(ss -Htn state established state close-wait "( sport = :$HTTP_PORT )")" ]; }
wait_for 10 idle_http
exec 20<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
printf 'GET /metrics HTTP/1.1\r\nHost: x\r\n' >&20
for fd in 21 22 23 24 25 26 27; do eval "exec $fd<>/dev/tcp/127.0.0.1/$HTTP_PORT"; done
# claimsvc has accepted all 8 once its listening socket's queue is empty
accepted_all() { [ "$(ss -Hltn "sport = :$HTTP_PORT" | awk '{ print $2 }')" = 0 ]; }
wait_for 5 accepted_all
refute "a ninth connection from the same address gets no answer (per-address limit)" is 200 /healthz
check "with 8 stalled HTTP clients, a device still provisions" devsim_claim --serial SN0005
check "  ... a second one too (rss $(ps -o rss= -p "$CSVC_PID") KiB)" devsim_claim --serial SN0006
# closed FD: the server closed the connection (EOF, not a read timeout).
closed() { local rc=0; while :; do read -r -t 1 -u "$1" _ || { rc=$?; break; }; done; [ "$rc" -le 128 ]; }
check "the half-sent request is closed by the server's timeout" wait_for 30 closed 20
check "  ... and so is a connection that sent nothing" wait_for 30 closed 27
for fd in 20 21 22 23 24 25 26 27; do eval "exec $fd<&-"; done
check "/healthz answers again once they are gone" wait_for 10 is 200 /healthz

# ---------------------------------------------------------------- Redis away
stop_redis
check "/healthz answers 503 while Redis is stopped" wait_for 10 is 503 /healthz
check "  ... saying not ready and that Redis is down" bash -c "head -1 '$T/body' | grep -qx 'not ready' \
	&& grep -q '^redis down: ' '$T/body' && grep -qx 'broker 127.0.0.1:$MQTT_PORT ok' '$T/body'"
check "  ... while /metrics still answers, with redis_up 0" bash -c \
	"curl -s '$URL/metrics' | grep -qx 'onboard_claimsvc_redis_up 0'"
start_redis >/dev/null
check "/healthz answers 200 again once Redis is back" wait_for 15 is 200 /healthz

# ---------------------------------------------------------------- broker away
stop_broker
check "/healthz answers 503 while the broker is gone" wait_for 10 is 503 /healthz
check "  ... naming the broker that is down" grep -qx "broker 127.0.0.1:$MQTT_PORT down: not connected" "$T/body"
check "  ... and broker_up is 0 on /metrics" bash -c \
	"curl -s '$URL/metrics' | grep -qx 'onboard_claimsvc_broker_up{address=\"127.0.0.1:$MQTT_PORT\"} 0'"
mv "$T/mosquitto.log" "$T/mosquitto.1.log"
start_broker >/dev/null
check "/healthz answers 200 again once the broker is back" wait_for 30 is 200 /healthz

# ---------------------------------------------------------------- configuration
check "--check reports the listen address" bash -c \
	"'$CLAIMSVC' --check -c '$T/claimsvc-1.conf' | grep -q 'http 127.0.0.1:$HTTP_PORT'"
for bad in "localhost:80" "127.0.0.1:0" "127.0.0.1" "[::1]80" "1.2.3.4:65536"; do
	sed "s/^http_listen .*/http_listen $bad/" "$T/claimsvc-1.conf" > "$T/bad.conf"
	refute "--check refuses http_listen $bad" "$CLAIMSVC" --check -c "$T/bad.conf"
done
sed "s/^http_listen .*/http_listen off/" "$T/claimsvc-1.conf" > "$T/off.conf"
check "--check accepts http_listen off" "$CLAIMSVC" --check -c "$T/off.conf"
# A second instance on the same address stops at once instead of running unprobed.
new_device claimsvc-2 service-ca
sed "s/claimsvc-1\\./claimsvc-2./g" "$T/claimsvc-1.conf" > "$T/claimsvc-2.conf"
rc=0; timeout 20 "$CLAIMSVC" -c "$T/claimsvc-2.conf" > "$T/claimsvc-2.log" 2>&1 || rc=$?
check "a second claimsvc on the same http_listen exits with status 1" test "$rc" -eq 1
check "  ... saying it cannot listen" grep -q "cannot listen on 127.0.0.1:$HTTP_PORT" "$T/claimsvc-2.log"

# ---------------------------------------------------------------- figures
rss0=$(ps -o rss= -p "$CSVC_PID" | tr -d ' ')
for _ in $(seq 1 500); do curl -s -o /dev/null -o /dev/null "$URL/metrics" "$URL/healthz"; done
rss1=$(ps -o rss= -p "$CSVC_PID" | tr -d ' ')
echo "# claimsvc RSS ${rss0} KiB before 500 scrapes of /metrics and /healthz, ${rss1} KiB after"
check "claimsvc is still serving after them" is 200 /healthz

finish

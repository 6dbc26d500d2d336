# Sourced by every integration test: a real redis-server and a real mosquitto
# with the plugin, on free loopback ports, with a PKI made at run time in a
# temp dir that a trap removes. Nothing here is mocked.
set -euo pipefail

: "${ONB_BUILD_DIR:?run through ctest (ONB_BUILD_DIR unset)}"
: "${ONB_SOURCE_DIR:?run through ctest (ONB_SOURCE_DIR unset)}"

ONBOARDCTL="$ONB_BUILD_DIR/cli/onboardctl"
PLUGIN="$ONB_BUILD_DIR/plugin/mosquitto_onboard.so"
# The servers under test: Debian 12's unless the version matrix
# (scripts/test.sh, scripts/brokers.sh) names others.
MOSQUITTO_BIN=${ONB_MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}
REDIS_SERVER=${ONB_REDIS_SERVER:-redis-server}
T=$(mktemp -d "${TMPDIR:-/tmp}/onb-it.XXXXXX")
PKI="$T/pki"
REDIS_PID=""
BROKER_PID=""
BG_PIDS=()
FAILS=0
PASSES=0

# A plugin built with sanitizers needs their runtimes inside the (plain)
# broker binary. Otherwise the broker runs with glibc's checking malloc, so
# that a double free or a heap overrun of the plugin's (or of the broker's
# own, in a version the plugin misreads) aborts the broker at once, and the
# test fails below even if every check before passed.
ONB_SANITIZED=0
if grep -q '^ONB_SANITIZE:BOOL=ON' "$ONB_BUILD_DIR/CMakeCache.txt" 2>/dev/null; then
	ONB_SANITIZED=1
	BROKER_ENV=(LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)")
	export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
else
	BROKER_ENV=(MALLOC_CHECK_=3 MALLOC_PERTURB_=165)
	for lib in /usr/lib/*/libc_malloc_debug.so.0; do
		[ -e "$lib" ] && BROKER_ENV+=(LD_PRELOAD="$lib")
	done
fi

# run_broker CONF: the broker under test, in the background; sets BROKER_PID.
run_broker() {
	env "${BROKER_ENV[@]}" "$MOSQUITTO_BIN" -c "$1" &
	BROKER_PID=$!
}

# alive PID: the process exists and has not exited (a zombie has).
alive() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $st != Z* ]]
}

cleanup() {
	local rc=$? st=0
	# A broker that died by itself crashed: nothing in a test stops it
	# without clearing BROKER_PID.
	if [ -n "$BROKER_PID" ] && ! alive "$BROKER_PID"; then
		wait "$BROKER_PID" 2>/dev/null || st=$?
		FAILS=$((FAILS + 1))
		echo "not ok - the broker ($MOSQUITTO_BIN) died during the test, exit status $st"
		echo "$PASSES passed, $FAILS failed"
		BROKER_PID=""
	fi
	for k in "${!FLEET_PIDS[@]}"; do
		alive "${FLEET_PIDS[$k]}" && continue
		st=0; wait "${FLEET_PIDS[$k]}" 2>/dev/null || st=$?
		FAILS=$((FAILS + 1))
		echo "not ok - broker $k ($MOSQUITTO_BIN) died during the test, exit status $st"
		echo "$PASSES passed, $FAILS failed"
		unset "FLEET_PIDS[$k]"
	done
	for p in "${BG_PIDS[@]}" "${FLEET_PIDS[@]}" $BROKER_PID $REDIS_PID; do
		kill -CONT "$p" 2>/dev/null || true
		kill "$p" 2>/dev/null || true
	done
	# claimsvc, redis-server and the broker are gone before we return,
	# whatever failed (a SIGTERM'd process that hangs gets SIGKILL after 5 s)
	local deadline=$((SECONDS + 5))
	for p in "${BG_PIDS[@]}" "${FLEET_PIDS[@]}" $BROKER_PID $REDIS_PID; do
		while alive "$p" && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
		kill -KILL "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ $rc -ne 0 ] || [ $FAILS -ne 0 ]; then
		echo "--- mosquitto.log (tail) ---"; tail -n 40 "$T/mosquitto.log" 2>/dev/null || true
		# a CI page is all there is of a failure that happens once in a while
		for f in "$T"/claimsvc*.log "$T"/mosquitto-*.log; do
			[ -f "$f" ] || continue
			echo "--- ${f##*/} (tail) ---"; tail -n 25 "$f"
		done
	fi
	rm -rf "$T"
	if [ $rc -eq 0 ] && [ $FAILS -ne 0 ]; then rc=1; fi
	exit $rc
}
trap cleanup EXIT
# ctest's timeout and ^C end the test through the same cleanup
trap 'exit 143' TERM
trap 'exit 130' INT

freeport() { "$ONB_BUILD_DIR/tests/tools/freeport"; }

# wait_for SECONDS CMD...: retries CMD every 50 ms until it succeeds.
wait_for() {
	local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s%N)" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

start_redis() {
	REDIS_PORT=${REDIS_PORT:-$(freeport)}
	"$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$T" --appendonly yes \
		--save '' --daemonize no --logfile "$T/redis.log" &
	REDIS_PID=$!
	wait_for 5 redis-cli -p "$REDIS_PORT" ping || { echo "redis did not start"; exit 1; }
	export ONBOARD_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
	echo "# registry: $(rcli INFO server | tr -d '\r' | grep -E '^(valkey|redis)_version:' | tr '\n' ' ')"
}

# registry_url: the URL the broker and claimsvc are given; REGISTRY_URL
# overrides it (a Sentinel URL: sentinel_lib.sh).
registry_url() { echo "${REGISTRY_URL:-redis://127.0.0.1:$REDIS_PORT/0}"; }

stop_redis() { kill "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true; REDIS_PID=""; }
pause_redis() { kill -STOP "$REDIS_PID"; }
resume_redis() { kill -CONT "$REDIS_PID"; }
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

make_pki() { "$ONBOARDCTL" pki init "$PKI" >/dev/null; }

write_broker_conf() {
	cat > "$T/mosquitto.conf" <<CONF
per_listener_settings false
allow_anonymous false
user root
listener $MQTT_PORT 127.0.0.1
cafile $PKI/ca-bundle.pem
certfile $PKI/server.pem
keyfile $PKI/server.key
require_certificate true
# the shipped default (config/mosquitto.conf); tlsv1.2 = 1.2 or later
tls_version ${BROKER_TLS_VERSION:-tlsv1.3}
set_tcp_nodelay true
plugin $PLUGIN
plugin_opt_device_ca $PKI/device-ca.pem
plugin_opt_claim_ca $PKI/claim-ca.pem
plugin_opt_birth_ca $PKI/manufacturer-ca.pem
plugin_opt_service_ca $PKI/service-ca.pem
plugin_opt_redis_url $(registry_url)
plugin_opt_redis_timeout_ms 50
# repeated refusals: one aggregated audit entry per kind and second (60 s in production)
plugin_opt_audit_window_s 1
${BROKER_EXTRA:-}
log_dest file $T/mosquitto.log
log_type all
CONF
}

# broker_runs: how many times the log says a broker started to listen.
broker_runs() {
	local n; n=$(grep -c "mosquitto version .* running" "$T/mosquitto.log" 2>/dev/null) || :
	echo "${n:-0}"
}

broker_started_since() { [ "$(broker_runs)" -gt "$1" ]; }

start_broker() {
	MQTT_PORT=${MQTT_PORT:-$(freeport)}
	write_broker_conf
	# The log is appended to across restarts: wait for this run's line, not
	# the last run's (which let a test connect before the port was open).
	local runs; runs=$(broker_runs)
	run_broker "$T/mosquitto.conf"
	wait_for 10 broker_started_since "$runs" \
		|| { echo "broker did not start"; cat "$T/mosquitto.log"; exit 1; }
	echo "# broker: $(sed -nE 's/.*(mosquitto version [0-9.]+) running.*/\1/p' "$T/mosquitto.log" | tail -n 1)"
}

stop_broker() { kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=""; }

# A fleet: more brokers on the same Redis, each a copy of the first one's
# configuration with its own port, log ($T/mosquitto-K.log) and broker id
# (broker-K). BROKER_PORTS[K] is broker K's port (BROKER_PORTS[1] is the
# first broker's, $MQTT_PORT); run a client against broker K with
# `MQTT_PORT=${BROKER_PORTS[K]} pub ...`. A fleet broker that dies by itself
# fails the test like the first one (cleanup).
BROKER_PORTS=()
FLEET_PIDS=()
# start_fleet_broker K: starts broker K (2, 3, ...) after start_broker.
start_fleet_broker() {
	local k=$1 port; port=$(freeport)
	BROKER_PORTS[1]=$MQTT_PORT
	BROKER_PORTS[k]=$port
	sed -e "s/^listener $MQTT_PORT /listener $port /" -e "s|^log_dest file .*|log_dest file $T/mosquitto-$k.log|" \
		-e "s/^plugin_opt_audit_window_s .*/&\nplugin_opt_broker_id broker-$k/" "$T/mosquitto.conf" > "$T/mosquitto-$k.conf"
	env "${BROKER_ENV[@]}" "$MOSQUITTO_BIN" -c "$T/mosquitto-$k.conf" &
	FLEET_PIDS[k]=$!
	wait_for 10 grep -q "mosquitto version .* running" "$T/mosquitto-$k.log" \
		|| { echo "broker $k did not start"; cat "$T/mosquitto-$k.log"; exit 1; }
}
# stop_fleet_broker K
stop_fleet_broker() {
	kill "${FLEET_PIDS[$1]}"; wait "${FLEET_PIDS[$1]}" 2>/dev/null || true; unset "FLEET_PIDS[$1]"
}

# up: the usual fixture, PKI + Redis + broker.
up() { make_pki; start_registry; "$ONBOARDCTL" policy init "$ONB_SOURCE_DIR/policies" >/dev/null; start_broker; }

# start_registry: Redis, or with ONB_TEST_REGISTRY=sentinel (ctest's
# *_sentinel entries) a primary, a replica and a sentinel whose URL the
# brokers, claimsvc and onboardctl are given (sentinel_lib.sh).
start_registry() {
	case ${ONB_TEST_REGISTRY:-redis} in
	redis) start_redis ;;
	sentinel) start_sentinel_registry; echo "# registry through Redis Sentinel: $SENTINEL_URL" ;;
	*) echo "ONB_TEST_REGISTRY is redis or sentinel, not '$ONB_TEST_REGISTRY'"; exit 1 ;;
	esac
}

# new_device ID [CA]: a key and certificate for ID issued by CA (default device-ca).
new_device() {
	"$ONBOARDCTL" pki issue --ca "$PKI/${2:-device-ca}" --cn "$1" --out "$T/$1" >/dev/null
}

# register ID [STATE]: binds $T/ID.pem to device ID.
register() {
	"$ONBOARDCTL" device register --id "$1" --cert "$T/$1.pem" --state "${2:-active}" >/dev/null
}

# tls_args CERTNAME: mosquitto client arguments for that identity.
tls_args() {
	echo -h 127.0.0.1 -p "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" --cert "$T/$1.pem" --key "$T/$1.key"
}

# pub AS CLIENTID TOPIC [ARGS]: one QoS 1 MQTT v5 publish; output in $T/pub.out.
pub() {
	local as=$1 id=$2 topic=$3; shift 3
	# shellcheck disable=SC2046
	timeout 10 mosquitto_pub $(tls_args "$as") -i "$id" -V 5 -q 1 -t "$topic" -m "${MSG:-hello}" "$@" \
		> "$T/pub.out" 2>&1
}

# sub_bg AS CLIENTID FILTER OUTFILE [ARGS]: a background subscriber; sets SUB_PID.
sub_bg() {
	local as=$1 id=$2 filter=$3 out=$4; shift 4
	# shellcheck disable=SC2046
	mosquitto_sub $(tls_args "$as") -i "$id" -V 5 -q 1 -t "$filter" -v "$@" > "$out" 2>&1 &
	SUB_PID=$!
	BG_PIDS+=("$SUB_PID")
}

# wait_subscribed CLIENTID: the broker has logged this client's SUBSCRIBE.
wait_subscribed() { wait_for 5 grep -q "Received SUBSCRIBE from $1" "$T/mosquitto.log"; }

# audit_has FIELD-PATTERN...: some onb:audit entry contains all patterns,
# within 3 s (the plugin writes refusals from its watcher thread, aggregated:
# docs/registry.md).
audit_has() { wait_for 3 audit_has_now "$@"; }
audit_has_now() {
	local entries; entries=$(rcli --raw XRANGE onb:audit - + | tr '\n' ' ')
	for p in "$@"; do
		grep -q -- "$p" <<<"$entries" || return 1
	done
}

ok() { PASSES=$((PASSES + 1)); echo "ok - $*"; }
not_ok() { FAILS=$((FAILS + 1)); echo "not ok - $*"; }
# check DESCRIPTION CMD...: records a pass if CMD succeeds.
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
# refute DESCRIPTION CMD...: records a pass if CMD fails.
refute() { local d=$1; shift; if "$@"; then not_ok "$d"; else ok "$d"; fi; }

# spoke_cbor: some broker log of this test (some keep earlier brokers' logs)
# shows a request on a .../cbor topic.
spoke_cbor() { grep -qs "Received PUBLISH from .*'\$aws/[a-z/-]*/cbor'" "$T"/mosquitto*.log*; }

finish() {
	# A CBOR pass (ONB_PROV_FORMAT=cbor) that never spoke CBOR proves nothing.
	if [ "${PROV_FORMAT:-json}" = cbor ]; then
		check "this CBOR pass sent its provisioning requests on the .../cbor topics" spoke_cbor
	fi
	echo "$PASSES passed, $FAILS failed"
	[ "$FAILS" -eq 0 ]
}

# refused AS CLIENTID TOPIC: the broker refuses the CONNECT ("Not authorized").
refused() { ! pub "$@" && grep -qi "not authori" "$T/pub.out"; }
# denied_pub AS CLIENTID TOPIC: connected, but the PUBLISH is refused (v5 PUBACK 0x87).
denied_pub() { ! pub "$@" || grep -q "Not authorized" "$T/pub.out"; }

CLAIMSVC="$ONB_BUILD_DIR/claimsvc/claimsvc"
DEVSIM="$ONB_BUILD_DIR/tests/devsim/devsim"
# The provisioning format every devsim run here uses: ONB_PROV_FORMAT=cbor
# runs a script's devices over the .../cbor topics (ctest's *_cbor entries).
PROV_FORMAT=${ONB_PROV_FORMAT:-json}
case $PROV_FORMAT in json|cbor) ;; *) echo "ONB_PROV_FORMAT is json or cbor, not '$PROV_FORMAT'"; exit 1 ;; esac
DEVSIM_FMT=(--format "$PROV_FORMAT")
CLAIMSVC_PIDS=()

# broker_log PORT: the log file of the broker listening on PORT ($MQTT_PORT's,
# or fleet broker K's for BROKER_PORTS[K]).
broker_log() {
	local k
	[ "$1" = "$MQTT_PORT" ] && { echo "$T/mosquitto.log"; return; }
	for k in "${!BROKER_PORTS[@]}"; do
		[ "${BROKER_PORTS[k]}" = "$1" ] && [ "$k" != 1 ] && { echo "$T/mosquitto-$k.log"; return; }
	done
	echo "broker_log: no broker on port $1" >&2
	return 1
}

# subscribe_count NAME PORT: how many SUBSCRIBEs of client NAME that broker logged.
subscribe_count() { grep -c "Received SUBSCRIBE from $1" "$(broker_log "$2")" 2>/dev/null || true; }

# start_claimsvc NAME: one claimsvc instance with a service certificate NAME,
# serving the brokers on the ports of CLAIMSVC_BROKERS ("p1 p2 ...", broker
# lines; default: $MQTT_PORT alone, as broker_host/broker_port). Returns once
# it has subscribed on each of them.
start_claimsvc() {
	local name=${1:-claimsvc-1} ports=${CLAIMSVC_BROKERS:-} brokers p
	[ -f "$T/$name.pem" ] || new_device "$name" service-ca
	mkdir -p "$T/templates"
	cp "$ONB_SOURCE_DIR"/config/templates/*.json "$T/templates/"
	if [ -n "$ports" ]; then
		brokers=$(for p in $ports; do echo "broker 127.0.0.1:$p"; done)
	else
		ports=$MQTT_PORT
		brokers="broker_host 127.0.0.1
broker_port $MQTT_PORT"
	fi
	cat > "$T/$name.conf" <<CONF
$brokers
cafile $PKI/ca-bundle.pem
certfile $T/$name.pem
keyfile $T/$name.key
device_ca_cert $PKI/device-ca.pem
device_ca_key ${CLAIMSVC_CA_KEY:-$PKI/device-ca.key}
redis_url $(registry_url)
templates_dir $T/templates
audit_window_s 1
${CLAIMSVC_EXTRA:-}
CONF
	local -A before=()
	for p in $ports; do before[$p]=$(subscribe_count "$name" "$p"); done
	LD_PRELOAD="" "$CLAIMSVC" -c "$T/$name.conf" >> "$T/$name.log" 2>&1 &
	CLAIMSVC_PIDS+=($!)
	BG_PIDS+=($!)
	subscribed_more() { [ "$(subscribe_count "$1" "$2")" -gt "$3" ]; }
	for p in $ports; do
		wait_for 10 subscribed_more "$name" "$p" "${before[$p]:-0}" \
			|| { echo "claimsvc $name did not subscribe on the broker at port $p"; cat "$T/$name.log"; exit 1; }
	done
}

# devsim_claim ARGS...: devsim with the shared claim certificate (made once).
devsim_claim() {
	[ -f "$T/claim-batch.pem" ] || new_device claim-batch claim-ca
	"$DEVSIM" "${DEVSIM_FMT[@]}" --port "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" \
		--claim-cert "$T/claim-batch.pem" --claim-key "$T/claim-batch.key" --quiet "$@"
}

# rr AS CLIENTID REQUEST_TOPIC RESPONSE_TOPIC PAYLOAD: one request on one
# connection, the answer on stdout (mosquitto_rr waits for RESPONSE_TOPIC).
rr() {
	local as=$1 id=$2 req=$3 resp=$4 payload=$5
	# shellcheck disable=SC2046
	timeout 10 mosquitto_rr $(tls_args "$as") -i "$id" -t "$req" -e "$resp" -m "$payload" -W 5 2>&1
}

# json_field NAME: the string value of "NAME" in the JSON on stdin.
json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }

source "$ONB_SOURCE_DIR/tests/integration/sentinel_lib.sh"

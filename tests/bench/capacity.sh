#!/usr/bin/env bash
# The capacity benchmark (issue 16): CPU of each part per mTLS connect and
# per provisioning, and the connect rate with Redis on loopback and behind a
# delaying proxy (~1 ms and ~3 ms round trip), all in one run. Writes the
# generated part of docs/scaling.md (the capacity model) and one block of
# docs/performance.md (between the "capacity.sh" markers, below run.sh's
# "kept" line, so run.sh keeps it).
#
#   tests/bench/capacity.sh [BUILD_DIR] [--quick] [--out FILE] [--perf FILE] [--no-perf]
#
#   BUILD_DIR  a built tree (default: <repo>/build): onboardctl, the plugin,
#              claimsvc, devsim, freeport, delayproxy, connect_rate
#   --quick    smaller runs, one round (a smoke test: about 2 minutes)
#   --out      the capacity model (default: docs/scaling.md); what follows its
#              "everything below is kept" line is kept
#   --perf     the file whose "capacity.sh" block is rewritten (default:
#              docs/performance.md); --no-perf leaves it alone
#   --compare-claimsvc BIN
#              another claimsvc binary (e.g. built from an earlier commit:
#              the Lua scripts are compiled into it): every provisioning
#              round runs once with each, in alternating order, and a
#              before/after table compares them (the model uses this tree's)
#
# Parts, all on 127.0.0.1, all started here with the same mosquitto binary
# (ONB_MOSQUITTO) and the same environment: Redis (ONB_REDIS_SERVER), a
# broker with the plugin and Redis on loopback, two more with the plugin whose
# Redis is reached through tests/tools/delayproxy (--rtt-ms 1 and 3), the
# baseline broker (the same configuration without the plugin), one claimsvc.
# CPU is /proc/PID/stat utime+stime (every thread of the process). Every run
# records "other CPU": cores used by processes that are not part of the
# benchmark (user time only; see docs/performance.md). Results:
# BUILD_DIR/bench-results/capacity.jsonl. Every step is bounded by `timeout`;
# rounds stop at a 600 s budget (BUDGET_S).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build
QUICK=0
OUT=$ROOT/docs/scaling.md
PERF=$ROOT/docs/performance.md
COMPARE=""
COMPARE_NAME=${COMPARE_NAME:-} # what the compared binary is, for the report
CMDLINE="tests/bench/capacity.sh $*"
usage() { sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--out) OUT=${2:?--out needs a file}; shift ;;
	--perf) PERF=${2:?--perf needs a file}; shift ;;
	--no-perf) PERF="" ;;
	--compare-claimsvc) COMPARE=$(realpath "${2:?--compare-claimsvc needs a binary}"); shift ;;
	-h|--help) usage 0 ;;
	-*) echo "capacity.sh: unknown option $1" >&2; usage 2 >&2 ;;
	*) BUILD=$(cd "$1" && pwd) ;;
	esac
	shift
done
for tool in jq redis-cli; do
	command -v "$tool" >/dev/null || { echo "capacity.sh: $tool is required" >&2; exit 2; }
done
for f in cli/onboardctl plugin/mosquitto_onboard.so claimsvc/claimsvc tests/devsim/devsim \
		tests/tools/freeport tests/tools/delayproxy tests/bench/connect_rate; do
	[ -e "$BUILD/$f" ] || { echo "capacity.sh: $BUILD/$f is missing: build first" >&2; exit 2; }
done
if [ $QUICK = 1 ]; then ROUNDS=1; CONNECTS=400; PROV_N=200; DEVICES=50
else ROUNDS=3; CONNECTS=1500; PROV_N=1000; DEVICES=50; fi
CONC=50
RTTS=(1 3)     # round trips (ms) added between a broker and Redis
BUDGET_S=${BUDGET_S:-600}
# capacity examples: "connects/s:provisionings/s"
MIXES=(${CAPACITY_MIXES:-1000:0 0:1000 10000:100 20000:1000})

export ONB_SOURCE_DIR=$ROOT ONB_BUILD_DIR=$BUILD
# shellcheck source=../integration/harness.sh
source "$ROOT/tests/integration/harness.sh"
B=$BUILD/tests/bench
RES=$BUILD/bench-results
mkdir -p "$RES" "$T/ids"
J=$RES/capacity.jsonl
: > "$J"
T0=$(date +%s)
log() { printf '[%s +%3ss] %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - T0 ))" "$*" >&2; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
cpu_s() { sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($12 + $13) / hz }'; }
usr_s() { sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", $12 / hz }'; }
busy_s() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.3f", ($2 + $3 + $9) / hz; exit }' /proc/stat; }
# redis_cpu_s: Redis's own CPU seconds (INFO cpu: getrusage of the whole
# process, microsecond resolution; /proc counts in 10 ms ticks)
redis_cpu_s() { rcli info cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { printf "%.6f", s }'; }
redis_calls() { rcli info commandstats | awk -F'[=,]' '/^cmdstat_/ { s += $2 } END { print s + 0 }'; }
# cmdstats: "name calls usec" per command, sorted by name
cmdstats() { rcli info commandstats | tr -d '\r' | awk -F'[:=,]' '/^cmdstat_/ { sub(/^cmdstat_/, "", $1); print $1, $3, $5 }' | sort; }
over_budget() { [ $(( $(date +%s) - T0 + $1 )) -gt "$BUDGET_S" ]; }

# ------------------------------------------------------------------ setup
# The shipped configuration, as run.sh uses it (TLS 1.2 or later, root, a
# larger queue), with its own port, log, Redis port and broker id.
broker_conf() { # PORT LOG REDIS_PORT BROKER_ID PLUGIN(0|1)
	sed -e "s#@PORT@#$1#; s#@PKI@#$PKI#g; s#@PLUGIN@#$PLUGIN#" \
		-e "s#@REDIS_URL@#redis://127.0.0.1:$3/0#; s#@LOG@#$2#; s#^user mosquitto#user root#" \
		-e "s#^tls_version tlsv1.3#tls_version tlsv1.2#" \
		-e "s#^\# plugin_opt_broker_id .*#plugin_opt_broker_id $4#" "$ROOT/config/mosquitto.conf" \
		| if [ "$5" = 1 ]; then cat; else grep -v '^plugin' | sed 's/^allow_anonymous false/allow_anonymous true/'; fi
	echo "max_queued_messages 100000"
	# every devsim device shares one claim certificate, whose request budget
	# (200/s, burst 400 by default) rounds of 1,000 back to back exceed:
	# the benchmark measures cost, so the budget is lifted (0 = no limit)
	if [ "$5" = 1 ]; then echo 'plugin_opt_request_cert_rate 0'; fi
}
declare -A BPORT BPID
# start_one NAME REDIS_PORT PLUGIN: a broker in the background (no debugging
# malloc, unlike the integration harness's: every broker here runs alike).
start_one() {
	local name=$1 port; port=$(freeport)
	broker_conf "$port" "$T/$name.log" "$2" "$name" "$3" > "$T/$name.conf"
	"$MOSQUITTO_BIN" -c "$T/$name.conf" &
	BPID[$name]=$!; BPORT[$name]=$port
	BG_PIDS+=("$!")
	wait_for 10 grep -q "mosquitto version .* running" "$T/$name.log" \
		|| { echo "broker $name did not start"; cat "$T/$name.log"; exit 1; }
}
declare -A PROXY_PID PROXY_PORT
start_proxy() { # RTT_MS
	"$BUILD/tests/tools/delayproxy" --listen 0 --target "$REDIS_PORT" --rtt-ms "$1" > "$T/proxy-$1.port" 2> "$T/proxy-$1.log" &
	PROXY_PID[$1]=$!
	BG_PIDS+=("$!")
	wait_for 5 test -s "$T/proxy-$1.port" || { echo "delayproxy did not start"; cat "$T/proxy-$1.log"; exit 1; }
	PROXY_PORT[$1]=$(head -1 "$T/proxy-$1.port")
}
# rtt_ms PORT: the round trip redis-cli measures to PORT (100 PINGs, avg ms)
rtt_ms() { timeout 10 redis-cli -p "$1" --latency -i 1 --raw 2>/dev/null | tail -1 | awk '{ print $3 }' || echo "?"; }

log "setup: PKI, Redis, $DEVICES device identities, brokers, delay proxies"
make_pki
start_redis
"$ONBOARDCTL" policy init "$ROOT/policies" >/dev/null
for i in $(seq 0 $((DEVICES - 1))); do
	printf -v id 'cap%03d' "$i"
	"$ONBOARDCTL" pki issue --ca "$PKI/device-ca" --cn "$id" --out "$T/ids/$id" >/dev/null
	"$ONBOARDCTL" device register --id "$id" --cert "$T/ids/$id.pem" --state active >/dev/null
done
start_one baseline "$REDIS_PORT" 0
start_one plugin "$REDIS_PORT" 1
for rtt in "${RTTS[@]}"; do
	start_proxy "$rtt"
	start_one "plugin-rtt$rtt" "${PROXY_PORT[$rtt]}" 1
done
declare -A RTT_SEEN
RTT_SEEN[plugin]=$(rtt_ms "$REDIS_PORT")
for rtt in "${RTTS[@]}"; do RTT_SEEN[plugin-rtt$rtt]=$(rtt_ms "${PROXY_PORT[$rtt]}"); done
log "Redis round trip (redis-cli --latency, ms): loopback ${RTT_SEEN[plugin]}, $(for r in "${RTTS[@]}"; do printf '%s ms proxy %s; ' "$r" "${RTT_SEEN[plugin-rtt$r]}"; done)"
BROKERS=(baseline plugin)
# Redis's CPU with every broker up and nothing else to do (its cron, the
# brokers' blocking XREADs on the event stream): subtracted from the
# per-operation figures below, reported on its own.
r0=$(redis_cpu_s); sleep 3; REDIS_IDLE=$(calc %.6f "($(redis_cpu_s) - $r0) / 3")
log "Redis idle: $REDIS_IDLE cores"
for rtt in "${RTTS[@]}"; do BROKERS+=("plugin-rtt$rtt"); done

# ---------------------------------------------------------- connect rate
connect_run() { # BROKER ROUND
	local b=$1 c0 r0 ok watch=(--watch-pid "$REDIS_PID")
	for p in "${PROXY_PID[@]}"; do watch+=(--watch-pid "$p"); done
	c0=$(redis_cpu_s); r0=$(redis_calls); cmdstats > "$T/ccmd0"
	local -A p0; for r in "${RTTS[@]}"; do p0[$r]=$(cpu_s "${PROXY_PID[$r]}"); done
	timeout 180 "$B/connect_rate" --port "${BPORT[$b]}" --cafile "$PKI/ca-bundle.pem" --certdir "$T/ids" \
		--prefix cap --width 3 --devices "$DEVICES" -n "$CONNECTS" -c "$CONC" --broker-pid "${BPID[$b]}" \
		"${watch[@]}" --label "$b" --json > "$RES/cap.tmp" 2> "$T/cap.err" || true
	ok=$(jq -r '.succeeded // 0' "$RES/cap.tmp" 2>/dev/null || echo 0)
	[ "$ok" -gt 0 ] || { echo "connect_rate failed ($b)"; cat "$RES/cap.tmp" "$T/cap.err"; exit 1; }
	local proxy=0 cmds
	for r in "${RTTS[@]}"; do proxy=$(calc %.3f "$proxy + $(cpu_s "${PROXY_PID[$r]}") - ${p0[$r]}"); done
	# Redis commands per connect by name (every broker's, idle ones included)
	cmdstats > "$T/ccmd1"
	cmds=$(join -a2 -e0 -o 0,1.2,1.3,2.2,2.3 "$T/ccmd0" "$T/ccmd1" | awk -v n="$ok" '
		{ c = ($4 - $2) / n; u = ($5 - $3) / n; if(c > 0) printf "%s{\"cmd\":\"%s\",\"calls\":%.3f,\"usec\":%.2f}", (k++ ? "," : ""), $1, c, u }')
	jq -c --argjson round "$2" --arg rtt "${RTT_SEEN[$b]:-}" --arg load "$(cut -d' ' -f1 /proc/loadavg)" \
		--argjson cmds "[$cmds]" \
		--argjson rcpu "$(calc %.4f "($(redis_cpu_s) - $c0 - $REDIS_IDLE * $(jq -r .wall_s "$RES/cap.tmp")) * 1000 / $ok")" \
		--argjson rcalls "$(calc %.3f "($(redis_calls) - $r0) / $ok")" \
		--argjson pcpu "$(calc %.4f "$proxy * 1000 / $ok")" \
		'. + {kind: "connect", round: $round, redis_rtt_ms: $rtt, load1: $load, redis_cpu_ms_per_connect: $rcpu,
		      redis_calls_per_connect: $rcalls, proxy_cpu_ms_per_connect: $pcpu, commands: $cmds}' "$RES/cap.tmp" >> "$J"
	log "connect $b: $(jq -r '"\(.connects_per_s)/s, p50 \(.p50_ms) ms, broker \(.broker_cpu_ms_per_connect) ms/connect, Redis \(.redis_cpu_ms_per_connect) ms/connect, other CPU \(.foreign_cpu)"' <<<"$(tail -1 "$J")")"
}
ROUNDS_DONE=0
for round in $(seq 1 $ROUNDS); do
	if [ "$round" -gt 1 ] && over_budget 200; then log "connect: budget reached after $((round - 1)) rounds"; break; fi
	# rotate the order so that drift in the machine's load hits every broker
	n=${#BROKERS[@]}
	for k in $(seq 0 $((n - 1))); do connect_run "${BROKERS[$(( (k + round - 1) % n ))]}" "$round"; done
	ROUNDS_DONE=$round
done

# ---------------------------------------------------------- provisioning
# One claimsvc on the plugin broker with Redis on loopback; the same devsim
# as run.sh (shared claim certificate, template default, allowlist first).
# The brokers behind the proxies stop first: each broker's event watcher
# costs Redis a wake-up per registry event, and the model counts one broker.
for rtt in "${RTTS[@]}"; do
	kill "${BPID[plugin-rtt$rtt]}" "${PROXY_PID[$rtt]}"; wait "${BPID[plugin-rtt$rtt]}" "${PROXY_PID[$rtt]}" 2>/dev/null || true
done
r0=$(redis_cpu_s); sleep 3; REDIS_IDLE_CONNECT=$REDIS_IDLE; REDIS_IDLE=$(calc %.6f "($(redis_cpu_s) - $r0) / 3")
log "Redis idle with two brokers: $REDIS_IDLE cores"
declare -A CS_BIN=([current]=$CLAIMSVC)
[ -z "$COMPARE" ] || CS_BIN[compare]=$COMPARE
new_device claimsvc-1 service-ca
new_device claim-batch claim-ca
mkdir -p "$T/templates"
cp "$ROOT"/config/templates/*.json "$T/templates/"
cat > "$T/claimsvc-1.conf" <<CONF
broker_host 127.0.0.1
broker_port ${BPORT[plugin]}
cafile $PKI/ca-bundle.pem
certfile $T/claimsvc-1.pem
keyfile $T/claimsvc-1.key
device_ca_cert $PKI/device-ca.pem
device_ca_key $PKI/device-ca.key
redis_url redis://127.0.0.1:$REDIS_PORT/0
templates_dir $T/templates
CONF
start_cs() { # LABEL: one claimsvc (CS_BIN[LABEL]); sets CS_PID
	local n; n=$(grep -c "serving" "$T/claimsvc-1.log" 2>/dev/null) || n=0
	"${CS_BIN[$1]}" -c "$T/claimsvc-1.conf" >> "$T/claimsvc-1.log" 2>&1 &
	CS_PID=$!
	BG_PIDS+=("$!")
	serving_more() { [ "$(grep -c "serving" "$T/claimsvc-1.log")" -gt "$1" ]; }
	wait_for 30 serving_more "$n" || { echo "claimsvc ($1) did not start"; cat "$T/claimsvc-1.log"; exit 1; }
}
stop_cs() { kill "$CS_PID"; wait "$CS_PID" 2>/dev/null || true; }
prov_run() { # ROUND LABEL
	local prefix wall t0 t1 ok n m0 u0 u1 s0 s1
	local -A c0
	PROV_SEQ=$((PROV_SEQ + 1)); printf -v prefix 'CP%02d' "$PROV_SEQ"
	awk -v p="$prefix" -v n="$PROV_N" 'BEGIN { print "serial,birth_fp,batch"; for(i = 0; i < n; i++) printf "%s%04d,,cap\n", p, i }' > "$T/allow-$prefix.csv"
	"$ONBOARDCTL" allowlist import "$T/allow-$prefix.csv" >/dev/null
	cmdstats > "$T/cmd0"
	for p in broker:"${BPID[plugin]}" claimsvc:"$CS_PID"; do c0[${p%%:*}]=$(cpu_s "${p#*:}"); done
	c0[redis]=$(redis_cpu_s)
	u0=$(calc %.3f "$(usr_s "${BPID[plugin]}") + $(usr_s "$CS_PID") + $(usr_s "$REDIS_PID")")
	m0=$(busy_s); t0=$(date +%s.%N)
	local TIMEFORMAT=%U
	{ time timeout 300 "$DEVSIM" --port "${BPORT[plugin]}" --cafile "$PKI/ca-bundle.pem" \
		--claim-cert "$T/claim-batch.pem" --claim-key "$T/claim-batch.key" \
		--serial-prefix "$prefix" -n "$PROV_N" -c "$CONC" --quiet --json > "$RES/cap-prov.tmp" 2> "$T/devsim.err" || true; } 2> "$T/devsim.time"
	t1=$(date +%s.%N)
	u1=$(calc %.3f "$(usr_s "${BPID[plugin]}") + $(usr_s "$CS_PID") + $(usr_s "$REDIS_PID")")
	cmdstats > "$T/cmd1"
	ok=$(jq -r '.succeeded // 0' "$RES/cap-prov.tmp" 2>/dev/null || echo 0)
	[ "$ok" -gt 0 ] || { echo "devsim failed"; cat "$RES/cap-prov.tmp" "$T/devsim.err"; exit 1; }
	n=$ok; wall=$(calc %.3f "$t1 - $t0")
	# Redis commands per provisioning by name: calls and server-side us
	local cmds
	cmds=$(join -a2 -e0 -o 0,1.2,1.3,2.2,2.3 "$T/cmd0" "$T/cmd1" | awk -v n="$n" '
		{ c = ($4 - $2) / n; u = ($5 - $3) / n; if(c > 0) printf "%s{\"cmd\":\"%s\",\"calls\":%.3f,\"usec\":%.2f}", (k++ ? "," : ""), $1, c, u }')
	jq -c --argjson round "$1" --arg load "$(cut -d' ' -f1 /proc/loadavg)" --argjson cmds "[$cmds]" \
		--argjson broker "$(calc %.4f "($(cpu_s "${BPID[plugin]}") - ${c0[broker]}) * 1000 / $n")" \
		--argjson claimsvc "$(calc %.4f "($(cpu_s "$CS_PID") - ${c0[claimsvc]}) * 1000 / $n")" \
		--argjson redis "$(calc %.4f "($(redis_cpu_s) - ${c0[redis]} - $REDIS_IDLE * $wall) * 1000 / $n")" \
		--argjson devsim "$(calc %.4f "$(jq -r .cpu_s "$RES/cap-prov.tmp") * 1000 / $n")" \
		--argjson foreign "$(calc %.3f "($(busy_s) - $m0 - ($u1 - $u0) - $(tail -1 "$T/devsim.time")) / $wall")" \
		--arg lbl "$2" '{kind: "provision", "label": $lbl, round: $round, load1: $load, devices: .devices, succeeded: .succeeded, failed: .failed,
		  per_s: .provisionings_per_s, p50_ms: .phases.total.p50_ms, p99_ms: .phases.total.p99_ms,
		  cpu_ms: {broker: $broker, claimsvc: $claimsvc, redis: $redis, devsim: $devsim},
		  redis_calls: ([$cmds[].calls] | add), redis_usec: ([$cmds[].usec] | add), commands: $cmds,
		  failures: .failures, foreign_cpu: $foreign}' "$RES/cap-prov.tmp" >> "$J"
	log "provisioning round $1 ($2): $(jq -r '"\(.per_s | . * 10 | round / 10)/s, \(.succeeded)/\(.devices) ok; CPU ms broker \(.cpu_ms.broker) claimsvc \(.cpu_ms.claimsvc) Redis \(.cpu_ms.redis); Redis calls \(.redis_calls); other CPU \(.foreign_cpu)"' <<<"$(tail -1 "$J")")"
}
PROV_DONE=0
PROV_SEQ=0
LABELS=(current); [ -z "$COMPARE" ] || LABELS+=(compare)
for round in $(seq 1 $ROUNDS); do
	if [ "$round" -gt 1 ] && over_budget $((90 * ${#LABELS[@]})); then log "provisioning: budget reached after $((round - 1)) rounds"; break; fi
	n=${#LABELS[@]}
	for k in $(seq 0 $((n - 1))); do
		label=${LABELS[$(( (k + round - 1) % n ))]}
		start_cs "$label"
		prov_run "$round" "$label"
		stop_cs
	done
	PROV_DONE=$round
done

# ---------------------------------------------------------------- report
# med KIND LABEL EXPR: median over the runs of LABEL (provision: label "")
med() { jq -rs --arg k "$1" --arg l "$2" "[.[] | select(.kind == \$k and ((.label // \"\") == \$l)) | $3] | sort | if length == 0 then \"\" else .[(length - 1) / 2 | floor] end" "$J"; }
mx() { jq -rs --arg k "$1" "[.[] | select(.kind == \$k) | $2] | max" "$J"; }
r3() { awk -v a="$1" 'BEGIN { if(a == "") print "n/a"; else printf "%.3f", a }'; }
r0() { awk -v a="$1" 'BEGIN { if(a == "") print "n/a"; else printf "%.0f", a }'; }
declare -A M
for b in "${BROKERS[@]}"; do
	M[$b.rate]=$(med connect "$b" .connects_per_s); M[$b.p50]=$(med connect "$b" .p50_ms); M[$b.p99]=$(med connect "$b" .p99_ms)
	M[$b.bcpu]=$(med connect "$b" .broker_cpu_ms_per_connect); M[$b.ccpu]=$(med connect "$b" .client_cpu_ms_per_connect)
	M[$b.rcpu]=$(med connect "$b" .redis_cpu_ms_per_connect); M[$b.rcalls]=$(med connect "$b" .redis_calls_per_connect)
	M[$b.pcpu]=$(med connect "$b" .proxy_cpu_ms_per_connect); M[$b.refused]=$(jq -rs --arg l "$b" '[.[] | select(.label == $l) | .refused + .timeouts + .errors] | add' "$J")
done
# connects/s behind the proxy over loopback, per round, then the median
rate_ratio() { jq -rs --arg l "$1" '[group_by(.round)[] | (map(select(.label == $l))[0].connects_per_s) / (map(select(.label == "plugin"))[0].connects_per_s)] | sort | .[(length - 1) / 2 | floor] * 1000 | round / 1000' \
	<(jq -c 'select(.kind == "connect")' "$J"); }
for rtt in "${RTTS[@]}"; do M[plugin-rtt$rtt.ratio]=$(rate_ratio "plugin-rtt$rtt"); done
M[c_foreign]=$(mx connect .foreign_cpu)
PB=$(med provision current .cpu_ms.broker); PC=$(med provision current .cpu_ms.claimsvc); PR=$(med provision current .cpu_ms.redis)
PD=$(med provision current .cpu_ms.devsim); PRATE=$(med provision current .per_s); PCALLS=$(med provision current .redis_calls)
PUSEC=$(med provision current .redis_usec); P_FOREIGN=$(mx provision .foreign_cpu)
PFAIL=$(jq -rs '[.[] | select(.kind == "provision" and .label == "current") | .failed] | add' "$J")
CB=${M[plugin.bcpu]}; CBASE=${M[baseline.bcpu]}; CR=${M[plugin.rcpu]}
RATIO=$(calc %.3f "($PB + $PC + $PR) / (2 * $CBASE)")
RATIO_BROKER=$(calc %.3f "$PB / (2 * $CBASE)")
CS_REDIS=$(calc %.3f "$PR - 2 * $CR")
# the last round's per-command table (calls and server-side us per provisioning)
CMD_TABLE=$(jq -rs '[.[] | select(.kind == "provision" and .label == "current")] | last | .commands | sort_by(-.usec)[] | "| `\(.cmd)` | \(.calls * 100 | round / 100) | \(.usec * 10 | round / 10) |"' "$J")
mix_rows() {
	local m x y
	for m in "${MIXES[@]}"; do
		x=${m%%:*}; y=${m#*:}
		awk -v x="$x" -v y="$y" -v cb="$CB" -v pb="$PB" -v pc="$PC" -v cr="$CR" -v pr="$PR" 'BEGIN {
			b = (x * cb + y * pb) / 1000; c = y * pc / 1000; r = (x * cr + y * pr) / 1000
			printf "| %d | %d | %.2f | %.2f | %.2f | %s |\n", x, y, b, c, r, (r <= 1 ? "yes" : "**no**: " sprintf("%.1f", r) " cores") }'
	done
}
R_MAX_C=$(calc %.0f "1000 / $CR"); R_MAX_P=$(calc %.0f "1000 / $PR")
R_MAX_C_MAIN=""
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
[ -z "$(git -C "$ROOT" status --porcelain 2>/dev/null | sed -n 1p)" ] || REV="$REV + uncommitted changes"
MOSQ=$( ("$MOSQUITTO_BIN" -h 2>&1 || true) | sed -n 's/.*mosquitto version \([0-9][0-9.]*\).*/\1/p' | sed -n 1p)
# Valkey reports a redis_version too: name it by its own when it has one
REDISV=$(rcli info server | tr -d '\r' | awk -F: '/^valkey_version:/ { v = "Valkey " $2 } /^redis_version:/ { r = "Redis " $2 } END { print (v != "" ? v : r) }')
MACHINE="$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(. /etc/os-release && echo "$PRETTY_NAME"), Linux $(uname -r)"
HEAD_NOTE="Generated by \`$CMDLINE\` on $(date -u '+%Y-%m-%d %H:%M UTC') in $(( $(date +%s) - T0 )) s; code at $REV.
Machine: $MACHINE; Mosquitto $MOSQ, $REDISV, OpenSSL $(openssl version | cut -d' ' -f2).
Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."

# before/after of --compare-claimsvc: medians per label, and the median of
# the per-round ratios current / compare (same run, same devsim, alternating)
compare_section() {
	[ -n "$COMPARE" ] || return 0
	local l name
	cat <<EOT

## This claimsvc against another, same run

Every provisioning round ran once with this tree's claimsvc ("current") and
once with \`$COMPARE\` ("compare"${COMPARE_NAME:+: $COMPARE_NAME}), in alternating order, the
same broker, Redis and devsim; medians over $PROV_DONE rounds each.

| claimsvc | provisionings/s | Redis CPU ms | Redis commands | of which HGET / XADD / EVALSHA | claimsvc CPU ms | broker CPU ms | failed | other CPU (max) |
|---|---|---|---|---|---|---|---|---|
EOT
	for l in current compare; do
		jq -rs --arg l "$l" '[.[] | select(.kind == "provision" and .label == $l)] as $r
			| def med(f): [$r[] | f] | sort | .[(length - 1) / 2 | floor];
			  def cmd(c): med([.commands[] | select(.cmd == c) | .calls] | add // 0) * 100 | round / 100;
			"| \($l) | \(med(.per_s) | round) | \(med(.cpu_ms.redis)) | \(med(.redis_calls) * 10 | round / 10) | \(cmd("hget")) / \(cmd("xadd")) / \(cmd("evalsha")) | \(med(.cpu_ms.claimsvc)) | \(med(.cpu_ms.broker)) | \([$r[].failed] | add) | \([$r[].foreign_cpu] | max) |"' "$J"
	done
	jq -rs '[.[] | select(.kind == "provision")] | group_by(.round) | map(select(length == 2))
		| def ratio(f): map((map(select(.label == "current"))[0] | f) / (map(select(.label == "compare"))[0] | f)) | sort | .[(length - 1) / 2 | floor] * 1000 | round / 1000;
		"\ncurrent / compare, median of the per-round ratios: Redis CPU per provisioning \(ratio(.cpu_ms.redis)), Redis commands \(ratio(.redis_calls)), claimsvc CPU \(ratio(.cpu_ms.claimsvc))."' "$J"
}
# deny_reasons: the plugin's refusals in each broker's log ("connect deny
# ... reason=R"), e.g. "plugin-rtt1: registry-unavailable x64"
deny_reasons() {
	local b out=""
	for b in "${BROKERS[@]}"; do
		[ "$b" != baseline ] || continue
		out+=$(awk -v b="$b" '/connect deny/ && match($0, /reason=[A-Za-z-]*/) { c[substr($0, RSTART + 7, RLENGTH - 7)]++ }
			END { for(k in c) printf "%s%s: %s x%d", (n++ ? "; " : "; "), b, k, c[k] }' "$T/$b.log")
	done
	echo "${out#; }"
}
connect_table() {
	echo "| broker | Redis round trip (redis-cli --latency, ms) | connects/s (median of $ROUNDS_DONE) | vs plugin, loopback (same round) | p50 / p99 ms | broker CPU ms/connect | Redis CPU ms/connect | Redis commands/connect | proxy CPU ms/connect | failed connects |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	for b in "${BROKERS[@]}"; do
		local rtt=${RTT_SEEN[$b]:-}; [ "$b" = baseline ] && rtt="- (no plugin)"
		local ratio=-; [[ $b == plugin-rtt* ]] && ratio=${M[$b.ratio]}; [ "$b" = plugin ] && ratio=1
		local rc="${M[$b.rcpu]}" calls="${M[$b.rcalls]}"; [ "$b" = baseline ] && { rc=-; calls=-; }
		echo "| $b | $rtt | $(r0 "${M[$b.rate]}") | $ratio | ${M[$b.p50]} / ${M[$b.p99]} | ${M[$b.bcpu]} | $rc | $calls | ${M[$b.pcpu]} | ${M[$b.refused]} |"
	done
	local why; why=$(deny_reasons)
	echo
	echo "Connects the plugin refused, by the reason in each broker's log (the whole run): ${why:-none}."
}

{
cat <<EOF
# Scaling: a capacity model from measurements

$HEAD_NOTE
Do not edit above the line that says so at the end: the next run rewrites it.

Everything here comes from one run of \`tests/bench/capacity.sh\` on one
machine: Redis, the brokers, claimsvc and the load generators share its
$(nproc) cores, and so does whatever else ran on it ("other CPU": cores used by
processes outside the benchmark, at most $(r3 "${M[c_foreign]}") during the
connect runs and $(r3 "$P_FOREIGN") during the provisioning runs). CPU figures
(per connect, per provisioning) are the least sensitive to that; rates are
the most. Every broker runs the shipped \`config/mosquitto.conf\` (TLS 1.2 or
later, so clients get 1.3), the baseline without the plugin lines
(\`allow_anonymous true\`); all are started alike (no debugging malloc).
The plugin's per-certificate request budget is lifted
(\`plugin_opt_request_cert_rate 0\`): every simulated device shares one claim
certificate, and rounds of $PROV_N back to back would otherwise be refused.

## Measured CPU per operation (medians)

| part | per mTLS connect, ms | per provisioning, ms |
|---|---|---|
| broker with the plugin | $CB | $PB |
| broker without the plugin (baseline) | $CBASE | (two connects: $(calc %.3f "2 * $CBASE")) |
| claimsvc | - | $PC |
| Redis (whole process) | $CR | $PR |
| client (connect_rate / devsim) | ${M[plugin.ccpu]} | $PD |

- Connects: $ROUNDS_DONE rounds of $CONNECTS connects, $CONC in flight, $DEVICES
  registered devices, full TLS handshakes (P-256, no resumption), CONNECT ->
  CONNACK -> DISCONNECT.
- Provisionings: $PROV_DONE runs of \`devsim -n $PROV_N -c $CONC\` (shared claim
  certificate, template \`default\`, allowlisted serials), each a claim
  connect, CreateCertificateFromCsr, RegisterThing, an operational connect
  and one publish; median $(r0 "$PRATE")/s, p50 $(med provision current .p50_ms) ms; failed devices,
  all runs: $PFAIL. Redis per provisioning: $(calc %.1f "$PCALLS") commands
  (those inside scripts included; table below).
- Redis CPU figures leave out what Redis used while idle (its cron, the
  brokers' blocking reads of the event stream), measured for 3 s before
  each phase: $(calc %.4f "$REDIS_IDLE_CONNECT") cores with the four brokers of the connect
  runs, $(calc %.4f "$REDIS_IDLE") with the two of the provisioning runs (the
  baseline has no watcher; the brokers behind the proxies are stopped
  first, so that one broker's watcher wakes per registry event).
- Redis per provisioning that is not the two connects' share (provisioning
  minus 2 x connect): $CS_REDIS ms (claimsvc's calls, the event watchers,
  the audit).

**Server-side CPU per provisioning (broker + claimsvc + Redis) / the
no-plugin broker's CPU for the same two mTLS connects: $RATIO** (goal
<= 1.3); the broker alone: $RATIO_BROKER.

Redis commands per provisioning, last run (every client: claimsvc, the
plugin's two connects, the brokers' event watchers; \`INFO commandstats\`
counts the commands a script runs as well as the script, and a script's
time includes theirs, so the column does not add up to Redis's time):

| command | calls | server-side us |
|---|---|---|
$CMD_TABLE

$(compare_section)

## Cores for a load

Cores = rate x CPU per operation (the table above); brokers are one thread
each, so the broker column is also the least number of broker processes
(round up, and leave headroom). Redis's command processing is one thread:
one primary stops being enough when its column reaches 1 core (the figure
counts the whole process, AOF included, so it errs on the safe side).

| connects/s | provisionings/s | broker cores | claimsvc cores | Redis cores | one Redis primary enough |
|---|---|---|---|---|---|
$(mix_rows)

One Redis core alone: about $R_MAX_C connects/s (no provisioning), or about
$R_MAX_P provisionings/s (no other connects).

## Redis across a network

$(connect_table)

The proxy (\`tests/tools/delayproxy\`) holds each chunk for half the round
trip in each direction; its CPU is on the same cores. A broker's CPU per
connect hardly changes with the round trip; its rate falls because it waits
for Redis on its only thread.

<!-- capacity.sh: everything above this line is generated; everything below is kept -->
EOF
if [ -f "$OUT" ] && grep -q '^<!-- capacity.sh: everything above' "$OUT"; then
	sed '1,/^<!-- capacity.sh: everything above/d' "$OUT"
fi
} > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"

if [ -n "$PERF" ] && [ -f "$PERF" ]; then
	{
		awk '/^<!-- capacity.sh: begin -->/ { skip = 1 } !skip { print } /^<!-- capacity.sh: end -->/ { skip = 0 }' "$PERF" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
		cat <<EOF

<!-- capacity.sh: begin -->
## Connect rate with Redis across a network (capacity.sh)

$HEAD_NOTE
The same broker configuration with the plugin, Redis on loopback and
behind \`tests/tools/delayproxy\`; the same run, rounds rotating the order.
Other CPU during these runs: at most $(r3 "${M[c_foreign]}") cores. The capacity model
built on this run is docs/scaling.md.

$(connect_table)
<!-- capacity.sh: end -->
EOF
	} > "$PERF.tmp"
	mv "$PERF.tmp" "$PERF"
fi
log "done: $OUT${PERF:+, $PERF}; results $J"

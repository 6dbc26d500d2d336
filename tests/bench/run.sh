#!/usr/bin/env bash
# The benchmark suite (issue 8): one command runs every benchmark on loopback
# and writes docs/performance.md. Every figure with a goal is a ratio against
# a baseline measured in this same run, on this machine.
#
#   tests/bench/run.sh [BUILD_DIR] [--quick] [--only LIST] [--out FILE] [--no-profile]
#
#   BUILD_DIR     a configured and built tree (default: <repo>/build); needs
#                 onboardctl, the plugin, claimsvc, devsim and tests/bench/*
#   --quick       fewer rounds and smaller runs (a smoke test of the suite)
#   --only LIST   comma-separated subset of: throughput,connect,acl,provision,
#                 latency,scale,profile (the report then holds only those)
#   --out FILE    where the Markdown goes (default: docs/performance.md);
#                 raw results go to BUILD_DIR/bench-results/ (replaced by
#                 every run); what follows the "everything below is kept"
#                 line of FILE is kept
#   --no-profile  skip the callgrind profiles (about 2.5 minutes)
#
# Needs redis-server, mosquitto, jq; valgrind for instruction counts and
# profiles. Everything listens on 127.0.0.1 on free ports, in a temp dir that
# is removed at exit; every step is bounded by `timeout`. The whole suite
# takes 9-12 minutes on 2 cores (less when the machine is quiet: noisy
# measurements are repeated) and stops repeating at a 14-minute budget
# (--quick: about 4 minutes).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build
QUICK=0
ONLY=all
OUT=$ROOT/docs/performance.md
PROFILE=1
CMDLINE="tests/bench/run.sh $*"

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--only) ONLY=${2:?--only needs a list}; shift ;;
	--out) OUT=${2:?--out needs a file}; shift ;;
	--no-profile) PROFILE=0 ;;
	-h|--help) usage 0 ;;
	-*) echo "run.sh: unknown option $1" >&2; usage 2 >&2 ;;
	*) BUILD=$(cd "$1" && pwd) ;;
	esac
	shift
done
want() { [ "$ONLY" = all ] || [[ ",$ONLY," == *",$1,"* ]]; }
for tool in jq redis-server redis-cli mosquitto; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 2; }
done
for f in cli/onboardctl plugin/mosquitto_onboard.so claimsvc/claimsvc tests/devsim/devsim \
		tests/tools/freeport tests/bench/mqtt_load tests/bench/connect_rate \
		tests/bench/policy_latency tests/bench/acl_bench tests/bench/revoke_latency; do
	[ -e "$BUILD/$f" ] || { echo "run.sh: $BUILD/$f is missing: build first (cmake --build $BUILD, or only what the suite needs: --target onboardctl mosquitto_onboard claimsvc devsim freeport mqtt_load connect_rate policy_latency acl_bench revoke_latency)" >&2; exit 2; }
done
HAVE_VALGRIND=0
command -v valgrind >/dev/null && HAVE_VALGRIND=1

# Sizes: full run / --quick.
if [ $QUICK = 1 ]; then
	ROUNDS=1; TP_SECONDS=3; CONNECTS=600; PROV_N=400; SCALE_N=100000; LAT_N=20; REVOKE_N=20
else
	ROUNDS=3; TP_SECONDS=5; CONNECTS=2000; PROV_N=2000; SCALE_N=1000000; LAT_N=40; REVOKE_N=50
fi
CONC=50           # connects in flight (connect rate) and devsim -c
# A measurement during which other processes on the machine (not the
# benchmark's own) used more than this many cores is repeated, within the
# suite's time budget.
FOREIGN_MAX=0.25
BUDGET_S=840
PUBS=100; SUBS=10 # throughput: publishers -> subscribers

export ONB_SOURCE_DIR=$ROOT ONB_BUILD_DIR=$BUILD
# shellcheck source=../integration/harness.sh
source "$ROOT/tests/integration/harness.sh"
# The harness runs the broker under test with glibc's checking malloc
# (MALLOC_CHECK_, MALLOC_PERTURB_, libc_malloc_debug.so) to catch heap
# errors; the baseline broker (start_plain) runs without it. Measure both
# alike: the plain allocator (sanitizer builds keep their runtimes).
grep -q '^ONB_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null || BROKER_ENV=()
B=$BUILD/tests/bench
RES=$BUILD/bench-results
rm -rf "$RES"
mkdir -p "$RES" "$T/ids"
SUITE_T0=$(date +%s)

log() { printf '[%s +%3ss] %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - SUITE_T0 ))" "$*" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }
# cpu_s PID: user+system CPU seconds of a process so far.
cpu_s() { sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13) / hz }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
spread() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f-%.0f", lo, hi }'; }
# busy_s: user (+nice) and steal CPU seconds of the whole machine so far;
# usr_s PID: user CPU seconds of one process. "Other CPU" is computed from
# user time only: the kernel charges loopback softirq work to whichever
# process it interrupts, so system time cannot be split fairly.
busy_s() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2 + $3 + $9) / hz; exit }' /proc/stat; }
usr_s() { sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", $12 / hz }'; }
# sched PID: "on-CPU-seconds runqueue-wait-seconds" of a process so far.
sched() { awk '{ printf "%.3f %.3f", $1 / 1e9, $2 / 1e9 }' "/proc/$1/schedstat"; }
elapsed() { echo $(( $(date +%s) - SUITE_T0 )); }
# over_budget SECONDS: true when starting something that long, plus the
# least the phases still to come need (RESERVE), would end the suite past its
# time budget (BUDGET_S). Repeats of noisy measurements give way first.
over_budget() { [ $(( $(elapsed) + $1 + RESERVE )) -gt "$BUDGET_S" ]; }
# phase NAME: sets RESERVE to what the wanted phases after NAME need at least.
PHASES=(throughput connect acl profile provision latency scale)
declare -A PHASE_S=([throughput]=140 [connect]=80 [acl]=20 [profile]=200 [provision]=90 [latency]=15 [scale]=60)
RESERVE=0
phase() {
	local p after=0
	RESERVE=0
	for p in "${PHASES[@]}"; do
		if [ $after = 1 ] && want "$p"; then RESERVE=$((RESERVE + PHASE_S[$p])); fi
		[ "$p" != "$1" ] || after=1
	done
}
redis_calls() { rcli info commandstats | awk -F'[=,]' '/^cmdstat_/ { s += $2 } END { print s + 0 }'; }
# jf FILE EXPR: one value from a JSON file.
jf() { jq -r "$2" "$1"; }

# The plugin broker runs the shipped config/mosquitto.conf, as the demo does
# (root instead of the mosquitto user, in a test only); the baseline broker
# is the same file without the plugin lines and with allow_anonymous true
# (no auth plugin, no password file: mosquitto refuses anonymous clients
# otherwise), i.e. the same listener, TLS files, require_certificate, TLS
# version, tcp_nodelay and logging.
#
# One line is added to both: max_queued_messages 100000 (default 1000).
# Mosquitto 2.0.11 reads one packet per connection per loop iteration, so a
# QoS 1 subscriber fed by 100 publishers has its PUBACKs read far more slowly
# than its messages are sent; with the default the broker soon logs
# "Outgoing messages are being dropped" and the closed loop stalls (measured
# with and without the plugin alike).
#
# And tls_version tlsv1.3 (TLS 1.3 only, the shipped default) becomes
# tlsv1.2, which Mosquitto reads as "1.2 or later": clients that offer 1.3
# still get it (every run records the version negotiated), and the TLS phase
# can measure TLS 1.2 clients against the same broker.
shipped_conf() { # PORT LOGFILE
	sed -e "s#@PORT@#$1#; s#@PKI@#$PKI#g; s#@PLUGIN@#$PLUGIN#" \
		-e "s#@REDIS_URL@#redis://127.0.0.1:$REDIS_PORT/0#; s#@LOG@#$2#; s#^user mosquitto#user root#" \
		-e "s#^tls_version tlsv1.3#tls_version tlsv1.2#" \
		"$ROOT/config/mosquitto.conf"
	echo "max_queued_messages 100000"
}
write_broker_conf() { shipped_conf "$MQTT_PORT" "$T/mosquitto.log" > "$T/mosquitto.conf"; }
PLAIN_PID=""
start_plain() {
	PLAIN_PORT=${PLAIN_PORT:-$(freeport)}
	shipped_conf "$PLAIN_PORT" "$T/plain.log" | grep -v '^plugin' \
		| sed 's/^allow_anonymous false/allow_anonymous true/' > "$T/plain.conf"
	mosquitto -c "$T/plain.conf" &
	PLAIN_PID=$!
	BG_PIDS+=("$PLAIN_PID")
	wait_for 10 grep -q "mosquitto version .* running" "$T/plain.log" \
		|| { echo "baseline broker did not start"; cat "$T/plain.log"; exit 1; }
}

# claimsvc instances (start_claimsvc of the harness waits for a debug line
# that the shipped logging does not print).
CS_PIDS=()
CS_WRAP=() # e.g. valgrind and its options
start_cs() { # NAME
	local name=$1
	[ -f "$T/$name.pem" ] || new_device "$name" service-ca
	mkdir -p "$T/templates"
	cp "$ROOT"/config/templates/*.json "$T/templates/"
	cat > "$T/$name.conf" <<CONF
broker_host 127.0.0.1
broker_port $MQTT_PORT
cafile $PKI/ca-bundle.pem
certfile $T/$name.pem
keyfile $T/$name.key
device_ca_cert $PKI/device-ca.pem
device_ca_key $PKI/device-ca.key
redis_url redis://127.0.0.1:$REDIS_PORT/0
templates_dir $T/templates
CONF
	: > "$T/$name.log"
	"${CS_WRAP[@]}" "$CLAIMSVC" -c "$T/$name.conf" >> "$T/$name.log" 2>&1 &
	CS_PIDS+=($!)
	BG_PIDS+=($!)
	wait_for 90 grep -q "serving" "$T/$name.log" || { echo "claimsvc $name did not start"; cat "$T/$name.log"; exit 1; }
}
stop_cs() {
	local p
	for p in "${CS_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	CS_PIDS=()
}

# ident ID [--tenant T] [--policy P]: a device certificate in $T/ids, bound
# to an active device.
ident() {
	local id=$1; shift
	local tenant="" policy=""
	while [ $# -gt 0 ]; do
		case $1 in --tenant) tenant=$2 ;; --policy) policy=$2 ;; esac
		shift 2
	done
	"$ONBOARDCTL" pki issue --ca "$PKI/device-ca" --cn "$id" --out "$T/ids/$id" >/dev/null
	"$ONBOARDCTL" device register --id "$id" --cert "$T/ids/$id.pem" --state active \
		${tenant:+--tenant "$tenant"} >/dev/null
	[ -z "$policy" ] || "$ONBOARDCTL" policy assign "$id" "$policy" >/dev/null
}

# --------------------------------------------------------------- results
declare -A R   # figures for the report
R[load_start]=$(cut -d" " -f1-3 /proc/loadavg)

# ------------------------------------------------------------------ setup
log "setup: PKI, Redis, broker with the plugin, baseline broker"
up
start_plain
"$ONBOARDCTL" policy put bench-subscriber "$ROOT/tests/bench/policies/bench-subscriber.json" >/dev/null
ident_all() {
	local i id
	for i in $(seq 0 $((PUBS - 1))); do
		printf -v id 'pub%03d' "$i"; ident "$id" --tenant bench
	done
	for i in $(seq 0 $((SUBS - 1))); do
		printf -v id 'sub%03d' "$i"; ident "$id" --tenant bench --policy bench-subscriber
	done
}
if want throughput || want connect || want profile || want provision; then
	log "setup: $PUBS publisher and $SUBS subscriber identities"
	ident_all
fi

# ------------------------------------------------------- pairs of runs
# run_pairs KIND FUNC N MAXPAIRS: runs FUNC plugin PAIR and FUNC baseline
# PAIR (alternating which goes first, so that drift in the machine's load
# hits both) until N pairs ran with at most FOREIGN_MAX cores of other CPU,
# MAXPAIRS pairs ran, or the time budget is used up. FUNC appends one JSON
# line per run (with .pair and .foreign_cpu) to $RES/KIND.jsonl; the pairs
# that count are listed in $RES/KIND.clean (all of them if none was clean).
run_pairs() {
	local kind=$1 fn=$2 n=$3 max=$4 pair=0 clean=0 f
	: > "$RES/$kind.clean"
	while [ $clean -lt "$n" ] && [ $pair -lt "$max" ]; do
		[ $pair -lt "$n" ] || ! over_budget 60 || { log "$kind: time budget reached, no more repeats"; break; }
		pair=$((pair + 1))
		log "$kind: pair $pair ($clean/$n clean so far)"
		if [ $((pair % 2)) = 1 ]; then "$fn" plugin $pair; "$fn" baseline $pair
		else "$fn" baseline $pair; "$fn" plugin $pair; fi
		f=$(jq -rs "[.[] | select(.pair == $pair) | .foreign_cpu] | max" "$RES/$kind.jsonl")
		if awk -v f="$f" -v m="$FOREIGN_MAX" 'BEGIN { exit !(f <= m) }'; then
			clean=$((clean + 1)); echo $pair >> "$RES/$kind.clean"
		else
			log "$kind: pair $pair had $f cores of other CPU on the machine: not counted"
		fi
	done
	R[${kind}_pairs]=$pair; R[${kind}_clean]=$clean
	[ $clean -gt 0 ] || seq 1 $pair > "$RES/$kind.clean"
}
# pick KIND: the JSON lines of the counted pairs, as one array.
pick() {
	jq -s --argjson ok "[$(paste -sd, "$RES/$1.clean")]" '[.[] | select(.pair as $p | $ok | index($p))]' "$RES/$1.jsonl"
}
# med KIND LABEL EXPR: median of EXPR over the counted runs of LABEL.
med() { pick "$1" | jq -r --arg l "$2" "[.[] | select(.label == \$l) | $3] | sort | if length == 0 then \"\" else .[(length - 1) / 2 | floor] end"; }
# range KIND LABEL EXPR: "min-max" of EXPR.
range() { pick "$1" | jq -r --arg l "$2" "[.[] | select(.label == \$l) | $3] | sort | \"\(.[0] | round)-\(.[-1] | round)\""; }
# pair_ratio KIND EXPR: median over counted pairs of plugin EXPR / baseline EXPR.
pair_ratio() {
	pick "$1" | jq -r "group_by(.pair) | map((map(select(.label == \"plugin\"))[0] | $2) / (map(select(.label == \"baseline\"))[0] | $2)) | sort | .[(length - 1) / 2 | floor] * 1000 | round / 1000"
}

# ------------------------------------------------------------- throughput
Q=0
tp_run() { # LABEL PAIR
	local port=$PLAIN_PORT pid=$PLAIN_PID extra=()
	if [ "$1" = plugin ]; then port=$MQTT_PORT; pid=$BROKER_PID; extra=(--watch-pid "$REDIS_PID"); fi
	timeout 90 "$B/mqtt_load" --port "$port" --cafile "$PKI/ca-bundle.pem" --certdir "$T/ids" \
		--pubs $PUBS --subs $SUBS --tenant bench --qos $Q --duration $TP_SECONDS --warmup 1 --threads 1 \
		--broker-pid "$pid" "${extra[@]}" --label "$1" --json > "$RES/tp.tmp" \
		|| { echo "mqtt_load failed ($1 QoS $Q)"; cat "$RES/tp.tmp"; exit 1; }
	jq -c --argjson pair "$2" --arg load "$(load1)" '. + {pair: $pair, load1: $load}' "$RES/tp.tmp" >> "$RES/tp$Q.jsonl"
}
phase throughput
if want throughput; then
	for Q in 0 1; do
		run_pairs tp$Q tp_run $ROUNDS $((ROUNDS + 3))
		R[tp${Q}_plugin]=$(med tp$Q plugin .delivered_per_s); R[tp${Q}_base]=$(med tp$Q baseline .delivered_per_s)
		R[tp${Q}_plugin_spread]=$(range tp$Q plugin .delivered_per_s); R[tp${Q}_base_spread]=$(range tp$Q baseline .delivered_per_s)
		R[tp${Q}_ratio]=$(pair_ratio tp$Q .delivered_per_s)
		R[tp${Q}_bcpu_plugin]=$(med tp$Q plugin .broker_cpu); R[tp${Q}_bcpu_base]=$(med tp$Q baseline .broker_cpu)
		# broker CPU per delivery, microseconds
		R[tp${Q}_us_plugin]=$(med tp$Q plugin '.broker_cpu / .delivered_per_s * 1e6')
		R[tp${Q}_us_base]=$(med tp$Q baseline '.broker_cpu / .delivered_per_s * 1e6')
		R[tp${Q}_us_ratio]=$(pair_ratio tp$Q '(.broker_cpu / .delivered_per_s)')
		R[tp${Q}_lcpu]=$(med tp$Q plugin .loadgen_cpu)
		R[tp${Q}_foreign]=$(pick tp$Q | jq -r '[.[].foreign_cpu] | max')
		R[tp${Q}_load]=$(pick tp$Q | jq -r '[.[].load1 | tonumber] | max')
		log "throughput QoS $Q: plugin ${R[tp${Q}_plugin]}/s, baseline ${R[tp${Q}_base]}/s, ratio ${R[tp${Q}_ratio]}"
	done
fi

# ------------------------------------------------------------ connect rate
# Refused connects do not stop the suite: they are counted, with the
# plugin's reasons from the broker log ("connect deny ... reason=...").
cr_run() { # LABEL PAIR
	local port=$PLAIN_PORT pid=$PLAIN_PID extra=() c0 r0 ok l0 reasons
	if [ "$1" = plugin ]; then port=$MQTT_PORT; pid=$BROKER_PID; extra=(--watch-pid "$REDIS_PID"); fi
	c0=$(cpu_s "$REDIS_PID"); r0=$(redis_calls); l0=$(wc -l < "$T/mosquitto.log")
	timeout 180 "$B/connect_rate" --port "$port" --cafile "$PKI/ca-bundle.pem" --certdir "$T/ids" \
		--prefix pub --width 3 --devices $PUBS -n $CONNECTS -c $CONC --broker-pid "$pid" "${extra[@]}" \
		--label "$1" --json > "$RES/cr.tmp" 2> "$T/cr.err" || true
	ok=$(jq -r '.succeeded // 0' "$RES/cr.tmp" 2>/dev/null || echo 0)
	[ "$ok" -gt 0 ] || { echo "connect_rate failed ($1)"; cat "$RES/cr.tmp" "$T/cr.err"; exit 1; }
	reasons=$(tail -n +"$((l0 + 1))" "$T/mosquitto.log" | awk '/connect deny/ && match($0, /reason=[A-Za-z-]*/) {
		c[substr($0, RSTART + 7, RLENGTH - 7)]++ } END { for(k in c) printf "%s%s x%d", (n++ ? ", " : ""), k, c[k] }')
	jq -c --argjson pair "$2" --arg load "$(load1)" --arg reasons "$reasons" \
		--argjson rcalls "$(calc %.2f "($(redis_calls) - $r0) / $ok")" \
		--argjson rcpu "$(calc %.3f "($(cpu_s "$REDIS_PID") - $c0) * 1000 / $ok")" \
		'. + {pair: $pair, load1: $load, redis_calls_per_connect: $rcalls, redis_cpu_ms_per_connect: $rcpu, deny_reasons: $reasons}' \
		"$RES/cr.tmp" >> "$RES/cr.jsonl"
}
cr_base_only() { if [ "$1" = baseline ]; then cr_run "$@"; fi; }
phase connect
if want connect || want provision; then
	if want connect; then
		run_pairs cr cr_run $ROUNDS $((ROUNDS + 3))
		R[cr_plugin]=$(med cr plugin .connects_per_s); R[cr_plugin_spread]=$(range cr plugin .connects_per_s)
		R[cr_ratio]=$(pair_ratio cr .connects_per_s)
		R[cr_plugin_p50]=$(med cr plugin .p50_ms); R[cr_plugin_p99]=$(med cr plugin .p99_ms)
		R[cr_plugin_bcpu]=$(med cr plugin .broker_cpu_ms_per_connect)
		R[cr_plugin_ccpu]=$(med cr plugin .client_cpu_ms_per_connect)
		R[cr_plugin_rcalls]=$(med cr plugin .redis_calls_per_connect)
		R[cr_plugin_rcpu]=$(med cr plugin .redis_cpu_ms_per_connect)
		R[cr_bcpu_ratio]=$(pair_ratio cr .broker_cpu_ms_per_connect)
		R[cr_refused]=$(jq -rs '[.[] | select(.label == "plugin") | .refused] | add' "$RES/cr.jsonl")
		R[cr_attempted]=$(jq -rs '[.[] | select(.label == "plugin") | .n] | add' "$RES/cr.jsonl")
		R[cr_reasons]=$(jq -rs '[.[] | select(.label == "plugin" and .deny_reasons != "") | .deny_reasons] | join("; ")' "$RES/cr.jsonl")
	else
		# the provisioning ratio needs the baseline connect rate only
		run_pairs cr cr_base_only 1 3
	fi
	R[cr_base]=$(med cr baseline .connects_per_s); R[cr_base_spread]=$(range cr baseline .connects_per_s)
	R[cr_base_p50]=$(med cr baseline .p50_ms); R[cr_base_p99]=$(med cr baseline .p99_ms)
	R[cr_base_bcpu]=$(med cr baseline .broker_cpu_ms_per_connect)
	R[cr_base_ccpu]=$(med cr baseline .client_cpu_ms_per_connect)
	R[cr_foreign]=$(pick cr | jq -r '[.[].foreign_cpu] | max')
	R[cr_load]=$(pick cr | jq -r '[.[].load1 | tonumber] | max')
	log "connect rate: plugin ${R[cr_plugin]:-}/s, baseline ${R[cr_base]}/s, ratio ${R[cr_ratio]:-}"
fi

# TLS 1.3 against TLS 1.2: the same connects to the broker with the plugin,
# the client held to one version. run_pairs names the two sides "plugin" and
# "baseline": here "plugin" is TLS 1.3 and "baseline" TLS 1.2, so that
# pair_ratio gives 1.3 / 1.2.
# Refused connects are counted, as in cr_run.
tls_run() { # LABEL PAIR
	local version=1.2 ok
	[ "$1" = plugin ] && version=1.3
	timeout 180 "$B/connect_rate" --port "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" --certdir "$T/ids" \
		--prefix pub --width 3 --devices $PUBS -n $CONNECTS -c $CONC --broker-pid "$BROKER_PID" \
		--watch-pid "$REDIS_PID" --tls "$version" --label "$1" --json > "$RES/tls.tmp" 2> "$T/tls.err" || true
	ok=$(jq -r '.succeeded // 0' "$RES/tls.tmp" 2>/dev/null || echo 0)
	[ "$ok" -gt 0 ] || { echo "connect_rate --tls $version failed"; cat "$RES/tls.tmp" "$T/tls.err"; exit 1; }
	jq -c --argjson pair "$2" --arg load "$(load1)" '. + {pair: $pair, load1: $load}' "$RES/tls.tmp" >> "$RES/tls.jsonl"
}
if want connect; then
	run_pairs tls tls_run $ROUNDS $((ROUNDS + 3))
	for side in plugin baseline; do
		R[tls_${side}_rate]=$(med tls $side .connects_per_s); R[tls_${side}_spread]=$(range tls $side .connects_per_s)
		R[tls_${side}_p50]=$(med tls $side .p50_ms); R[tls_${side}_p99]=$(med tls $side .p99_ms)
		R[tls_${side}_bcpu]=$(med tls $side .broker_cpu_ms_per_connect)
		R[tls_${side}_ccpu]=$(med tls $side .client_cpu_ms_per_connect)
		R[tls_${side}_seen]=$(pick tls | jq -r --arg l $side '[.[] | select(.label == $l) | .tls] | unique | join(", ")')
	done
	R[tls_ratio]=$(pair_ratio tls .connects_per_s)
	R[tls_bcpu_ratio]=$(pair_ratio tls .broker_cpu_ms_per_connect)
	R[cr_tls_seen]=$(pick cr | jq -r '[.[].tls // "n/a"] | unique | join(", ")')
	R[tls_foreign]=$(pick tls | jq -r '[.[].foreign_cpu] | max')
	R[tls_refused]=$(jq -rs '[.[].refused] | add' "$RES/tls.jsonl")
	log "TLS: 1.3 ${R[tls_plugin_rate]}/s, 1.2 ${R[tls_baseline_rate]}/s, ratio ${R[tls_ratio]}"
fi

# --------------------------------------------------------------------- ACL
phase acl
if want acl; then
	log "ACL check cost (acl_bench.sh)"
	timeout 300 bash "$ROOT/tests/bench/acl_bench.sh" "$B/acl_bench" > "$RES/acl.txt" 2>&1 \
		|| { echo "acl_bench.sh failed"; cat "$RES/acl.txt"; exit 1; }
	R[acl_ns]=$(sed -n 's/^ns\/check: *//p' "$RES/acl.txt" | tail -1)
	R[acl_ir]=$(sed -n 's/^instructions\/check: *//p' "$RES/acl.txt" | tail -1)
	R[acl_load]=$(load1)
fi

# ---------------------------------------------------------------- profile
# callgrind (instruction counts do not depend on what else runs on the
# machine): (1) the broker with and without the plugin for 60 connects and
# for the throughput load (QoS 0, 1 s and 4 s of publishing: the difference
# is the cost of the deliveries alone); (2) the broker with the plugin and
# claimsvc for 60 provisionings. Counters are zeroed once the process is up,
# so start-up does not count.
PROF_DONE=0
cg_total() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }
# cg_fn ANNOTATED FUNCTION: inclusive instructions of FUNCTION (0 if absent).
cg_fn() { awk -v f="$2" '{ n = split($0, a, ":"); sub(/ .*/, "", a[n]) } a[n] == f { gsub(",", "", $1); print $1; found = 1; exit } END { if(!found) print 0 }' "$1"; }
vg_broker() { # NAME CONF LOG: a broker under callgrind; sets VG_PID
	: > "$3"
	valgrind --tool=callgrind --callgrind-out-file="$RES/callgrind.$1" "$MOSQUITTO_BIN" -c "$2" 2> "$T/vg-$1.log" &
	VG_PID=$!
	BG_PIDS+=("$VG_PID")
	wait_for 90 grep -q "mosquitto version .* running" "$3" || { echo "broker under valgrind did not start"; cat "$T/vg-$1.log"; exit 1; }
	callgrind_control -z "$VG_PID" >/dev/null 2>&1 || log "callgrind_control -z failed: start-up counts too"
}
vg_stop() { kill "$1"; wait "$1" 2>/dev/null || true; }
vg_load() { # NAME PORT DURATION: mqtt_load QoS 0 against a broker under callgrind
	timeout 300 "$B/mqtt_load" --port "$2" --cafile "$PKI/ca-bundle.pem" --certdir "$T/ids" \
		--pubs $PUBS --subs $SUBS --tenant bench --qos 0 --duration "$3" --warmup 0 --connect-timeout 200 \
		--json > "$RES/profile-$1.json" \
		|| { echo "mqtt_load under callgrind failed"; cat "$RES/profile-$1.json"; exit 1; }
}
phase profile
if want profile && [ $PROFILE = 1 ] && [ $HAVE_VALGRIND = 1 ] && ! over_budget 150; then
	for which in plugin baseline; do
		if [ $which = plugin ]; then
			stop_broker; conf=$T/mosquitto.conf; blog=$T/mosquitto.log; port=$MQTT_PORT
		else
			kill "$PLAIN_PID"; wait "$PLAIN_PID" 2>/dev/null || true; conf=$T/plain.conf; blog=$T/plain.log; port=$PLAIN_PORT
		fi
		log "profile: $which broker under callgrind: 60 connects"
		vg_broker $which-connect "$conf" "$blog"
		timeout 300 "$B/connect_rate" --port "$port" --cafile "$PKI/ca-bundle.pem" --certdir "$T/ids" \
			--prefix pub --width 3 --devices 10 -n 60 -c 10 --timeout-ms 60000 --json > "$RES/profile-connect-$which.json" \
			|| { echo "connect_rate under callgrind failed"; cat "$RES/profile-connect-$which.json"; exit 1; }
		vg_stop "$VG_PID"
		# Instructions per delivery: two QoS 0 runs that differ only in how
		# long they publish; the difference holds no connects, no start-up.
		for d in 1 4; do
			log "profile: $which broker under callgrind: QoS 0 load for $d s"
			vg_broker $which-tp$d "$conf" "$blog"
			vg_load $which-tp$d "$port" $d
			vg_stop "$VG_PID"
		done
	done
	start_plain

	log "profile: 60 provisionings, broker with the plugin and claimsvc under callgrind"
	vg_broker plugin-provision "$T/mosquitto.conf" "$T/mosquitto.log"
	BROKER_PID=$VG_PID
	CS_WRAP=(valgrind --tool=callgrind --callgrind-out-file="$RES/callgrind.claimsvc")
	start_cs claimsvc-1
	CS_WRAP=()
	callgrind_control -z "${CS_PIDS[0]}" >/dev/null 2>&1 || true
	awk 'BEGIN { print "serial,birth_fp,batch"; for(i = 0; i < 60; i++) printf "PR%04d,,bench\n", i }' > "$T/allow-PR.csv"
	"$ONBOARDCTL" allowlist import "$T/allow-PR.csv" >/dev/null
	[ -f "$T/claim-batch.pem" ] || new_device claim-batch claim-ca
	timeout 400 "$DEVSIM" --port "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" \
		--claim-cert "$T/claim-batch.pem" --claim-key "$T/claim-batch.key" \
		--serial-prefix PR -n 60 -c 10 --timeout 60000 --quiet --json > "$RES/profile-provision.json" || true
	R[prof_prov_ok]=$(jf "$RES/profile-provision.json" .succeeded)
	stop_cs
	vg_stop "$BROKER_PID"
	start_broker

	if command -v callgrind_annotate >/dev/null; then
		for f in plugin-connect baseline-connect plugin-provision claimsvc; do
			callgrind_annotate --inclusive=yes --threshold=100 "$RES/callgrind.$f" > "$RES/callgrind.$f.txt" 2>/dev/null || true
		done
		for w in plugin baseline; do
			i1=$(cg_total "$RES/callgrind.$w-tp1"); i4=$(cg_total "$RES/callgrind.$w-tp4")
			d1=$(jf "$RES/profile-$w-tp1.json" .delivered_total); d4=$(jf "$RES/profile-$w-tp4.json" .delivered_total)
			R[prof_deliv_$w]=$(calc %.0f "($i4 - $i1) / ($d4 - $d1)")
		done
		R[prof_deliv_ratio]=$(calc %.3f "${R[prof_deliv_plugin]} / ${R[prof_deliv_baseline]}")
		for f in plugin-tp1 plugin-tp4; do
			callgrind_annotate --inclusive=yes --threshold=100 "$RES/callgrind.$f" > "$RES/callgrind.$f.txt" 2>/dev/null || true
		done
		dd=$(calc %.0f "$(jf "$RES/profile-plugin-tp4.json" .delivered_total) - $(jf "$RES/profile-plugin-tp1.json" .delivered_total)")
		for fn in mosquitto_acl_check on_acl_check onb_policy_allows on_message on_tick; do
			a4=$(cg_fn "$RES/callgrind.plugin-tp4.txt" $fn); a1=$(cg_fn "$RES/callgrind.plugin-tp1.txt" $fn)
			R[prof_deliv_$fn]=$(calc %.0f "($a4 - $a1) / $dd")
		done
		pc=$(cg_total "$RES/callgrind.plugin-connect"); bc=$(cg_total "$RES/callgrind.baseline-connect")
		R[prof_conn_plugin]=$(calc %.0f "$pc / 60"); R[prof_conn_base]=$(calc %.0f "$bc / 60")
		R[prof_conn_ratio]=$(calc %.3f "$pc / $bc")
		a=$(cg_fn "$RES/callgrind.plugin-connect.txt" on_basic_auth)
		c=$(cg_fn "$RES/callgrind.plugin-connect.txt" onb_identity_classify)
		R[prof_auth]=$(calc %.0f "$a / 60"); R[prof_auth_share]=$(calc %.1f "100 * $a / $pc")
		R[prof_classify]=$(calc %.0f "$c / 60"); R[prof_classify_share]=$(calc %.1f "100 * $c / $pc")
		n=${R[prof_prov_ok]}; [ "$n" -gt 0 ] || n=1
		pp=$(cg_total "$RES/callgrind.plugin-provision"); cs=$(cg_total "$RES/callgrind.claimsvc")
		R[prof_prov_broker]=$(calc %.0f "$pp / $n"); R[prof_prov_cs]=$(calc %.0f "$cs / $n")
		for fn in on_basic_auth on_message on_acl_check on_tick onb_identity_classify; do
			R[prof_prov_$fn]=$(calc %.0f "$(cg_fn "$RES/callgrind.plugin-provision.txt" $fn) / $n")
		done
		for fn in csvc_handle onb_cert_sign X509_set_pubkey onb_csr_parse onb_csr_issue; do
			R[prof_cs_$fn]=$(calc %.0f "$(cg_fn "$RES/callgrind.claimsvc.txt" $fn) / $n")
		done
		R[prof_cs_setpub_share]=$(calc %.1f "100 * ${R[prof_cs_X509_set_pubkey]} / ${R[prof_prov_cs]}")
		PROF_DONE=1
	fi
fi

# ------------------------------------------------------------ provisioning
# devsim through broker + plugin + claimsvc + Redis. Each run gets its own
# allowlisted serials; per-process CPU shows where the time goes. A run
# during which other processes used more than FOREIGN_MAX cores is repeated
# once (the quieter of the two counts).
PROV_RUNS=()
PROV_SEQ=0
prov_attempt() { # NAME THREADS -> $RES/prov.tmp (one JSON line)
	local name=$1 threads=$2 p prefix ok n cs_cpu=0 m0 t0 t1 s0 s1 wall u0 u1
	local -A c0
	PROV_SEQ=$((PROV_SEQ + 1)); printf -v prefix 'P%02d' "$PROV_SEQ"
	awk -v p="$prefix" -v n="$PROV_N" 'BEGIN { print "serial,birth_fp,batch"; for(i = 0; i < n; i++) printf "%s%04d,,bench\n", p, i }' \
		> "$T/allow-$prefix.csv"
	"$ONBOARDCTL" allowlist import "$T/allow-$prefix.csv" >/dev/null
	[ -f "$T/claim-batch.pem" ] || new_device claim-batch claim-ca
	c0[broker]=$(cpu_s "$BROKER_PID"); c0[redis]=$(cpu_s "$REDIS_PID")
	u0=$(calc %.2f "$(usr_s "$BROKER_PID") + $(usr_s "$REDIS_PID")")
	for p in "${CS_PIDS[@]}"; do c0[cs$p]=$(cpu_s "$p"); u0=$(calc %.2f "$u0 + $(usr_s "$p")"); done
	local l0; l0=$(load1)
	log "provisioning $name: devsim -n $PROV_N -c $CONC --threads $threads, ${#CS_PIDS[@]} claimsvc (serials $prefix...)"
	m0=$(busy_s); s0=$(sched "$BROKER_PID"); t0=$(date +%s.%N)
	# devsim's user CPU (bash's time), for the other-CPU figure
	local TIMEFORMAT=%U
	{ time timeout 300 "$DEVSIM" --port "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" \
		--claim-cert "$T/claim-batch.pem" --claim-key "$T/claim-batch.key" \
		--serial-prefix "$prefix" -n "$PROV_N" -c $CONC --threads "$threads" --quiet --json \
		> "$RES/prov-$name-$prefix.json" 2> "$T/devsim.err" || true; } 2> "$T/devsim.time"
	t1=$(date +%s.%N); s1=$(sched "$BROKER_PID")
	u1=$(calc %.2f "$(usr_s "$BROKER_PID") + $(usr_s "$REDIS_PID")")
	for p in "${CS_PIDS[@]}"; do u1=$(calc %.2f "$u1 + $(usr_s "$p")"); done
	wall=$(calc %.3f "$t1 - $t0")
	ok=$(jf "$RES/prov-$name-$prefix.json" .succeeded)
	n=$ok; [ "$n" -gt 0 ] || n=1
	for p in "${CS_PIDS[@]}"; do cs_cpu=$(calc %.2f "$cs_cpu + $(cpu_s "$p") - ${c0[cs$p]}"); done
	local broker redis devsim
	broker=$(calc %.2f "$(cpu_s "$BROKER_PID") - ${c0[broker]}")
	redis=$(calc %.2f "$(cpu_s "$REDIS_PID") - ${c0[redis]}")
	devsim=$(jf "$RES/prov-$name-$prefix.json" .cpu_s)
	jq -c --arg name "$name" --arg prefix "$prefix" --arg load "$l0" --argjson ncs "${#CS_PIDS[@]}" \
		--argjson broker "$(calc %.3f "$broker * 1000 / $n")" \
		--argjson redis "$(calc %.3f "$redis * 1000 / $n")" \
		--argjson cs "$(calc %.3f "$cs_cpu * 1000 / $n")" \
		--argjson devsim "$(calc %.3f "$devsim * 1000 / $n")" \
		--argjson foreign "$(calc %.3f "($(busy_s) - $m0 - ($u1 - $u0) - $(tail -1 "$T/devsim.time")) / $wall")" \
		--argjson bwait "$(awk -v a="$s0" -v b="$s1" -v w="$wall" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.3f", (y[2] - x[2]) / w }')" \
		--argjson bon "$(awk -v a="$s0" -v b="$s1" -v w="$wall" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.3f", (y[1] - x[1]) / w }')" \
		'{name: $name, serials: $prefix, load1: $load, claimsvc: $ncs, threads: .threads, devices: .devices,
		  succeeded: .succeeded, failed: .failed, per_s: (.provisionings_per_s * 10 | round / 10),
		  p50_ms: .phases.total.p50_ms, p99_ms: .phases.total.p99_ms,
		  claim_p99_ms: .phases["connect-claim"].p99_ms, csr_p99_ms: .phases.csr.p99_ms,
		  register_p99_ms: .phases.register.p99_ms, op_p99_ms: .phases["connect-operational"].p99_ms,
		  cpu_ms: {broker: $broker, claimsvc: $cs, redis: $redis, devsim: $devsim},
		  cores_busy: (($broker + $cs + $redis + $devsim) * .provisionings_per_s / 1000 * 100 | round / 100),
		  broker_on_cpu: $bon, broker_runqueue_wait: $bwait, foreign_cpu: $foreign,
		  stray: .stray_replies, failures: .failures}' "$RES/prov-$name-$prefix.json" > "$RES/prov.tmp"
	cat "$RES/prov.tmp" >> "$RES/provision-all.jsonl"
	log "provisioning $name: $(jq -r .per_s "$RES/prov.tmp")/s, $ok/$PROV_N succeeded, other CPU $(jq -r .foreign_cpu "$RES/prov.tmp") cores"
}
prov_once() { # NAME THREADS
	local best=""
	for _ in 1 2; do
		prov_attempt "$1" "$2"
		if [ -z "$best" ] || awk -v a="$(jq -r .foreign_cpu "$RES/prov.tmp")" -v b="$(jq -r .foreign_cpu <<<"$best")" 'BEGIN { exit !(a < b) }'; then
			best=$(cat "$RES/prov.tmp")
		fi
		awk -v f="$(jq -r .foreign_cpu "$RES/prov.tmp")" -v m="$FOREIGN_MAX" 'BEGIN { exit !(f > m) }' || break
		over_budget 90 && break
		log "provisioning $1: noisy (other processes busy), once more"
	done
	echo "$best" >> "$RES/provision.jsonl"
	PROV_RUNS+=("$1")
}
phase provision
if want provision; then
	start_cs claimsvc-1
	prov_once cs1-t1 1
	prov_once cs1-t2 2
	start_cs claimsvc-2
	prov_once cs2-t1 1
	prov_once cs2-t2 2
	stop_cs
fi

# ------------------------------------------------- revocation, policy update
phase latency
if want latency; then
	log "revocation latency ($REVOKE_N devices)"
	timeout 180 "$B/revoke_latency" --port "$MQTT_PORT" --pki "$PKI" \
		--redis "redis://127.0.0.1:$REDIS_PORT/0" -n $REVOKE_N > "$RES/revoke.txt" 2>&1 \
		|| { echo "revoke_latency failed"; cat "$RES/revoke.txt"; exit 1; }
	R[rev_p50]=$(sed -n 's/.*p50 \([0-9.]*\) ms.*/\1/p' "$RES/revoke.txt")
	R[rev_p99]=$(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' "$RES/revoke.txt")
	R[rev_max]=$(sed -n 's/.*max \([0-9.]*\) ms.*/\1/p' "$RES/revoke.txt")
	R[rev_load]=$(load1)
	log "policy-update latency ($LAT_N updates)"
	ident pl000
	timeout 180 "$B/policy_latency" --port "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" \
		--cert "$T/ids/pl000.pem" --key "$T/ids/pl000.key" --id pl000 \
		--redis "redis://127.0.0.1:$REDIS_PORT/0" -n $LAT_N --json > "$RES/policy.json" \
		|| { echo "policy_latency failed"; cat "$RES/policy.json"; exit 1; }
	R[pol_p50]=$(jf "$RES/policy.json" .p50_ms); R[pol_p99]=$(jf "$RES/policy.json" .p99_ms)
	R[pol_max]=$(jf "$RES/policy.json" .max_ms); R[pol_put]=$(jf "$RES/policy.json" .put_p50_ms)
	R[pol_load]=$(load1)
fi

# --------------------------------------------------------- registry scale
# A fresh registry: 1,000 allowlisted devices and a few operational ones,
# connect latency; then SCALE_N more, Redis memory per device and connect
# latency again. Connects are one at a time (-c 1) so that the figure is
# latency, not queueing.
# redis_usec: "calls microseconds" summed over Redis's commandstats.
redis_usec() { rcli info commandstats | awk -F'[=,]' '/^cmdstat_/ { c += $2; u += $4 } END { print c + 0, u + 0 }'; }
scale_connects() { # NAME
	local r0 r1
	r0=$(redis_usec)
	timeout 120 "$B/connect_rate" --port "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" --certdir "$T/ids" \
		--prefix sc --width 3 --devices 10 -n 300 -c 1 --broker-pid "$BROKER_PID" --label "$1" --json \
		> "$RES/sc.tmp" || { echo "connect_rate failed ($1)"; cat "$RES/sc.tmp"; exit 1; }
	r1=$(redis_usec)
	# Redis's own time per command (server side, no network, no waiting)
	jq -c --argjson us "$(awk -v a="$r0" -v b="$r1" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.2f", (y[2] - x[2]) / (y[1] - x[1] > 0 ? y[1] - x[1] : 1) }')" \
		'. + {redis_usec_per_command: $us}' "$RES/sc.tmp" >> "$RES/scale-connect.jsonl"
}
phase scale
if want scale; then
	log "registry scale: fresh registry with 1,000 devices"
	stop_broker; stop_redis
	rm -f "$T"/appendonly.aof "$T"/*.rdb; rm -rf "$T/appendonlydir"
	start_redis
	"$ONBOARDCTL" policy init "$ROOT/policies" >/dev/null
	start_broker
	awk 'BEGIN { print "serial,birth_fp,batch"; for(i = 0; i < 990; i++) printf "K%06d,,small\n", i }' > "$T/allow-1k.csv"
	"$ONBOARDCTL" allowlist import "$T/allow-1k.csv" >/dev/null
	for i in $(seq 0 9); do printf -v id 'sc%03d' "$i"; ident "$id"; done
	R[scale_small_keys]=$(rcli dbsize)
	scale_connects at-1k
	mem0=$(rcli info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
	awk -v n="$SCALE_N" 'BEGIN { print "serial,birth_fp,batch"; for(i = 0; i < n; i++) printf "M%07d,,scale\n", i }' > "$T/allow-big.csv"
	log "registry scale: importing $SCALE_N devices"
	t0=$(date +%s.%N)
	timeout 400 "$ONBOARDCTL" --json allowlist import "$T/allow-big.csv" > "$RES/scale-import.json" \
		|| { echo "allowlist import failed"; cat "$RES/scale-import.json"; exit 1; }
	t1=$(date +%s.%N)
	rm -f "$T/allow-big.csv"
	mem1=$(rcli info memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
	R[scale_n]=$SCALE_N
	R[scale_import_s]=$(calc %.1f "$t1 - $t0")
	R[scale_import_rate]=$(calc %.0f "$SCALE_N / ($t1 - $t0)")
	R[scale_added]=$(jf "$RES/scale-import.json" '.added // empty')
	R[scale_mem_mb]=$(calc %.1f "($mem1 - $mem0) / 1048576")
	R[scale_bytes_per_dev]=$(calc %.0f "($mem1 - $mem0) / $SCALE_N")
	printf -v sample 'onb:dev:{M%07d}' $((SCALE_N / 2))
	R[scale_key_usage]=$(rcli memory usage "$sample" 2>/dev/null || echo "?")
	R[scale_keys]=$(rcli dbsize)
	R[scale_audit_len]=$(rcli xlen onb:audit)
	R[scale_events_len]=$(rcli xlen onb:events)
	R[scale_encoding]=$(rcli object encoding "$sample" 2>/dev/null || echo "?")
	scale_connects at-1m
	sc() { jq -rs ".[] | select(.label == \"$1\") | $2" "$RES/scale-connect.jsonl"; }
	R[scale_p50_small]=$(sc at-1k .p50_ms); R[scale_p99_small]=$(sc at-1k .p99_ms)
	R[scale_p50_big]=$(sc at-1m .p50_ms); R[scale_p99_big]=$(sc at-1m .p99_ms)
	R[scale_bcpu_small]=$(sc at-1k .broker_cpu_ms_per_connect); R[scale_bcpu_big]=$(sc at-1m .broker_cpu_ms_per_connect)
	R[scale_rus_small]=$(sc at-1k .redis_usec_per_command); R[scale_rus_big]=$(sc at-1m .redis_usec_per_command)
	R[scale_foreign_small]=$(sc at-1k .foreign_cpu); R[scale_foreign_big]=$(sc at-1m .foreign_cpu)
	R[scale_p50_ratio]=$(calc %.3f "${R[scale_p50_big]} / ${R[scale_p50_small]}")
	R[scale_load]=$(load1)
	log "registry scale: ${R[scale_bytes_per_dev]} B/device; connect p50 ${R[scale_p50_small]} -> ${R[scale_p50_big]} ms"
fi

# ------------------------------------------------------------------ report
log "writing $OUT"
R[date]=$(date -u '+%Y-%m-%d %H:%M UTC')
R[cpu]=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
R[nproc]=$(nproc)
R[mem]=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
R[kernel]=$(uname -r)
R[os]=$(. /etc/os-release && echo "$PRETTY_NAME")
R[mosq]=$( (mosquitto -h 2>&1 || true) | sed -n '1s/.*version //p')
R[redis]=$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')
R[openssl]=$(openssl version | cut -d' ' -f2)
R[rev]=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
[ -z "$(git -C "$ROOT" status --porcelain 2>/dev/null | sed -n 1p)" ] || R[rev]="${R[rev]} + uncommitted changes"
R[load_end]=$(cut -d" " -f1-3 /proc/loadavg)
R[elapsed]=$(( $(date +%s) - SUITE_T0 ))

v() { echo "${R[$1]:-n/a}"; }
ok() { awk -v a="${R[$1]:-}" -v g="$2" 'BEGIN { if(a == "") print ""; else if(a + 0 >= g + 0) print "met"; else print "**not met**" }'; }
okle() { awk -v a="${R[$1]:-}" -v g="$2" 'BEGIN { if(a == "") print ""; else if(a + 0 <= g + 0) print "met"; else print "**not met**" }'; }
fmt() { awk -v a="${R[$1]:-}" 'BEGIN { if(a == "") print "n/a"; else printf "%.0f", a }'; }
f2() { awk -v a="${R[$1]:-}" 'BEGIN { if(a == "") print "n/a"; else printf "%.2f", a }'; }
pairs_note() { echo "${R[${1}_clean]:-0} of ${R[${1}_pairs]:-0} pairs counted"; }

{
cat <<EOF
# Performance

Generated by \`$CMDLINE\` (build dir \`$BUILD\`) on ${R[date]}, in $(v elapsed) s.
Do not edit above the line that says so at the end: the next run rewrites it.

Machine: $(v nproc) cores ($(v cpu)), $(v mem), $(v os), Linux $(v kernel);
Mosquitto $(v mosq), Redis $(v redis), OpenSSL $(v openssl); code at $(v rev).
Load average at start: $(v load_start); at end: $(v load_end).

Everything runs on 127.0.0.1 on this one machine: broker, Redis, claimsvc
and the load generators share the $(v nproc) cores, and so does whatever else
runs on the machine. Every measurement therefore records "other CPU": the
cores the machine spent on processes that are not part of the benchmark
(\`/proc/stat\` user and steal time minus the user time of the benchmark's
processes: system time is left out because the kernel charges loopback
interrupt work to whichever process it interrupts; so this is a lower
bound, good for compilers and builds, the usual neighbours).
A pair of runs (with plugin, baseline) during which that exceeded
$FOREIGN_MAX cores is repeated (up to 3 extra pairs, within a ${BUDGET_S} s budget);
"load" is the 1-minute load average when the figure was taken (it includes
the benchmark itself).

The plugin broker runs the shipped \`config/mosquitto.conf\`; the baseline
broker is the same file with the plugin lines removed and
\`allow_anonymous true\` (no auth plugin and no password file: Mosquitto
would refuse every client otherwise). Same listener, TLS files, TLS version
(1.2), \`require_certificate true\`, \`set_tcp_nodelay\`, logging. Both get
\`max_queued_messages 100000\` (see Message throughput). Ratios are medians
over pairs of the per-pair ratio; plugin and baseline run back to back,
alternating which goes first.

## Summary

| benchmark | with mosquitto-onboard | baseline (same run) | ratio | goal | other CPU (cores) / load |
|---|---|---|---|---|---|
EOF
if want throughput; then
	for q in 0 1; do
		echo "| throughput QoS $q, $PUBS publishers -> $SUBS subscribers, 32 B | $(fmt tp${q}_plugin) deliveries/s | $(fmt tp${q}_base) deliveries/s (no plugin) | $(v tp${q}_ratio) | >= 0.95 $(ok tp${q}_ratio 0.95) | $(f2 tp${q}_foreign) / $(v tp${q}_load) |"
	done
fi
if want connect; then
	echo "| mTLS connect rate, $CONNECTS connects, $CONC in flight | $(fmt cr_plugin)/s (p50 $(v cr_plugin_p50) ms, p99 $(v cr_plugin_p99) ms) | $(fmt cr_base)/s (p50 $(v cr_base_p50) ms, p99 $(v cr_base_p99) ms) | $(v cr_ratio) | >= 0.90 $(ok cr_ratio 0.90) | $(f2 cr_foreign) / $(v cr_load) |"
fi
if want acl; then
	echo "| ACL check (10-statement device-tenant policy) | $(v acl_ns) ns, $(v acl_ir) instructions per check | | | | - / $(v acl_load) |"
fi
if want provision && [ ${#PROV_RUNS[@]} -gt 0 ]; then
	base_half=$(calc %.1f "${R[cr_base]} / 2")
	while read -r line; do
		name=$(jq -r .name <<<"$line"); rate=$(jq -r .per_s <<<"$line")
		ratio=$(calc %.3f "$rate / $base_half")
		R[prov_ratio_$name]=$ratio
		echo "| provisioning, devsim -n $PROV_N -c $CONC --threads $(jq -r .threads <<<"$line"), $(jq -r .claimsvc <<<"$line") claimsvc | $rate/s, p99 $(jq -r .p99_ms <<<"$line") ms, $(jq -r .succeeded <<<"$line")/$PROV_N ok | $base_half/s (half the baseline connect rate) | $ratio | >= 0.8 $(ok "prov_ratio_$name" 0.8); issue: 1,000/s $(awk -v r="$rate" 'BEGIN { print (r >= 1000 ? "met" : "**not met**") }') | $(jq -r .foreign_cpu <<<"$line") / $(jq -r .load1 <<<"$line") |"
	done < "$RES/provision.jsonl"
fi
if want latency; then
	echo "| revocation: revoke -> socket closed ($REVOKE_N devices) | p50 $(v rev_p50) ms, p99 $(v rev_p99) ms, max $(v rev_max) ms | | | p99 <= 100 ms $(okle rev_p99 100) | - / $(v rev_load) |"
	echo "| policy update: put -> first PUBACK by the new policy ($LAT_N updates) | p50 $(v pol_p50) ms, p99 $(v pol_p99) ms, max $(v pol_max) ms | | | | - / $(v pol_load) |"
fi
if want scale; then
	echo "| registry: Redis memory per allowlisted device ($(fmt scale_n) imported) | $(v scale_bytes_per_dev) B | | | <= 500 B $(okle scale_bytes_per_dev 500) | - / $(v scale_load) |"
	echo "| connect latency at $(fmt scale_n) devices vs at 1,000 (one at a time) | p50 $(v scale_p50_big) ms, p99 $(v scale_p99_big) ms | p50 $(v scale_p50_small) ms, p99 $(v scale_p99_small) ms (1,000 devices) | $(v scale_p50_ratio) | | - / $(v scale_load) |"
fi
if [ $PROF_DONE = 1 ]; then
	echo "| broker instructions per delivered message, QoS 0 fan-out (callgrind) | $(fmt prof_deliv_plugin) | $(fmt prof_deliv_baseline) | $(calc %.3f "${R[prof_deliv_baseline]} / ${R[prof_deliv_plugin]}") (baseline / plugin: the throughput ratio if instruction-bound) | >= 0.95 $(awk -v a="${R[prof_deliv_baseline]}" -v b="${R[prof_deliv_plugin]}" 'BEGIN { print (a / b >= 0.95 ? "met" : "**not met**") }') | - |"
	echo "| broker instructions per mTLS connect (callgrind) | $(fmt prof_conn_plugin) | $(fmt prof_conn_base) | $(calc %.3f "${R[prof_conn_base]} / ${R[prof_conn_plugin]}") (baseline / plugin) | >= 0.90 $(awk -v a="${R[prof_conn_base]}" -v b="${R[prof_conn_plugin]}" 'BEGIN { print (a / b >= 0.90 ? "met" : "**not met**") }') | - |"
fi

if want throughput; then
cat <<EOF

## Message throughput

\`tests/bench/mqtt_load\`: $PUBS publishers (devices of tenant \`bench\` holding
the shipped 10-statement \`device-tenant\` policy) publish 32-byte messages
to \`tenants/bench/devices/<id>/telemetry\`; $SUBS subscribers (devices holding
\`tests/bench/policies/bench-subscriber.json\`, 10 statements, assigned with
\`onboardctl policy assign\`) subscribe to \`tenants/bench/devices/+/telemetry\`,
so every message is delivered $SUBS times: per message one "publish" ACL
check and $SUBS "receive" checks. Closed loop: publishers send (round robin)
while fewer than 500 messages are on their way to some subscriber, so the
broker always has work and nothing is dropped; counted over $TP_SECONDS s after
1 s of warm-up; one load-generator thread (two were slower: they compete with
the single-threaded broker for the 2 cores). The same certificates connect
to both brokers. Pairs: QoS 0 $(pairs_note tp0), QoS 1 $(pairs_note tp1).

| QoS | with plugin, deliveries/s (median, range) | baseline, deliveries/s (median, range) | ratio | broker CPU (cores) plugin / baseline | broker CPU per delivery, us: plugin / baseline (ratio) | load generator CPU (cores) | other CPU (cores) |
|---|---|---|---|---|---|---|---|
EOF
for q in 0 1; do
	echo "| $q | $(fmt tp${q}_plugin) ($(v tp${q}_plugin_spread)) | $(fmt tp${q}_base) ($(v tp${q}_base_spread)) | $(v tp${q}_ratio) | $(f2 tp${q}_bcpu_plugin) / $(f2 tp${q}_bcpu_base) | $(f2 tp${q}_us_plugin) / $(f2 tp${q}_us_base) ($(v tp${q}_us_ratio)) | $(f2 tp${q}_lcpu) | $(f2 tp${q}_foreign) |"
done
cat <<EOF

Messages published per second = deliveries / $SUBS. With one core for the
single-threaded broker and one for the load generator, both are near their
limit; the broker CPU per delivery is the figure least affected by that.
QoS 1 needs \`max_queued_messages\` above the default 1000 on Mosquitto
2.0.11, with or without the plugin: the broker reads one packet per
connection per loop iteration, so a subscriber's PUBACKs are read far more
slowly than 100 publishers' messages are queued for it, and past 1000
unacknowledged messages the broker logs "Outgoing messages are being
dropped" (measured here; an operator with this fan-in needs the same
setting). Every run: \`$RES/tp0.jsonl\`, \`tp1.jsonl\`.
EOF
fi

if want connect; then
cat <<EOF

## mTLS connect rate

\`tests/bench/connect_rate\`: $CONNECTS connects, $CONC in flight, each a full
TLS handshake (negotiated: $(v cr_tls_seen); EC P-256 certificates from \`onboardctl pki\`, no session
resumption) and CONNECT -> CONNACK -> DISCONNECT, as registered devices
\`pub000\`-\`pub099\` (client id = device id, each slot alternating between two
devices). Latency runs from the TCP connect to the CONNACK. $(pairs_note cr).

| broker | connects/s (median, range) | p50 ms | p99 ms | broker CPU ms/connect | client CPU ms/connect | Redis commands/connect | Redis CPU ms/connect |
|---|---|---|---|---|---|---|---|
| with plugin | $(fmt cr_plugin) ($(v cr_plugin_spread)) | $(v cr_plugin_p50) | $(v cr_plugin_p99) | $(v cr_plugin_bcpu) | $(v cr_plugin_ccpu) | $(v cr_plugin_rcalls) | $(v cr_plugin_rcpu) |
| baseline | $(fmt cr_base) ($(v cr_base_spread)) | $(v cr_base_p50) | $(v cr_base_p99) | $(v cr_base_bcpu) | $(v cr_base_ccpu) | - | - |

Broker CPU per connect, plugin / baseline: $(v cr_bcpu_ratio) (median of pairs).
Connects refused by the plugin, all runs: $(v cr_refused) of $(v cr_attempted)${R[cr_reasons]:+ (reasons in the broker log: ${R[cr_reasons]})}.
The client needs about as much CPU per connect as the broker, so on 2 cores
the client and Redis take CPU the broker would otherwise get. Every run:
\`$RES/cr.jsonl\`.
EOF
fi

if want connect; then
cat <<EOF

## TLS 1.3 and TLS 1.2

The same $CONNECTS connects, $CONC in flight, to the broker with the plugin,
the client held to one TLS version (\`connect_rate --tls\`); the broker
allows both here (\`tls_version tlsv1.2\`, i.e. 1.2 or later). $(pairs_note tls).

| client | negotiated | connects/s (median, range) | p50 ms | p99 ms | broker CPU ms/connect | client CPU ms/connect |
|---|---|---|---|---|---|---|
| TLS 1.3 | $(v tls_plugin_seen) | $(fmt tls_plugin_rate) ($(v tls_plugin_spread)) | $(v tls_plugin_p50) | $(v tls_plugin_p99) | $(v tls_plugin_bcpu) | $(v tls_plugin_ccpu) |
| TLS 1.2 | $(v tls_baseline_seen) | $(fmt tls_baseline_rate) ($(v tls_baseline_spread)) | $(v tls_baseline_p50) | $(v tls_baseline_p99) | $(v tls_baseline_bcpu) | $(v tls_baseline_ccpu) |

TLS 1.3 / TLS 1.2, median of pairs: connects/s $(v tls_ratio), broker CPU
per connect $(v tls_bcpu_ratio). Other CPU on the machine at most
$(f2 tls_foreign) cores; connects refused by the plugin, all runs: $(v tls_refused). Both are full handshakes with the same P-256
certificates and no session resumption; what TLS 1.3 saves over the network
is a round trip, which loopback does not show. The shipped configuration
allows TLS 1.3 only (docs/operations.md, "TLS versions"). Every run:
\`$RES/tls.jsonl\`.
EOF
fi

if want acl; then
cat <<EOF

## ACL check

\`tests/bench/acl_bench.sh\`: the shipped 10-statement \`device-tenant\` policy
compiled for one device, 1,000 distinct subjects (publish, subscribe,
receive; half allowed), natively and under callgrind:
$(v acl_ns) ns and $(v acl_ir) instructions per check. A delivered message in
the throughput test costs 1.1 checks (1 publish check per $SUBS receive
checks).
EOF
fi

if want provision && [ ${#PROV_RUNS[@]} -gt 0 ]; then
cat <<EOF

## Provisioning

\`devsim -n $PROV_N -c $CONC\` with the shared claim certificate, template
\`default\` (allowlist required; $PROV_N serials allowlisted first, new ones for
every run): per device a claim mTLS connect, CreateCertificateFromCsr,
RegisterThing, an operational mTLS connect and one telemetry publish, through
the broker with the plugin, claimsvc and Redis. The reference is half of the
baseline broker's mTLS connect rate measured above ($(fmt cr_base)/s, so
$(calc %.1f "${R[cr_base]} / 2")/s): every provisioning costs the one broker two mTLS connects.

| claimsvc | devsim threads | provisionings/s | ratio to half the connect rate | CPU-normalised ratio: machine / broker | total p50 / p99 ms | p99 ms: claim connect / csr / register / operational connect | CPU ms per provisioning: broker / claimsvc / Redis / devsim | our cores busy | broker on CPU / waiting for a CPU (cores) | other CPU (cores) |
|---|---|---|---|---|---|---|---|---|---|---|
EOF
while read -r line; do
	name=$(jq -r .name <<<"$line")
	jq -r --arg ratio "${R[prov_ratio_$name]}" --argjson bb "${R[cr_base_bcpu]:-0}" --argjson bc "${R[cr_base_ccpu]:-0}" \
		'"| \(.claimsvc) | \(.threads) | \(.per_s) | \($ratio) | \(2 * ($bb + $bc) / (.cpu_ms.broker + .cpu_ms.claimsvc + .cpu_ms.redis + .cpu_ms.devsim) * 1000 | round / 1000) / \(2 * $bb / .cpu_ms.broker * 1000 | round / 1000) | \(.p50_ms) / \(.p99_ms) | \(.claim_p99_ms) / \(.csr_p99_ms) / \(.register_p99_ms) / \(.op_p99_ms) | \(.cpu_ms.broker) / \(.cpu_ms.claimsvc) / \(.cpu_ms.redis) / \(.cpu_ms.devsim) | \(.cores_busy) | \(.broker_on_cpu) / \(.broker_runqueue_wait) | \(.foreign_cpu) |"' <<<"$line"
done < "$RES/provision.jsonl"
cat <<EOF

"CPU-normalised ratio" takes the rates out of the question (other work on
the machine changes them): *machine* = CPU of two baseline connects, broker
and client ($(v cr_base_bcpu) + $(v cr_base_ccpu) ms each), over the CPU of one
provisioning, all processes together; i.e. the ratio the two rates would
have on a machine that ran nothing else. *broker* = two baseline connects'
broker CPU over the broker CPU of one provisioning: the ratio if the
single-threaded broker had a core to itself and everything else ran
elsewhere (the deployment that the 1,000/s goal needs anyway).
"our cores busy" = (sum of the four CPU columns) x provisionings/s / 1000.
"waiting for a CPU" is the broker's run-queue time (\`/proc/PID/schedstat\`):
time it was ready to run while both cores were taken. Failures by reason and
every attempt: \`$RES/provision-all.jsonl\`.
EOF
fi

if want latency; then
cat <<EOF

## Revocation and policy-update latency

- Revocation (\`tests/bench/revoke_latency\`, $REVOKE_N devices, one at a
  time): from the call of \`onb_registry_set_state(revoked)\` (what
  \`onboardctl device revoke\` calls) to the device's connection being closed
  by the broker: p50 $(v rev_p50) ms, p99 $(v rev_p99) ms, max $(v rev_max) ms.
- Policy update (\`tests/bench/policy_latency\`, $LAT_N updates): a connected
  device publishes QoS 1 back to back under its own policy; each round stores
  the other of two versions of that policy (\`onb_policystore_put\`, what
  \`onboardctl policy put\` calls; one version allows the publish, one does
  not). From the start of the put to the first PUBACK that reflects it
  (0x87 after the denying version, success after the allowing one):
  p50 $(v pol_p50) ms, p99 $(v pol_p99) ms, max $(v pol_max) ms; the put itself
  takes $(v pol_put) ms (p50).
EOF
fi

if want scale; then
cat <<EOF

## Registry scale

A fresh Redis (AOF on, as in the integration fixture) with the shipped
policies, 990 allowlisted devices and 10 operational ones (\`sc000\`-\`sc009\`):
$(v scale_small_keys) keys. Then \`onboardctl allowlist import\` of
$(fmt scale_n) serials: $(v scale_import_s) s ($(fmt scale_import_rate) devices/s),
$(v scale_added) added, \`used_memory\` +$(v scale_mem_mb) MiB =
**$(v scale_bytes_per_dev) bytes per device** (one \`onb:dev:{ID}\` hash each,
encoding $(v scale_encoding), \`MEMORY USAGE\` of one: $(v scale_key_usage) B; $(fmt scale_keys) keys in all;
\`onb:audit\` holds $(v scale_audit_len) entries, \`onb:events\` $(v scale_events_len)).

Connect latency of the operational devices, 300 connects one at a time:

| registry size | p50 ms | p99 ms | broker CPU ms/connect | Redis time per command, us (server side) | other CPU (cores) |
|---|---|---|---|---|---|
| about 1,000 devices | $(v scale_p50_small) | $(v scale_p99_small) | $(v scale_bcpu_small) | $(v scale_rus_small) | $(v scale_foreign_small) |
| $(fmt scale_n) more | $(v scale_p50_big) | $(v scale_p99_big) | $(v scale_bcpu_big) | $(v scale_rus_big) | $(v scale_foreign_big) |
EOF
fi

if [ $PROF_DONE = 1 ]; then
cat <<EOF

## Profile (callgrind)

Instruction counts, start-up excluded (\`callgrind_control -z\`); they do
not depend on what else runs on the machine:

- Message delivery (the throughput topology, QoS 0; two runs that differ
  only in publishing for 1 s or 4 s, so connects cancel out): the broker
  executes $(fmt prof_deliv_plugin) instructions per delivered message with the
  plugin and $(fmt prof_deliv_baseline) without (plugin / baseline $(v prof_deliv_ratio)).
  Per delivery, Mosquitto's \`mosquitto_acl_check\` takes $(fmt prof_deliv_mosquitto_acl_check) with the
  plugin, of which the plugin's \`on_acl_check\` $(fmt prof_deliv_on_acl_check) and in it
  \`onb_policy_allows\` $(fmt prof_deliv_onb_policy_allows) (1.1 checks per delivery);
  \`on_message\` $(fmt prof_deliv_on_message), \`on_tick\` $(fmt prof_deliv_on_tick).
- mTLS connect (60 connects, 10 in flight): the broker executes
  $(fmt prof_conn_plugin) instructions per connect with the plugin and
  $(fmt prof_conn_base) without (ratio $(v prof_conn_ratio)). The plugin's CONNECT
  callback \`on_basic_auth\` (inclusive) takes $(fmt prof_auth) ($(v prof_auth_share) %),
  of which \`onb_identity_classify\` takes $(fmt prof_classify) ($(v prof_classify_share) %).
- Provisioning (devsim -n 60 -c 10, $(v prof_prov_ok) succeeded), per device: broker
  $(fmt prof_prov_broker) instructions, of which \`on_basic_auth\` $(fmt prof_prov_on_basic_auth)
  (two connects), \`on_message\` $(fmt prof_prov_on_message), \`on_acl_check\`
  $(fmt prof_prov_on_acl_check), \`on_tick\` $(fmt prof_prov_on_tick); claimsvc
  $(fmt prof_prov_cs), of which \`csvc_handle\` $(fmt prof_cs_csvc_handle), \`onb_csr_parse\`
  $(fmt prof_cs_onb_csr_parse), \`onb_cert_sign\` $(fmt prof_cs_onb_cert_sign), and inside it
  \`X509_set_pubkey\` $(fmt prof_cs_X509_set_pubkey) ($(v prof_cs_setpub_share) % of claimsvc).

Annotated profiles: \`$RES/callgrind.*.txt\`.
EOF
fi
echo
echo "<!-- run.sh: everything above this line is generated; everything below is kept -->"
if [ -f "$OUT" ] && grep -q '^<!-- run.sh: everything above' "$OUT"; then
	sed '1,/^<!-- run.sh: everything above/d' "$OUT"
fi
} > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
log "done in $(( $(date +%s) - SUITE_T0 )) s: $OUT"

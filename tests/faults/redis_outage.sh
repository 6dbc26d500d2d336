# Fault injection: Redis hung (SIGSTOP) and then killed (SIGKILL) while four
# bounded client loops connect as fast as they can and one session publishes
# every 10 ms to a subscriber.
#
# DESIGN.md s.7: new connects are refused (fail closed) with a logged reason;
# live sessions keep working; the broker's loop never waits on Redis longer
# than the configured timeout (50 ms here); the plugin reconnects by itself.
# The issue adds: recovery within 1 s of Redis returning, and no event lost.
#
# The loop stall is measured from outside: the largest gap between two
# consecutive messages of the 10 ms publisher at the subscriber (the broker
# routes them in its single main loop, the same loop that runs the plugin's
# CONNECT checks). Timings are printed as '#' lines; the assertions allow the
# spec plus a generous scheduling margin for this shared 2-core machine.
# Connects refused while Redis is away cannot be audited to Redis: the
# broker's log carries them (and the audit stream resumes afterwards).
source "$(dirname "$0")/../integration/harness.sh"
source "$(dirname "$0")/../security/lib.sh"
up
rcli CONFIG SET appendfsync always > /dev/null   # a SIGKILL must not eat acknowledged writes

TIMEOUT_MS=50          # plugin_opt_redis_timeout_ms in the harness
PERIOD_MS=10
# scheduling slack on a shared 2-core box; under ASan the broker is a few
# times slower and one gap of 289 ms was seen with 200. Either margin still
# fails a loop that waits out the 2 s hang.
MARGIN_MS=200
[ "$ONB_SANITIZED" = 1 ] && MARGIN_MS=400
LOOPS=3

new_device live-pub; register live-pub active
make_spy live-sub
new_device ev-1; register ev-1 active
for i in $(seq 1 $LOOPS); do new_device "load-$i"; register "load-$i" active; done

# connect_loop ID UNTIL_NS OUT: back-to-back connects of ID until UNTIL_NS;
# one line per attempt: "<start ns> <end ns> <exit code>".
connect_loop() {
	local id=$1 until=$2 out=$3 t0 rc
	while [ "$(date +%s%N)" -lt "$until" ]; do
		t0=$(date +%s%N)
		rc=0
		timeout 5 mosquitto_pub $(tls_args "$id") -i "$id" -V 5 -q 0 -t "devices/$id/telemetry" -m x \
			> /dev/null 2>&1 || rc=$?
		echo "$t0 $(date +%s%N) $rc" >> "$out"
	done
}
# sleep_until NS
sleep_until() {
	local left=$(( ($1 - $(date +%s%N)) / 1000000 ))
	[ "$left" -gt 0 ] && sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))" || true
}

raw_bg ev-1 "$T/ev1.out" connect ev-1 wait 20000 close
wait_for 5 grep -q "connack 0" "$T/ev1.out"

python3 "$MQTTRAW" "$MQTT_PORT" "$PKI/ca-bundle.pem" - - gap "$T/live-pub.pem" "$T/live-pub.key" live-pub \
	"$T/live-sub.pem" "$T/live-sub.key" live-sub devices/live-pub/telemetry "$PERIOD_MS" 13 "$T/gap.txt" \
	> "$T/gap.out" 2>&1 &
GAP_PID=$!
BG_PIDS+=("$GAP_PID")
wait_for 5 grep -q "Received PUBLISH from live-pub" "$T/mosquitto.log"

T0=$(date +%s%N)
ms() { echo $((T0 + $1 * 1000000)); }
LOOP_PIDS=()
for i in $(seq 1 $LOOPS); do
	connect_loop "load-$i" "$(ms 10500)" "$T/loop-$i.txt" &
	LOOP_PIDS+=($!)
	BG_PIDS+=($!)
done

# Phases (ms from T0): 0-2000 baseline, 2000-4000 hung, 4000-5000 back,
# 5000-7000 dead, then restarted.
sleep_until "$(ms 2000)"; P_HUNG=$(date +%s%N); pause_redis
sleep_until "$(ms 4000)"; P_RESUME=$(date +%s%N); resume_redis
sleep_until "$(ms 5000)"; P_KILL=$(date +%s%N)
kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2> /dev/null || true; REDIS_PID=""
sleep_until "$(ms 7000)"; P_START=$(date +%s%N)
start_redis
P_READY=$(date +%s%N)

# Events written the moment Redis is back, while the plugin's watcher is
# still reconnecting: all of them must reach the live session, in order.
EVENTS=10
for i in $(seq 1 $((EVENTS / 2))); do
	"$ONBOARDCTL" device quarantine ev-1 --reason "fault $i" > /dev/null
	"$ONBOARDCTL" device activate ev-1 > /dev/null
done
P_EVENTS=$(date +%s%N)

for p in "${LOOP_PIDS[@]}"; do wait "$p" || true; done
wait "$GAP_PID" || true
cat "$T"/loop-*.txt > "$T/attempts.txt"

# ---------------------------------------------------------------- the loop never stalled
# worst_gap FROM TO: largest inter-arrival gap (ms) of messages received in [FROM, TO).
worst_gap() { awk -v a="$1" -v b="$2" 'p && $2 >= a && $2 < b { g = ($2 - p) / 1e6; if (g > m) m = g } { p = $2 } END { printf "%.1f", m }' "$T/gap.txt"; }
worst_latency() { awk -v a="$1" -v b="$2" '$2 >= a && $2 < b { l = ($2 - $1) / 1e6; if (l > m) m = l } END { printf "%.1f", m }' "$T/gap.txt"; }
g_base=$(worst_gap "$T0" "$P_HUNG"); l_base=$(worst_latency "$T0" "$P_HUNG")
g_hung=$(worst_gap "$P_HUNG" "$P_RESUME"); l_hung=$(worst_latency "$P_HUNG" "$P_RESUME")
g_dead=$(worst_gap "$P_KILL" "$P_READY"); l_dead=$(worst_latency "$P_KILL" "$P_READY")
g_after=$(worst_gap "$P_READY" 9999999999999999999); l_after=$(worst_latency "$P_READY" 9999999999999999999)
read -r _ sent _ acked _ received < "$T/gap.out" || true
echo "# 10 ms publisher -> subscriber, worst inter-arrival gap / worst latency (ms):"
echo "#   baseline $g_base / $l_base; Redis hung $g_hung / $l_hung; Redis dead $g_dead / $l_dead; after restart $g_after / $l_after"
echo "#   sent ${sent:-?} acknowledged ${acked:-?} received ${received:-?}"
# The limit: the timeout (plus one period) or, on a machine already noisier
# than that, the baseline gap measured in this run; plus a fixed margin.
limit=$(awk -v b="$g_base" -v t=$((TIMEOUT_MS + PERIOD_MS)) -v m=$MARGIN_MS 'BEGIN { printf "%d", (b > t ? b : t) + m }')
echo "#   limit: max(timeout $TIMEOUT_MS + period $PERIOD_MS, baseline $g_base) + margin $MARGIN_MS = $limit ms"
within() { awk -v g="$1" -v l="$limit" 'BEGIN { exit !(g > 0 && g <= l) }'; }
check "Redis hung: worst loop gap $g_hung ms <= $limit ms" within "$g_hung"
check "Redis dead: worst loop gap $g_dead ms <= $limit ms" within "$g_dead"
check "Redis back: worst loop gap $g_after ms <= $limit ms" within "$g_after"
check "the live session lost nothing: every message acknowledged and delivered" \
	bash -c "[ -n '$sent' ] && [ '$sent' -gt 500 ] && [ '$acked' = '$sent' ] && [ '$received' = '$sent' ]"

# ---------------------------------------------------------------- new connects fail closed
# in_window FROM TO: attempts that started after FROM and ended before TO.
in_window() { awk -v a="$1" -v b="$2" '$1 >= a && $2 <= b' "$T/attempts.txt"; }
# The devices here are in the admission view (docs/operations.md, "The
# admission view"): a hung Redis, which keeps its connections open and
# answers nothing, stops the view only once the feed has not been confirmed
# for plugin_opt_admission_view_stale_ms (1 s); a killed one at once. So the
# hung window starts 1 s + 100 ms in, the dead one 100 ms in.
HUNG_FROM=$(( P_HUNG + 1100000000 )); DEAD_FROM=$(( P_KILL + 100000000 ))
hung_total=$(in_window "$HUNG_FROM" "$P_RESUME" | wc -l); hung_ok=$(in_window "$HUNG_FROM" "$P_RESUME" | awk '$3 == 0' | wc -l)
dead_total=$(in_window "$DEAD_FROM" "$P_START" | wc -l); dead_ok=$(in_window "$DEAD_FROM" "$P_START" | awk '$3 == 0' | wc -l)
view_ok=$(in_window "$P_HUNG" "$HUNG_FROM" | awk '$3 == 0' | wc -l)
echo "# Redis hung: $view_ok connects admitted from the admission view within its 1 s bound"
base_ok=$(awk -v b="$P_HUNG" '$2 <= b && $3 == 0' "$T/attempts.txt" | wc -l)
echo "# connects: baseline $base_ok succeeded; Redis hung $hung_ok/$hung_total succeeded; Redis dead $dead_ok/$dead_total succeeded"
check "baseline: the connect loops were admitted ($base_ok)" test "$base_ok" -gt 0
check "Redis hung: every one of $hung_total new connects refused" bash -c "[ $hung_total -gt 0 ] && [ $hung_ok -eq 0 ]"
check "Redis dead: every one of $dead_total new connects refused" bash -c "[ $dead_total -gt 0 ] && [ $dead_ok -eq 0 ]"
unavail=$(grep -c "connect deny .*reason=registry-unavailable" "$T/mosquitto.log" || true)
check "  ... each refusal logged with its reason ($unavail registry-unavailable lines)" \
	test "$unavail" -ge $((hung_total + dead_total))
check "  ... the outage itself is logged" grep -q "registry unreachable, refusing new connects\|registry connection lost" "$T/mosquitto.log"

# ---------------------------------------------------------------- recovery
# (the smallest value, by awk alone: a reader that stops early, as head
# does after sort, kills the writer with SIGPIPE and, under pipefail, the test)
first_ok=$(awk -v a="$P_READY" '$1 >= a - 2000000000 && $2 >= a && $3 == 0 && (m == "" || $2 < m) { m = $2 } END { print m }' "$T/attempts.txt")
first_try=$(awk -v a="$P_READY" '$2 >= a && (m == "" || $1 < m) { m = $1 } END { print m }' "$T/attempts.txt")
recovery=$(( (${first_ok:-0} - P_READY) / 1000000 ))
echo "# Redis restart: process start -> ready $(( (P_READY - P_START) / 1000000 )) ms; ready -> first admitted connect ended $recovery ms"
check "recovery: a connect is admitted within 1 s of Redis answering again ($recovery ms)" \
	bash -c "[ -n '$first_ok' ] && [ $recovery -le 1000 ]"
check "  ... without a broker restart (same broker process)" kill -0 "$BROKER_PID"
mark_audit_at() { AUDIT_MARK="$(( P_READY / 1000000 ))-0"; }
mark_audit_at
check "  ... and the audit stream receives connect decisions again" audit_match action=connect result=allow 'device=load-'

# ---------------------------------------------------------------- no event lost
applied=$(grep -c "ev-1: \(active -> quarantined\|quarantined -> active\)" "$T/mosquitto.log" || true)
echo "# $EVENTS state events written in the $(( (P_EVENTS - P_READY) / 1000000 )) ms after Redis came back; $applied applied"
check "all $EVENTS events written while the watcher reconnected reached the live session" test "$applied" -eq "$EVENTS"
order=$(grep -o 'ev-1: [a-z]* -> [a-z]*' "$T/mosquitto.log" | awk '{ printf "%s ", $4 }')
check "  ... in order (alternating, ending active)" test "$order" = "$(printf 'quarantined active %.0s' $(seq $((EVENTS / 2))))"
check "  ... without dropping it" bash -c "! grep -q '^closed\\|^disconnect' '$T/ev1.out'"

finish

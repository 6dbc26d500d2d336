# Redis unreachable or hung: fail closed for new connects, keep live sessions,
# recover by itself.
source "$(dirname "$0")/harness.sh"
up

new_device dev-1; register dev-1 active
new_device dev-2; register dev-2 active

# A long-lived publisher fed line by line.
coproc LIVE { mosquitto_pub $(tls_args dev-1) -i dev-1 -V 5 -q 1 -t devices/dev-1/telemetry -l 2>&1; }
BG_PIDS+=("$LIVE_PID")
published() { grep -c "Received PUBLISH from dev-1" "$T/mosquitto.log" || true; }
more_than() { [ "$(published)" -gt "$1" ]; }
live_publishes() {
	local n; n=$(published)
	echo "$1" >&"${LIVE[1]}"
	wait_for 3 more_than "$n"
}
check "live session publishes" live_publishes one


# Hung Redis: every command times out; the broker must not hang with it.
# A device the admission view holds is admitted from it while the event
# feed was confirmed within plugin_opt_admission_view_stale_ms (1 s by
# default; docs/operations.md): past that, it is refused like any other.
pause_redis
sleep 1.2
t0=$(date +%s%N)
check "hung Redis: new connect refused" refused dev-2 dev-2 devices/dev-2/telemetry
t1=$(date +%s%N)
echo "# refused in $(( (t1 - t0) / 1000000 )) ms with Redis stopped (SIGSTOP), incl. client start-up and TLS"
check "hung Redis: live session still publishes" live_publishes two
check "hung Redis: the refusal is logged" grep -q "registry" "$T/mosquitto.log"
resume_redis

# Dead Redis (past the view's staleness bound, as above).
stop_redis
sleep 1.2
check "dead Redis: new connect refused" refused dev-2 dev-2 devices/dev-2/telemetry
check "dead Redis: live session still publishes" live_publishes three

# Redis back on the same port with its data: connects work again, no broker restart.
start_redis
sleep 0.5
back() { pub dev-2 dev-2 devices/dev-2/telemetry; }
check "Redis back: new connects succeed without a broker restart" wait_for 5 back
check "Redis back: revocation still reaches live sessions" bash -c "
	\"$ONBOARDCTL\" device revoke dev-1 >/dev/null &&
	for i in \$(seq 40); do grep -q 'disconnecting dev-1' '$T/mosquitto.log' && exit 0; sleep 0.05; done; exit 1"
exec {LIVE[1]}>&-

# Redis restarts while the broker's connections are idle: they are closed
# under it. Once the feed is back, the very first connect must be admitted
# (the stale connection is noticed before use, not spent on a client).
restored_lines() { grep -c "event feed restored" "$T/mosquitto.log" || true; }
restored_before=$(restored_lines)
stop_redis
start_redis
feed_back() { [ "$(restored_lines)" -gt "$restored_before" ]; }
check "Redis restarted while idle: the event feed is restored" wait_for 10 feed_back
sleep 0.5   # the connector's spare: checked and remade every redis_retry_ms (250)
check "  ... and the first connect after it is admitted, not refused" pub dev-2 dev-2 devices/dev-2/telemetry

# The plugin's connections are cut and a revocation is written before the
# watcher is back: it must resume from the last event it saw, not from "now".
sub_bg dev-2 dev-2 'devices/dev-2/commands/#' "$T/dev2.out"
wait_subscribed dev-2
rcli CLIENT KILL TYPE normal >/dev/null
"$ONBOARDCTL" device revoke dev-2 >/dev/null
check "an event written while the feed was cut is still applied" \
	wait_for 3 grep -q "disconnecting dev-2" "$T/mosquitto.log"

finish

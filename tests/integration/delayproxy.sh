# tests/tools/delayproxy, the delaying TCP proxy the benchmarks put between
# a broker and Redis: it forwards both ways unchanged and in order, with
# bounded buffers, adds at least the round trip it is given, and exits
# cleanly on SIGTERM. (Only lower bounds on time are checked: load can only
# make things slower.)
source "$(dirname "$0")/harness.sh"
PROXY="$ONB_BUILD_DIR/tests/tools/delayproxy"
start_redis

check "--help exits 0 and names --rtt-ms" bash -c "'$PROXY' --help | grep -q -- --rtt-ms"
bad_usage() { local rc=0; "$PROXY" "$@" >/dev/null 2>&1 || rc=$?; [ "$rc" = 2 ]; }
check "no target: usage error (2)" bad_usage --listen 0 --rtt-ms 1
check "no delay: usage error (2)" bad_usage --listen 0 --target "$REDIS_PORT"
check "a negative delay: usage error (2)" bad_usage --listen 0 --target "$REDIS_PORT" --delay-ms -1
check "two delays: usage error (2)" bad_usage --listen 0 --target "$REDIS_PORT" --delay-ms 1 --rtt-ms 2

# 20 ms round trip, 64 KiB per direction (a 4 MB value must pass through
# the bound many times over)
"$PROXY" --listen 0 --target "$REDIS_PORT" --rtt-ms 20 --buffer-bytes 65536 > "$T/proxy.port" 2> "$T/proxy.log" &
PROXY_PID=$!
BG_PIDS+=("$PROXY_PID")
wait_for 5 test -s "$T/proxy.port" || { echo "delayproxy did not start"; cat "$T/proxy.log"; exit 1; }
PP=$(head -1 "$T/proxy.port")
via() { redis-cli -p "$PP" "$@"; }

check "PING through the proxy" bash -c "[ \"\$(redis-cli -p $PP ping)\" = PONG ]"
head -c 3000000 /dev/urandom | base64 -w0 > "$T/big"
via -x set big < "$T/big" >/dev/null
via --raw get big > "$T/big.back"
# redis-cli ends the value with a line break
check "a 4 MB value comes back byte for byte" cmp -s <(cat "$T/big"; echo) "$T/big.back"
# 2000 commands in one write (inline protocol), the replies read back
pipelined() {
	local i reply
	exec 3<>"/dev/tcp/127.0.0.1/$PP"
	seq 1 2000 | sed 's/.*/INCR counter\r/' >&3
	for i in $(seq 1 2000); do
		IFS= read -r -t 10 reply <&3 || break
		[ "$reply" = ":$i"$'\r' ] || break
	done
	exec 3>&-
	[ "$i" = 2000 ] && [ "$reply" = ":2000"$'\r' ]
}
check "2000 pipelined replies in order" pipelined

# 10 PINGs one after the other: at least 10 x 20 ms
t0=$(date +%s%N)
for _ in $(seq 10); do via ping >/dev/null; done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "# 10 sequential PINGs through --rtt-ms 20: $ms ms"
check "10 round trips take at least 200 ms" test "$ms" -ge 200

# SIGTERM with a client connected: exit status 0
coproc HELD { redis-cli -p "$PP"; }
BG_PIDS+=("$HELD_PID")
echo ping >&"${HELD[1]}"
sleep 0.2
kill -TERM "$PROXY_PID"
rc=0; wait "$PROXY_PID" || rc=$?
check "SIGTERM: exit status 0" test "$rc" = 0
refute "the port is closed after SIGTERM" redis-cli -p "$PP" ping
finish

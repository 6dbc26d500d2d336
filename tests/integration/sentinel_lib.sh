# Sourced by harness.sh: a Redis primary, a replica and one sentinel on
# loopback; the broker, claimsvc and onboardctl find the primary through the
# sentinel (REGISTRY_URL, ONBOARD_REDIS_URL).
#
# start_sentinel_registry: starts the three (the primary is the harness's
# Redis, $REDIS_PORT/$REDIS_PID); sets REPLICA_PORT, SENTINEL_PORT, MASTER
# and SENTINEL_URL.
MASTER=onbprimary

start_sentinel_registry() {
	start_redis
	rcli CONFIG SET repl-diskless-sync-delay 0 >/dev/null

	REPLICA_PORT=$(freeport)
	mkdir -p "$T/replica"
	"$REDIS_SERVER" --port "$REPLICA_PORT" --bind 127.0.0.1 --dir "$T/replica" --save '' --appendonly no \
		--replicaof 127.0.0.1 "$REDIS_PORT" --daemonize no --logfile "$T/replica.log" &
	BG_PIDS+=($!)

	SENTINEL_PORT=$(freeport)
	mkdir -p "$T/sentinel"
	cat > "$T/sentinel/sentinel.conf" <<CONF
port $SENTINEL_PORT
bind 127.0.0.1
daemonize no
dir $T/sentinel
logfile $T/sentinel.log
sentinel monitor $MASTER 127.0.0.1 $REDIS_PORT 1
sentinel down-after-milliseconds $MASTER 500
sentinel failover-timeout $MASTER 2000
sentinel parallel-syncs $MASTER 1
CONF
	"$REDIS_SERVER" "$T/sentinel/sentinel.conf" --sentinel &
	BG_PIDS+=($!)

	wait_for 10 replica_synced || { echo "replica did not sync"; exit 1; }
	# After a full sync the primary streams nothing until the replica's first
	# REPLCONF ACK (sent once a second): wait until a marker write has arrived.
	rcli SET onb:test:marker 1 >/dev/null
	wait_for 10 replica_has_marker || { echo "replica does not receive writes"; exit 1; }
	wait_for 15 sentinel_knows_replica || { echo "sentinel did not discover the replica"; exit 1; }

	SENTINEL_URL="redis-sentinel://127.0.0.1:$SENTINEL_PORT/$MASTER"
	REGISTRY_URL=$SENTINEL_URL
	export ONBOARD_REDIS_URL=$SENTINEL_URL
}

replica_synced() { redis-cli -p "$REPLICA_PORT" INFO replication | grep "master_link_status:up" >/dev/null; }
replica_has_marker() { [ "$(redis-cli -p "$REPLICA_PORT" GET onb:test:marker)" = 1 ]; }
sentinel_knows_replica() {
	redis-cli -p "$SENTINEL_PORT" SENTINEL replicas "$MASTER" | grep -x "127.0.0.1:$REPLICA_PORT" >/dev/null
}

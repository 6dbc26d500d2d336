# Redis Cluster: NOT supported (docs/registry.md, "Redis Cluster"). This test
# pins down what happens on a real 3-master cluster on loopback, so that the
# documented limits stay true, and shows that it fails closed:
#  - every registry write is a multi-key Lua script whose keys live in
#    different slots: Redis refuses it with CROSSSLOT, nothing is written;
#  - hiredis 0.14 does not follow MOVED: a read of a key on another node fails;
#  - the plugin pointed at a cluster node refuses connects.
source "$(dirname "$0")/harness.sh"

make_pki
PORTS=()
for i in 1 2 3; do
	p=$(freeport)
	bus=$(freeport) # the default bus port, p + 10000, may be taken or above 65535
	PORTS+=("$p")
	mkdir -p "$T/node$p"
	(cd "$T/node$p" && exec "$REDIS_SERVER" --port "$p" --cluster-port "$bus" --bind 127.0.0.1 \
		--cluster-enabled yes --cluster-config-file nodes.conf --save '' --appendonly no \
		--daemonize no --logfile "$T/node$p.log") &
	BG_PIDS+=($!)
done
for p in "${PORTS[@]}"; do wait_for 5 redis-cli -p "$p" ping || { echo "node $p did not start"; exit 1; }; done
redis-cli --cluster create "127.0.0.1:${PORTS[0]}" "127.0.0.1:${PORTS[1]}" "127.0.0.1:${PORTS[2]}" \
	--cluster-replicas 0 --cluster-yes > "$T/create.log" 2>&1 || { cat "$T/create.log"; exit 1; }
cluster_ok() { redis-cli -p "${PORTS[0]}" CLUSTER INFO | grep "cluster_state:ok" >/dev/null; }
wait_for 10 cluster_ok || { echo "cluster did not form"; exit 1; }

REDIS_PORT=${PORTS[0]}
export ONBOARD_REDIS_URL="redis://127.0.0.1:${PORTS[0]}/0"
new_device dev-1

for p in "${PORTS[@]}"; do
	check "device register on node $p is refused with CROSSSLOT" bash -c "
		! '$ONBOARDCTL' --redis redis://127.0.0.1:$p/0 device register --id dev-1 --cert '$T/dev-1.pem' \
			--state active 2>'$T/err' && grep -q CROSSSLOT '$T/err'"
done
total_keys() { local n=0; for p in "${PORTS[@]}"; do n=$((n + $(redis-cli -p "$p" DBSIZE))); done; echo "$n"; }
check "nothing was written anywhere" test "$(total_keys)" -eq 0
check "policy init is refused with CROSSSLOT" bash -c "
	! '$ONBOARDCTL' policy init '$ONB_SOURCE_DIR/policies' 2>'$T/err' && grep -q CROSSSLOT '$T/err'"

# A read of a key that lives on another node: hiredis does not follow MOVED.
redis-cli -c -p "${PORTS[0]}" HSET "onb:dev:{dev-1}" state active > /dev/null
owner=$(redis-cli -p "${PORTS[0]}" CLUSTER KEYSLOT "onb:dev:{dev-1}")
other=""
for p in "${PORTS[@]}"; do
	redis-cli -p "$p" CLUSTER COUNTKEYSINSLOT "$owner" | grep -x 0 >/dev/null && { other=$p; break; }
done
check "a read on a node that does not own the key fails with MOVED" bash -c "
	! '$ONBOARDCTL' --redis redis://127.0.0.1:$other/0 device show dev-1 2>'$T/err' && grep -q MOVED '$T/err'"

# The plugin against a cluster node: the device's records cannot be read
# coherently, so connects are refused (fail closed), never admitted.
start_broker
refute "the plugin on a cluster refuses the connect" pub dev-1 dev-1 devices/dev-1/telemetry

finish

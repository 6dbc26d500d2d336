# Fault injection: Redis refuses writes but still answers reads, twice:
# 1. READONLY: it became a replica (REPLICAOF a master that does not exist);
# 2. MISCONF: stop-writes-on-bgsave-error after a failed BGSAVE (its data
#    directory was removed under it: the disk is gone).
# onboardctl must fail with one clear line naming the cause, claimsvc must
# answer ServiceUnavailable (500) and log the cause, nothing may be half-written
# (the registry is byte-for-byte the same afterwards), an ownership token
# presented meanwhile must still work once Redis takes writes again, and a
# revoked device must stay out. Audit entries cannot be written while Redis
# refuses writes: that is the fault itself.
source "$(dirname "$0")/../integration/harness.sh"
source "$(dirname "$0")/../security/lib.sh"
# Redis with save points refuses SIGTERM while it cannot save: clear them first.
trap 'rc=$?; redis-cli -p "$REDIS_PORT" CONFIG SET save "" > /dev/null 2>&1; (exit $rc); cleanup' EXIT

make_pki
REDIS_PORT=$(freeport)
mkdir -p "$T/rdb"
"$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$T/rdb" --appendonly no --save '' \
	--daemonize no --logfile "$T/redis.log" &
REDIS_PID=$!
wait_for 5 redis-cli -p "$REDIS_PORT" ping || { echo "redis did not start"; exit 1; }
export ONBOARD_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
"$ONBOARDCTL" policy init "$ONB_SOURCE_DIR/policies" > /dev/null
start_broker
start_claimsvc claimsvc-1

CSR_T='$aws/certificates/create-from-csr/json'
REG_T='$aws/provisioning-templates/default/provision/json'
printf 'serial\nR0001\nR0002\n' > "$T/allow.csv"
"$ONBOARDCTL" allowlist import "$T/allow.csv" > /dev/null
new_device dev-1; register dev-1 active
new_device dev-rev; register dev-rev active
"$ONBOARDCTL" device revoke dev-rev > /dev/null
new_device dev-u; register dev-u unclaimed
new_device dev-new
new_device claim-a claim-ca
new_csr c1 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=x
csr_json "$T/c1.csr" > "$T/c1.json"

ask() { # ask AS CLIENTID TOPIC FILE: KIND accepted|rejected|none, $T/reply.json
	local out
	out=$("$ONB_BUILD_DIR/tests/tools/mqttreq" "$MQTT_PORT" "$PKI/ca-bundle.pem" "$T/$1.pem" "$T/$1.key" \
		"$2" "$3" "$4" 5000 "$3/accepted" "$3/rejected" 2> /dev/null) || true
	KIND=$(sed -n '1s|^[^ ]*/\([a-z]*\) .*|\1|p' <<<"$out"); KIND=${KIND:-none}
	sed -n '1s|^[^ ]* ||p' <<<"$out" > "$T/reply.json"
}
field() { jq -r ".$1 // empty" "$T/reply.json" 2> /dev/null; }
token_for() { # token_for CLIENTID SERIAL: a token (before the fault), RegisterThing document in $T/reg-SERIAL.json
	ask claim-a "$1" "$CSR_T" "$T/c1.json"
	jq -cn --arg t "$(field certificateOwnershipToken)" --arg s "$2" \
		'{certificateOwnershipToken: $t, parameters: {SerialNumber: $s}}' > "$T/reg-$2.json"
}
# snapshot: every key (rate-limit counters aside, they expire by design)
# with its content, read through two pipelined redis-cli runs.
snapshot() {
	rcli --scan | grep -v '^onb:rl:' | sort > "$T/keys"
	sed 's/.*/TYPE "&"/' "$T/keys" | rcli --raw > "$T/types"
	paste -d ' ' "$T/types" "$T/keys" | while read -r type key; do
		echo "ECHO \"== $key $type\""
		case $type in
			hash) echo "HGETALL \"$key\"" ;;
			string) echo "GET \"$key\"" ;;
			stream) echo "XLEN \"$key\""; echo "XREVRANGE \"$key\" + - COUNT 1" ;;
			set) echo "SMEMBERS \"$key\"" ;;
			zset) echo "ZRANGE \"$key\" 0 -1 WITHSCORES" ;;
		esac
	done | rcli --raw
}
# refused_clearly WORD CMD...: exit 1 with one stderr line that names WORD.
refused_clearly() {
	local w=$1 rc=0; shift
	"$@" > /dev/null 2> "$T/err" || rc=$?
	[ "$rc" -eq 1 ] && [ "$(wc -l < "$T/err")" -eq 1 ] && grep -q "$w" "$T/err"
}
# admitted N: of N connects of dev-1 100 ms apart, how many were admitted.
admitted() {
	local n=0
	for _ in $(seq "$1"); do
		[[ $(raw dev-1 connect dev-1 close) == *"connack 0"* ]] && n=$((n + 1))
		sleep 0.1
	done
	echo "$n"
}

# fault_phase NAME WORD: the checks, while Redis refuses writes with WORD.
fault_phase() {
	local name=$1 w=$2 before after n
	before=$(snapshot)
	check "$name: onboardctl device register fails, naming $w" \
		refused_clearly "$w" "$ONBOARDCTL" device register --id dev-new --cert "$T/dev-new.pem"
	check "$name: onboardctl device revoke fails, naming $w" refused_clearly "$w" "$ONBOARDCTL" device revoke dev-1
	check "$name: onboardctl claimcode issue fails, naming $w" \
		refused_clearly "$w" "$ONBOARDCTL" claimcode issue --device dev-u
	check "$name: onboardctl policy put fails, naming $w" \
		refused_clearly "$w" "$ONBOARDCTL" policy put device "$ONB_SOURCE_DIR/policies/device.json"
	printf 'serial\nR0003\n' > "$T/allow2.csv"
	rc=0; "$ONBOARDCTL" allowlist import "$T/allow2.csv" > /dev/null 2> "$T/err" || rc=$?
	check "$name: onboardctl allowlist import fails, naming $w (exit $rc)" \
		bash -c "[ $rc -eq 1 ] && grep -q '$w' '$T/err'"
	local logged; logged=$(grep -c "$w" "$T/claimsvc-1.log" || true)
	ask claim-a "$name-csr" "$CSR_T" "$T/c1.json"
	check "$name: claimsvc answers a CSR with ServiceUnavailable 500" \
		bash -c "[ '$KIND' = rejected ] && [ '$(field errorCode)' = ServiceUnavailable ] && [ '$(field statusCode)' = 500 ]"
	ask claim-a "$3" "$REG_T" "$T/reg-$4.json"
	check "$name: claimsvc answers RegisterThing with ServiceUnavailable 500" \
		bash -c "[ '$KIND' = rejected ] && [ '$(field errorCode)' = ServiceUnavailable ]"
	check "$name: claimsvc's log names the cause ($w)" test "$(grep -c "$w" "$T/claimsvc-1.log" || true)" -gt "$logged"
	check "$name: the revoked device stays out" test "$(raw dev-rev connect dev-rev close | sed -n 1p)" = "connack 135"
	n=$(admitted 6)
	echo "# $name: $n of 6 connects of an active device (100 ms apart) admitted while the audit could not be written"
	after=$(snapshot)
	check "$name: nothing was written, not even half (registry unchanged, $(wc -l < "$T/keys") keys)" \
		test "$before" = "$after"
	[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after") || true; } | sed -n '1,10s/^/#   /p'
}

# ---------------------------------------------------------------- READONLY
token_for ro-1 R0001
check "before the fault: a token for R0001" test -s "$T/reg-R0001.json"
rcli REPLICAOF 127.0.0.1 "$(freeport)" > /dev/null
wait_for 5 bash -c "redis-cli -p $REDIS_PORT SET onb:probe 1 2>&1 | grep -q READONLY"
fault_phase readonly READONLY ro-1 R0001
rcli REPLICAOF NO ONE > /dev/null
ask claim-a ro-1 "$REG_T" "$T/reg-R0001.json"
check "writable again: the same token registers R0001 (it was not burnt)" \
	bash -c "[ '$KIND' = accepted ] && [ '$(field thingName)' = R0001 ]"
check "  ... and onboardctl writes again" "$ONBOARDCTL" device quarantine dev-1

# ---------------------------------------------------------------- MISCONF
token_for mc-1 R0002
rcli CONFIG SET save "3600 1" > /dev/null
rm -rf "$T/rdb"
rcli BGSAVE > /dev/null
check "BGSAVE fails with the data directory gone" \
	wait_for 5 bash -c "redis-cli -p $REDIS_PORT INFO persistence | grep -q 'rdb_last_bgsave_status:err'"
fault_phase misconf MISCONF mc-1 R0002
rcli CONFIG SET stop-writes-on-bgsave-error no > /dev/null
rcli CONFIG SET save '' > /dev/null
ask claim-a mc-1 "$REG_T" "$T/reg-R0002.json"
check "writes allowed again: the same token registers R0002" \
	bash -c "[ '$KIND' = accepted ] && [ '$(field thingName)' = R0002 ]"
check "  ... and onboardctl writes again" "$ONBOARDCTL" device activate dev-1

finish

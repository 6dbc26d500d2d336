# Production Redis (docs/operations.md, "Production Redis"):
#  1. an ACL user with exactly the rule line the docs give operators: the
#     plugin, claimsvc and onboardctl run every flow with it, Redis logs no
#     denied command, and the user cannot touch anything else;
#  2. a Redis listening on a Unix socket only (co-located, no TCP at all);
#  3. a remote Redis that speaks TLS only, reached through a local stunnel
#     client (hiredis 0.14 has no TLS), when stunnel4 is installed.
source "$(dirname "$0")/harness.sh"

SECRET="s3cret-for:onb/test"
# The broker and claimsvc are given REGISTRY_URL (harness: registry_url).
restart_broker() {
	[ -z "$BROKER_PID" ] || stop_broker
	[ ! -f "$T/mosquitto.log" ] || mv "$T/mosquitto.log" "$T/mosquitto.log.$(date +%s%N)"
	start_broker
}

# The ACL line of docs/operations.md, between its markers, with our secret.
acl_line=$(sed -n '/<!-- redis-acl:begin -->/,/<!-- redis-acl:end -->/p' "$ONB_SOURCE_DIR/docs/operations.md" \
	| grep '^ACL SETUSER onboard ')
[ -n "$acl_line" ] || { echo "no ACL line between the redis-acl markers in docs/operations.md"; exit 1; }
read -r -a acl_args <<<"${acl_line/>CHANGE-ME/>$SECRET}"

make_pki
start_redis
redis-cli -p "$REDIS_PORT" ACL SETUSER admin on '>adminpw' '~*' '&*' '+@all' >/dev/null
redis-cli -p "$REDIS_PORT" "${acl_args[@]}" >/dev/null
redis-cli -p "$REDIS_PORT" --user admin --pass adminpw --no-auth-warning ACL SETUSER default off >/dev/null
rcli() { redis-cli -p "$REDIS_PORT" --user admin --pass adminpw --no-auth-warning "$@"; }
check "the default user is off" bash -c "redis-cli -p $REDIS_PORT PING 2>&1 | grep -q NOAUTH"

# ---------------------------------------------------------------- 1. ACL
ACL_URL="redis://onboard:$SECRET@127.0.0.1:$REDIS_PORT/0"
export ONBOARD_REDIS_URL=$ACL_URL
REGISTRY_URL=$ACL_URL
check "onboardctl as the ACL user: policy init" "$ONBOARDCTL" policy init "$ONB_SOURCE_DIR/policies"
restart_broker
new_device dev-1; register dev-1 active
new_device dev-2; register dev-2 active
check "ACL user: a device connects through the plugin" pub dev-1 dev-1 devices/dev-1/telemetry

start_claimsvc claimsvc-1
printf 'serial,birth_fp,batch\nSN0000,,b1\nSN0001,,b1\n' > "$T/allow.csv"
check "ACL user: allowlist import" "$ONBOARDCTL" allowlist import "$T/allow.csv"
check "ACL user: claimsvc provisions a device" devsim_claim --serial SN0000
check "ACL user: claim code issued and redeemed" bash -c "
	uri=\$('$ONBOARDCTL' claimcode issue --device SN0000 --format uri) &&
	'$ONBOARDCTL' claim --tenant acme \"\$uri\" >/dev/null"
sub_bg dev-2 dev-2 'devices/dev-2/commands/#' "$T/dev2.out"
wait_subscribed dev-2
"$ONBOARDCTL" device revoke dev-2 --reason acl-test >/dev/null
check "ACL user: a revocation reaches the live session" \
	wait_for 3 grep -q "disconnecting dev-2: device is now revoked" "$T/mosquitto.log"
check "ACL user: device list, show, audit" bash -c "
	'$ONBOARDCTL' device list >/dev/null && '$ONBOARDCTL' device show dev-1 >/dev/null &&
	'$ONBOARDCTL' audit --device dev-2 | grep -q acl-test"
check "ACL user: device rotate, list --expiring, decommission" bash -c "
	'$ONBOARDCTL' device rotate dev-1 >/dev/null && '$ONBOARDCTL' device list --expiring 3650d >/dev/null &&
	'$ONBOARDCTL' device decommission dev-2 >/dev/null"
check "ACL user: a device told to rotate still connects (plugin reads and writes)" \
	pub dev-1 dev-1 devices/dev-1/telemetry
check "ACL user: crl export" "$ONBOARDCTL" crl export --ca "$PKI/device-ca" --out "$T/crl.pem"
check "ACL user: the decommissioned certificate is on the CRL" bash -c "
	openssl crl -in '$T/crl.pem' -noout -text | grep -q \"Serial Number: \$(openssl x509 -in '$T/dev-2.pem' -noout -serial | cut -d= -f2)\""
check "ACL user: policy put and get" bash -c "
	'$ONBOARDCTL' policy get device > '$T/p.json' && '$ONBOARDCTL' policy put device '$T/p.json' >/dev/null"
acl_log=$(rcli ACL LOG 10)
check "Redis denied nothing to the ACL user (ACL LOG is empty)" test -z "$acl_log"
[ -z "$acl_log" ] || echo "$acl_log" | sed -n 1,40p

# as_onboard_refused CMD...: the ACL user gets NOPERM for CMD.
as_onboard_refused() {
	redis-cli -p "$REDIS_PORT" --user onboard --pass "$SECRET" --no-auth-warning "$@" 2>&1 | grep NOPERM >/dev/null
}
check "the ACL user cannot read other keys" as_onboard_refused GET other:key
check "the ACL user cannot FLUSHALL" as_onboard_refused FLUSHALL
check "the ACL user cannot CONFIG SET" as_onboard_refused CONFIG SET dir /tmp
check "the ACL user cannot SCRIPT FLUSH" as_onboard_refused SCRIPT FLUSH
check "the ACL user cannot KEYS" as_onboard_refused KEYS '*'
check "a wrong password is refused without echoing it" bash -c "
	! '$ONBOARDCTL' --redis 'redis://onboard:not-the-secret@127.0.0.1:$REDIS_PORT/0' device show dev-1 2>'$T/err' &&
	grep -q 'AUTH' '$T/err' && ! grep -q 'not-the-secret' '$T/err'"
check "the plugin never logs the password" bash -c "! grep -qF '$SECRET' $T/mosquitto.log*"

# ------------------------------------------------------- 2. Unix socket only
stop_claimsvc_all() { for p in "${CLAIMSVC_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; CLAIMSVC_PIDS=(); }
stop_claimsvc_all
SOCK="$T/redis.sock"
mkdir -p "$T/unix"
"$REDIS_SERVER" --port 0 --unixsocket "$SOCK" --unixsocketperm 700 --dir "$T/unix" --save '' \
	--appendonly no --daemonize no --logfile "$T/redis-unix.log" &
BG_PIDS+=($!)
wait_for 5 redis-cli -s "$SOCK" ping || { echo "unix-socket redis did not start"; exit 1; }
check "the socket is private to its owner (0700)" test "$(stat -c %a "$SOCK")" = 700
check "that Redis listens on no TCP port" bash -c "redis-cli -s '$SOCK' CONFIG GET port | tail -1 | grep -qx 0"
redis-cli -s "$SOCK" "${acl_args[@]}" >/dev/null
UNIX_URL="unix://onboard:$SECRET@$SOCK?db=0"
export ONBOARD_REDIS_URL=$UNIX_URL
REGISTRY_URL=$UNIX_URL
check "unix socket: onboardctl policy init" "$ONBOARDCTL" policy init "$ONB_SOURCE_DIR/policies"
restart_broker
new_device dev-3; register dev-3 active
check "unix socket: a device connects through the plugin" pub dev-3 dev-3 devices/dev-3/telemetry
refute "unix socket: dev-1 (registered only in the TCP Redis) is unknown here" pub dev-1 dev-1 devices/dev-1/telemetry
sub_bg dev-3 dev-3 'devices/dev-3/commands/#' "$T/dev3.out"
wait_subscribed dev-3
"$ONBOARDCTL" device revoke dev-3 >/dev/null
check "unix socket: a revocation reaches the live session" \
	wait_for 3 grep -q "disconnecting dev-3: device is now revoked" "$T/mosquitto.log"

# ------------------------------------ 3. TLS to Redis through a local stunnel
STUNNEL=$(command -v stunnel4 || command -v stunnel || true)
if [ -z "$STUNNEL" ]; then
	echo "# skipped the stunnel part: stunnel4 is not installed (apt-get install stunnel4)"
else
	TLS_PORT=$(freeport)
	mkdir -p "$T/tls"
	"$REDIS_SERVER" --port 0 --tls-port "$TLS_PORT" --bind 127.0.0.1 \
		--tls-cert-file "$PKI/server.pem" --tls-key-file "$PKI/server.key" \
		--tls-ca-cert-file "$PKI/ca-bundle.pem" --tls-auth-clients yes \
		--dir "$T/tls" --save '' --appendonly no --daemonize no --logfile "$T/redis-tls.log" &
	BG_PIDS+=($!)
	new_device redis-client service-ca
	LOCAL_PORT=$(freeport)
	cat > "$T/stunnel.conf" <<CONF
foreground = yes
pid =
output = $T/stunnel.log
[redis]
client = yes
accept = 127.0.0.1:$LOCAL_PORT
connect = 127.0.0.1:$TLS_PORT
cert = $T/redis-client.pem
key = $T/redis-client.key
CAfile = $PKI/ca-bundle.pem
verifyChain = yes
checkHost = localhost
CONF
	"$STUNNEL" "$T/stunnel.conf" &
	BG_PIDS+=($!)
	wait_for 10 redis-cli -p "$LOCAL_PORT" ping || { echo "stunnel to the TLS Redis failed"; cat "$T/stunnel.log"; exit 1; }
	check "the TLS Redis refuses plaintext" bash -c "! redis-cli -p $TLS_PORT ping >/dev/null 2>&1"
	redis-cli -p "$LOCAL_PORT" "${acl_args[@]}" >/dev/null
	TUNNEL_URL="redis://onboard:$SECRET@127.0.0.1:$LOCAL_PORT/0"
	export ONBOARD_REDIS_URL=$TUNNEL_URL
	REGISTRY_URL=$TUNNEL_URL
	check "stunnel: onboardctl policy init" "$ONBOARDCTL" policy init "$ONB_SOURCE_DIR/policies"
	restart_broker
	new_device dev-4; register dev-4 active
	check "stunnel: a device connects through the plugin" pub dev-4 dev-4 devices/dev-4/telemetry
	sub_bg dev-4 dev-4 'devices/dev-4/commands/#' "$T/dev4.out"
	wait_subscribed dev-4
	"$ONBOARDCTL" device revoke dev-4 >/dev/null
	check "stunnel: a revocation reaches the live session" \
		wait_for 3 grep -q "disconnecting dev-4: device is now revoked" "$T/mosquitto.log"
	check "stunnel: the traffic went over TLS" grep -q "connected remote server" "$T/stunnel.log"
fi

finish

# The admission view (plugin/admview_link.c, docs/registry.md "The admission
# view"): known devices are admitted from memory, changes reach the view
# through onb:events, misses go to Redis, and the view is not used (fail
# closed) when the feed is lost or was trimmed past the broker's position.
source "$(dirname "$0")/harness.sh"
BROKER_EXTRA="plugin_opt_metrics_interval_s 1"
up

# stat NAME: a connects counter of this broker's last counters document.
stat() { rcli --raw GET "$(rcli --raw KEYS 'onb:stats:broker:*' | sed -n 1p)" \
	| sed -n "s/.*\"$1\":\\([0-9]*\\).*/\\1/p"; }
# stat_above NAME N: the counter went above N within 5 s.
stat_above() { local n; n=$(stat "$1"); [ -n "$n" ] && [ "$n" -gt "$2" ]; }
view_loaded() { grep -q "admission view loaded" "$T/mosquitto.log"; }
# connect_retry AS ID: one publish, tried again for up to 3 s.
pub_retry() { local i; for i in $(seq 15); do pub "$@" && return 0; sleep 0.2; done; return 1; }

for d in dev-1 dev-2 dev-3 dev-4; do new_device $d; register $d active; done
check "the view loads at start" wait_for 10 view_loaded

check "a known device connects" pub dev-1 dev-1 devices/dev-1/telemetry
check "  ... decided by the view" wait_for 5 stat_above view_hits 0
hits=$(stat view_hits)

"$ONBOARDCTL" device revoke dev-2 --reason "test" >/dev/null
check "a revocation reaches the view: the device is refused" refused dev-2 dev-2 devices/dev-2/x
check "  ... by the view (no Redis read)" wait_for 5 stat_above view_hits "$hits"
check "  ... and audited" audit_has "device is revoked"

# A record written without an event (what no script does) is a miss: Redis
# decides, and admits.
new_device dev-quiet
fp=$(openssl x509 -in "$T/dev-quiet.pem" -outform DER | sha256sum | cut -d' ' -f1)
rcli HSET "onb:dev:{dev-quiet}" state active cert_fp "$fp" created 1 updated 1 >/dev/null
rcli SET "onb:fp:$fp" dev-quiet >/dev/null
misses=$(stat view_misses); misses=${misses:-0}
check "a device the view does not hold is admitted from Redis" pub dev-quiet dev-quiet devices/dev-quiet/t
check "  ... as a miss" wait_for 5 stat_above view_misses "$misses"
# Mosquitto 2.1 answers it later (delayed authentication, read off the
# broker's thread); 2.0 reads Redis on the broker's thread, as before.
if grep -q "mosquitto version 2\.0\." "$T/mosquitto.log"; then
	check "  ... read on the broker's thread (2.0 has no delayed authentication)" \
		grep -q "no delayed authentication in this broker" "$T/mosquitto.log"
else
	check "  ... through delayed authentication (2.1)" wait_for 5 stat_above delayed 0
fi
# Refusals through the same path: a certificate bound to nothing.
new_device dev-nobody
check "an unregistered certificate is refused (miss, read from Redis)" refused dev-nobody dev-nobody devices/dev-nobody/x
check "  ... and audited" audit_has "certificate is not bound to a device"

# Fail closed: Redis stopped (the feed is not confirmed within 1 s): a
# device the view holds is refused, not admitted from a view that may be
# missing a revocation.
pause_redis
sleep 1.5
refute "feed lost: a device in the view is not admitted from it" pub dev-3 dev-3 devices/dev-3/x
resume_redis
check "feed back: the device connects again" pub_retry dev-3 dev-3 devices/dev-3/x

# The stream trimmed past the broker's position: the broker sleeps, its
# connections are closed (a blocked XREAD would otherwise get the entry at
# once), a revocation is written and the stream emptied; it drops the view
# and loads it again, which has the revocation.
kill -STOP "$BROKER_PID"
rcli CLIENT KILL TYPE normal >/dev/null
"$ONBOARDCTL" device revoke dev-4 --reason "test" >/dev/null
rcli XTRIM onb:events MAXLEN 0 >/dev/null
kill -CONT "$BROKER_PID"
check "a trimmed feed drops the view" wait_for 5 grep -q "admission view dropped (the event stream was trimmed" "$T/mosquitto.log"
loaded_twice() { [ "$(grep -c 'admission view loaded' "$T/mosquitto.log")" -ge 2 ]; }
check "  ... and loads it again" wait_for 10 loaded_twice
check "  ... with every device" grep -q "admission view loaded: 5 devices" "$T/mosquitto.log"
check "  ... which has the revocation" refused dev-4 dev-4 devices/dev-4/x
check "a device still active connects after the reload" pub_retry dev-1 dev-1 devices/dev-1/telemetry

finish

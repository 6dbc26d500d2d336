# The plugin's registry writer (plugin/writer.c) while Redis is hung: audit
# entries wait in its bounded queue and reach onb:audit, in order, once
# Redis answers again; beyond the bound they are dropped without blocking
# the broker, counted (audit_dropped), and reported by one `audit-dropped`
# entry. The bound is set to 3 here (plugin_opt_audit_queue_max) so that a
# few refused connects overflow it.
source "$(dirname "$0")/../integration/harness.sh"
# (admission view off: every connect asks Redis, so every connect made
# while it hangs is refused at once and audited; the view's own rule when
# Redis hangs is tested in faults/redis_outage.sh)
BROKER_EXTRA=$'plugin_opt_audit_queue_max 3\nplugin_opt_metrics_interval_s 1\nplugin_opt_admission_view_stale_ms 0'
up

N=12
for i in $(seq 1 $N); do new_device "q-$i"; register "q-$i" active; done
new_device first; register first active
check "a device connects while Redis answers" pub first first devices/first/telemetry
check "  ... its connect is audited by the writer" audit_has "connect" "first" "allow"

pause_redis
# distinct client ids: distinct refusal kinds, each written (not only counted)
t0=$(date +%s%N)
for i in $(seq 1 $N); do refused "q-$i" "q-$i" "devices/q-$i/telemetry" || true; done
t1=$(date +%s%N)
echo "# $N refused connects with Redis hung: $(( (t1 - t0) / 1000000 )) ms"
check "connects are refused while Redis is hung (fail closed)" \
	grep -q "connect deny device=- client=q-$N .*reason=registry-unavailable" "$T/mosquitto.log"
resume_redis

check "the queued refusals reach onb:audit once Redis is back" audit_has "registry-unavailable" "q-1"
check "entries beyond the bound are reported by one audit-dropped entry with the count" \
	audit_has "audit-dropped" "queue-full" "writer queue bound 3"
dropped() { "$ONBOARDCTL" --json stats | jq -e '[to_entries[] | select(.key | startswith("broker/")) | .value.audit_dropped // 0] | add > 0' >/dev/null; }
check "  ... and counted in the broker's audit_dropped" wait_for 5 dropped
# every refusal is either in the trail or in the count, none twice
# (at-least-once: the entry in flight when Redis hung may be written twice,
# then identical, its ts included: count distinct entries)
trail=$(rcli --raw XRANGE onb:audit - +)
refusals() {
	awk '/^[0-9]+-[0-9]+$/ { if (e ~ /\|reason\|registry-unavailable/) print e; e = ""; next }
		{ e = e "|" $0 } END { if (e ~ /\|reason\|registry-unavailable/) print e }' <<<"$trail"
}
copies=$(refusals | wc -l)
written=$(refusals | sort -u | wc -l)
reported=$(awk '/^audit-dropped$/ {f = 1} f && /^count$/ {getline; print; exit}' <<<"$trail")
echo "# refusals written: $written ($copies copies), reported dropped: ${reported:-none}"
check "  ... some were dropped, and written + dropped = the $N refusals" \
	test "$written" -lt "$N" -a "$((written + ${reported:-0}))" -eq "$N"
check "  ... a refusal written twice is the same entry (at most the one in flight)" \
	test "$((copies - written))" -le 1
# (the main thread's connection comes back within redis_retry_ms)
check "the broker admits again" wait_for 3 pub first first devices/first/telemetry

finish

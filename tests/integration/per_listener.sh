# per_listener_settings true, where the versions differ (docs/operations.md):
# before 2.0.15 the broker never runs the plugin's tick in that mode, so
# registry events could not reach live sessions, and the plugin refuses every
# connect; from 2.0.15 on the tick runs and the plugin works as usual. Either
# way a device is never admitted into a session that a revocation cannot
# reach. A second listener with its own plugin line is a second instance,
# which the plugin refuses (the broker then does not start).
source "$(dirname "$0")/harness.sh"
make_pki
start_redis
"$ONBOARDCTL" policy init "$ONB_SOURCE_DIR/policies" >/dev/null
new_device dev-1; register dev-1 active

MQTT_PORT=$(freeport)
write_broker_conf
# (2.1 wants per-listener options after their listener)
sed -i -e 's/^per_listener_settings false$/per_listener_settings true/' -e '/^allow_anonymous /d' \
	-e 's/^\(listener .*\)$/\1\nallow_anonymous false/' "$T/mosquitto.conf"
run_broker "$T/mosquitto.conf"
wait_for 10 grep -q "mosquitto version .* running" "$T/mosquitto.log" \
	|| { echo "broker did not start"; cat "$T/mosquitto.log"; exit 1; }
version=$(sed -nE 's/.*mosquitto version ([0-9.]+) running.*/\1/p' "$T/mosquitto.log")
echo "# Mosquitto $version with per_listener_settings true"

sub_bg dev-1 dev-1 'devices/dev-1/commands/#' "$T/dev1.out"
pid1=$SUB_PID
if wait_for 5 grep -q "Received SUBSCRIBE from dev-1" "$T/mosquitto.log"; then
	echo "# the broker runs the tick in this mode: the device was admitted"
	check "the plugin saw the tick (no refusal logged)" \
		bash -c "! grep -q \"does not run the plugin's tick\" '$T/mosquitto.log'"
	"$ONBOARDCTL" device revoke dev-1 --reason "per-listener test" >/dev/null
	gone() { ! alive "$pid1"; }
	check "a revocation still reaches the live session" wait_for 3 gone
	check "  ... with the reason logged" grep -q "disconnecting dev-1: device is now revoked" "$T/mosquitto.log"
else
	echo "# the broker does not run the tick in this mode: every connect is refused"
	check "the device was refused" grep -q "connect deny device=- client=dev-1 .*reason=internal" "$T/mosquitto.log"
	check "  ... the cause is logged once, with the fix" \
		test "$(grep -c "does not run the plugin's tick.*set per_listener_settings false" "$T/mosquitto.log")" -eq 1
	check "  ... and audited" audit_has "connect" "deny" "does not run the plugin's tick"
fi
stop_broker

# Two listeners, each with its plugin line: the second instance is refused.
: > "$T/mosquitto.log"
PORT2=$(freeport)
{
	sed -n '/^per_listener_settings/,/^plugin_opt_redis_timeout_ms/p' "$T/mosquitto.conf"
	sed -n '/^listener/,/^plugin_opt_redis_timeout_ms/p' "$T/mosquitto.conf" | sed "s/^listener $MQTT_PORT /listener $PORT2 /"
	echo "log_dest file $T/mosquitto.log"
	echo "log_type all"
} > "$T/two.conf"
env "${BROKER_ENV[@]}" "$MOSQUITTO_BIN" -c "$T/two.conf" > "$T/two.out" 2>&1 &
two=$!
BG_PIDS+=("$two")
exited() { ! alive "$two"; }
check "a second instance of the plugin: the broker does not start" wait_for 10 exited
check "  ... and the plugin says why" grep -q "already loaded: load it once, with per_listener_settings false" "$T/mosquitto.log"

finish

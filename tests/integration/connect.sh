# CONNECT decisions: who gets in, who does not, and the audit trail of each.
source "$(dirname "$0")/harness.sh"
up

new_device dev-1; register dev-1 active
new_device dev-2; register dev-2 unclaimed
new_device dev-unreg                      # CA-signed, never registered
new_device dev-rev; register dev-rev active
"$ONBOARDCTL" device revoke dev-rev --reason "test" >/dev/null
new_device claimer claim-ca               # a claim certificate is no device


check "registered active device connects and publishes" pub dev-1 dev-1 devices/dev-1/telemetry
check "registered unclaimed device connects and publishes" pub dev-2 dev-2 devices/dev-2/telemetry
check "allow is audited with the device id" audit_has "connect" "allow" "dev-1"
check "unregistered CA-signed certificate is refused" refused dev-unreg dev-unreg devices/dev-unreg/x
check "  ... and audited" audit_has "certificate is not bound to a device"
check "client id spoofing (dev-2's cert as dev-1) is refused" refused dev-2 dev-1 devices/dev-1/x
check "  ... and audited" audit_has "client id differs"
check "revoked device is refused" refused dev-rev dev-rev devices/dev-rev/x
check "  ... and audited" audit_has "device is revoked"
check "claim certificate connects, but cannot publish as a device" denied_pub claimer dev-1 devices/dev-1/telemetry
check "  ... and the broker took it for a claim identity" grep -q "client=dev-1 class=claim" "$T/mosquitto.log"
check "client id with a wildcard is refused" refused dev-1 'dev+1' devices/dev-1/x
check "  ... and audited" audit_has "client id is not a valid device id"
check "username/password are ignored: a wrong password still connects" \
	pub dev-1 dev-1 devices/dev-1/telemetry -u someone -P wrong

# A certificate from a CA the broker does not trust fails the TLS handshake.
"$ONBOARDCTL" pki init "$T/other" >/dev/null
"$ONBOARDCTL" pki issue --ca "$T/other/device-ca" --cn dev-1 --out "$T/foreign" >/dev/null
foreign_refused() {
	! timeout 10 mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" \
		--cert "$T/foreign.pem" --key "$T/foreign.key" -i dev-1 -t devices/dev-1/x -m x -q 1 \
		> "$T/pub.out" 2>&1
}
check "certificate from an unknown CA is refused at TLS" foreign_refused
# Same key material, same CN, same id, yet a registered fingerprint is required.
"$ONBOARDCTL" pki issue --ca "$PKI/device-ca" --cn dev-1 --out "$T/dev-1-copy" >/dev/null
copy_refused() {
	! timeout 10 mosquitto_pub $(tls_args dev-1-copy) -i dev-1 -V 5 -q 1 -t devices/dev-1/x -m x \
		> "$T/pub.out" 2>&1
}
check "a second cert with the same CN is not the registered one" copy_refused
no_cert_refused() {
	! timeout 10 mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" \
		-i dev-1 -t devices/dev-1/x -m x -q 1 > "$T/pub.out" 2>&1
}
check "no client certificate is refused" no_cert_refused

# TLS versions: the shipped default is 1.3 only; tlsv1.2 lets 1.2 clients in.
new_device tlsdev0; register tlsdev0 active
# tls_connect 1.2|1.3: one connect as tlsdev0 holding the client to that
# version, the JSON summary in $T/tls.json; a refused CONNECT is tried again
# for up to 3 s, as a device would (a broker just started refuses until its
# event feed is up, and on a loaded machine one registry read may exceed the
# harness's 50 ms budget).
tls_connect() {
	local i
	for i in $(seq 10); do
		[ "$i" -eq 1 ] || sleep 0.3
		timeout 30 "$ONB_BUILD_DIR/tests/bench/connect_rate" --port "$MQTT_PORT" --cafile "$PKI/ca-bundle.pem" \
			--certdir "$T" --prefix tlsdev --width 1 --devices 1 -n 1 -c 1 --timeout-ms 3000 --tls "$1" --json \
			> "$T/tls.json" 2> "$T/tls.err" && return 0
		grep -q '"refused":1' "$T/tls.json" || return 1   # a handshake failure is final
	done
	return 1
}
negotiated() { grep -q "\"succeeded\":1,.*\"tls\":\"$1\"" "$T/tls.json"; }
check "default (tls_version tlsv1.3): a TLS 1.3 client connects" tls_connect 1.3
check "  ... over TLS 1.3" negotiated TLSv1.3
refute "  ... a client that speaks TLS 1.2 at most is refused at the handshake" tls_connect 1.2
check "  ... before the plugin is asked (no CONNECT reached it)" bash -c "! grep -q 'connect deny device=tlsdev0' '$T/mosquitto.log'"
stop_broker
BROKER_TLS_VERSION=tlsv1.2 start_broker
check "tls_version tlsv1.2: a TLS 1.2 client connects" tls_connect 1.2
check "  ... over TLS 1.2, admitted by the plugin" bash -c "grep -q '\"tls\":\"TLSv1.2\"' '$T/tls.json' && grep -q 'connect allow device=tlsdev0' '$T/mosquitto.log'"
tls13_ok() { tls_connect 1.3 && negotiated TLSv1.3; }
check "  ... and a TLS 1.3 client still gets TLS 1.3" tls13_ok

finish

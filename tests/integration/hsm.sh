# The device CA key in an HSM: claimsvc loads it through PKCS#11 (a pkcs11:
# URI in device_ca_key, OpenSSL's pkcs11 engine from libengine-pkcs11-openssl)
# from a SoftHSM2 token, never from a file, and provisions and renews devices
# with it. The PIN never appears in claimsvc's output.
source "$(dirname "$0")/harness.sh"
MODULE=/usr/lib/softhsm/libsofthsm2.so
for need in softhsm2-util pkcs11-tool; do
	command -v "$need" >/dev/null || { echo "not ok - $need missing (scripts/deps.sh installs it)"; exit 1; }
done
[ -f "$MODULE" ] || { echo "not ok - $MODULE missing (softhsm2)"; exit 1; }
[ -n "$(find /usr/lib -path '*engines-3/pkcs11.so' -print -quit)" ] \
	|| { echo "not ok - OpenSSL pkcs11 engine missing (libengine-pkcs11-openssl)"; exit 1; }
up

# A token of its own, in the test's temp dir.
mkdir -p "$T/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$T" > "$T/softhsm2.conf"
export SOFTHSM2_CONF="$T/softhsm2.conf"
softhsm2-util --init-token --free --label onb-ca --pin 4711 --so-pin 271828 >/dev/null
softhsm2-util --import "$PKI/device-ca.key" --token onb-ca --label device-ca --id 01 --pin 4711 >/dev/null
pkcs11-tool --module "$MODULE" --token-label onb-ca --login --pin 4711 -O > "$T/objects.txt" 2>&1
check "the device CA key pair is in the token (private key not extractable)" \
	bash -c "grep -q 'Private Key Object' '$T/objects.txt' && grep -q 'sensitive' '$T/objects.txt'"
# From here on the key exists only in the token.
shred -u "$PKI/device-ca.key" 2>/dev/null || rm -f "$PKI/device-ca.key"

URI='pkcs11:token=onb-ca;object=device-ca;type=private'
printf '4711' > "$T/pin"; chmod 600 "$T/pin"
# check_conf KEY: claimsvc --check with device_ca_key KEY; output in $T/check.out
check_conf() {
	sed -e "s|^device_ca_key .*|device_ca_key $1|" "$T/claimsvc-1.conf" > "$T/check.conf"
	"$CLAIMSVC" --check -c "$T/check.conf" > "$T/check.out" 2>&1
}
new_device claimsvc-1 service-ca
CLAIMSVC_CA_KEY="$URI;pin-value=4711" CLAIMSVC_EXTRA="pkcs11_module $MODULE
metrics_interval_s 1" start_claimsvc claimsvc-1
check "claimsvc starts with the device CA key in the token" grep -q "device CA key in a PKCS#11 token" "$T/claimsvc-1.log"

printf 'serial\nH0001\nH0002\n' > "$T/allow.csv"
"$ONBOARDCTL" allowlist import "$T/allow.csv" >/dev/null
check "a device provisions through the token-held CA key" devsim_claim --serial H0001 --out "$T/dev"
check "  ... its certificate verifies against the device CA" \
	openssl verify -CAfile "$PKI/device-ca.pem" -partial_chain "$T/dev/H0001.pem"
check "  ... and it connected with it" \
	grep -q "Received PUBLISH from H0001 .*devices/H0001/telemetry" "$T/mosquitto.log"
check "a device renews its certificate through the token-held key" \
	devsim_claim --serial H0002 --out "$T/dev" --rotate
check "  ... the renewed certificate verifies against the device CA" \
	openssl verify -CAfile "$PKI/device-ca.pem" -partial_chain "$T/dev/H0002.pem"
check "claimsvc's counters say the key is in a token" \
	wait_for 4 bash -c "\"$ONBOARDCTL\" --json stats | jq -e '.\"claimsvc/claimsvc-1\".ca_key_pkcs11 == true' >/dev/null"
refute "the PIN appears nowhere in claimsvc's log" grep -q 4711 "$T/claimsvc-1.log"

check "pin-source=file: works too" check_conf "$URI;pin-source=file:$T/pin"
check "  ... --check names the key's home" grep -q "device CA key in a PKCS#11 token" "$T/check.out"
refute "a wrong PIN is refused" check_conf "$URI;pin-value=999999"
refute "  ... without printing it" grep -q 999999 "$T/check.out"
echo "# $(cat "$T/check.out")"
refute "an unknown object is refused" check_conf "pkcs11:token=onb-ca;object=nosuch;type=private;pin-value=4711"
check "  ... with a clear error and no PIN" bash -c "grep -q 'no usable private key' '$T/check.out' && ! grep -q 4711 '$T/check.out'"
refute "a key that is not the device CA's is refused" bash -c "
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '$T/other.key' 2>/dev/null
	softhsm2-util --import '$T/other.key' --token onb-ca --label other --id 02 --pin 4711 >/dev/null
	sed -e 's|^device_ca_key .*|device_ca_key pkcs11:token=onb-ca;object=other;type=private;pin-value=4711|' \
		'$T/claimsvc-1.conf' > '$T/other.conf'
	'$CLAIMSVC' --check -c '$T/other.conf' > '$T/other.out' 2>&1"
check "  ... as not matching the certificate" grep -q "does not match device_ca_cert" "$T/other.out"

finish

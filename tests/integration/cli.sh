# onboardctl's command line, the same for every domain: --help exits 0 and
# prints the usage, a usage error (unknown option, missing argument, bad
# --redis URL) exits 2 with one line, a failure exits 1, --version tells the
# version CMake gives, and a reader that goes away (| head) ends a command,
# even `audit --follow`, without an error line.
source "$(dirname "$0")/harness.sh"
make_pki
start_redis
C=$ONBOARDCTL

# status CMD...: the exit status of CMD, its stderr in $T/err.
status() { local s=0; "$@" > "$T/out" 2> "$T/err" || s=$?; echo "$s"; }
one_line_usage() { [ "$(wc -l < "$T/err")" -eq 1 ] && grep -q "(see --help)" "$T/err"; }

version=$(sed -nE 's/^project\(mosquitto-onboard VERSION ([0-9.]+).*/\1/p' "$ONB_SOURCE_DIR/CMakeLists.txt")
check "--version prints the project's version ($version)" bash -c "'$C' --version | grep -qx 'onboardctl (mosquitto-onboard) $version'"

for d in pki device policy audit allowlist claimcode claim stats crl template; do
	check "$d --help exits 0 with a usage" bash -c "'$C' $d --help > '$T/h' && grep -q '^usage: ' '$T/h'"
done

# Every domain, one command each, through the same parser.
while read -r line; do
	# shellcheck disable=SC2086
	check "usage error, exit 2, one line: $line" bash -c "[ \$(cd '$T' && '$C' $line > /dev/null 2> '$T/err'; echo \$?) = 2 ] && [ \$(wc -l < '$T/err') = 1 ] && grep -q '(see --help)' '$T/err'"
done <<'CMDS'
pki init --bogus
pki issue --ca
pki fingerprint a b
device show --bogus
device release --bogus x
policy test --bogus x
policy get
policy assign dev-1 NAME --default
audit --bogus
audit --since yesterday
allowlist import --bogus
claimcode issue --bogus
claim --bogus
stats --bogus
crl export --ca x
template check --bogus
nosuchdomain
--redis bogus://x device list
--redis
CMDS

check "an unreachable registry is a failure (1), not a usage error" \
	test "$(status "$C" --redis redis://127.0.0.1:1/0 device list)" = 1

# The options that parse differently now: a flag, a repeated option.
new_device dev-1; register dev-1
check "policy assign ID NAME" bash -c "'$C' policy assign dev-1 device-tenant | grep -q 'policy device-tenant'"
check "policy assign ID --default" bash -c "'$C' policy assign dev-1 --default | grep -q 'default for its state'"
check "policy test takes --var more than once" bash -c "
	'$C' policy test --policy '$ONB_SOURCE_DIR/policies/device-tenant.json' --var deviceId=dev-1 --var tenantId=acme \
		--action publish --topic tenants/acme/devices/dev-1/telemetry | grep -q '^allow'"
check "crl export takes --also-ca more than once" bash -c "
	'$C' --json crl export --ca '$PKI/device-ca' --also-ca '$PKI/claim-ca' --also-ca '$PKI/service-ca' --out '$T/crl.pem' \
		| grep -q '\"issuer\"' && [ \$(grep -c 'BEGIN X509 CRL' '$T/crl.pem') = 3 ]"

# A reader that stops early.
for i in 1 2 3 4 5; do new_device "d$i"; register "d$i"; done
# (in bash -c: the early reader is the point here, and pipefail is off there)
check "audit --follow ends by itself when its reader stops after a line, without an error line" bash -c "
	timeout 10 '$C' audit --follow 2> '$T/err' | head -n 1 > /dev/null; [ \${PIPESTATUS[0]} != 124 ] && [ ! -s '$T/err' ]"
check "device list ends quietly when its reader stops after a byte" bash -c "
	timeout 10 '$C' device list 2> '$T/err' | head -c 1 > /dev/null; [ \${PIPESTATUS[0]} != 124 ] && [ ! -s '$T/err' ]"
check "output that cannot be written is a failure with a reason" bash -c "
	! '$C' device list > /dev/full 2> '$T/err' && grep -q 'cannot write the output' '$T/err'"
finish

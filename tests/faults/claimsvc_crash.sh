# Fault injection: claimsvc killed (SIGKILL) twice and restarted while 200
# devices provision, 20 at a time (devsim, the AWS wire format). Devices
# caught by a kill time out. A RegisterThing that times out is sent again
# unchanged (devsim --register-retries, as device SDKs do): if it was
# registered and only its answer was lost, claimsvc answers it again. A
# device that timed out earlier starts over (devsim again, one serial each)
# until it is provisioned, at most 3 rounds.
#
# Afterwards, from the registry alone:
# - every device that retried ends provisioned, exactly once (one
#   register-thing ok audit entry each), bound to the certificate it holds;
# - no certificate is bound twice (onb:fp:* values are distinct devices, and
#   no device holds two);
# - no orphan binding: every onb:fp:<fp> names a device whose cert_fp or
#   cert_fp_next is <fp>; certificates issued but never registered (a kill
#   between CreateCertificateFromCsr and RegisterThing) stay unbound.
source "$(dirname "$0")/../integration/harness.sh"
source "$(dirname "$0")/../security/lib.sh"
up
N=200
C=20
{ echo serial; for i in $(seq 0 $((N - 1))); do printf 'C%04d\n' "$i"; done; } > "$T/allow.csv"
"$ONBOARDCTL" allowlist import "$T/allow.csv" > /dev/null
start_claimsvc claimsvc-1
mkdir -p "$T/creds"

kill_claimsvc() {
	local p=${CLAIMSVC_PIDS[-1]}
	kill -9 "$p"; wait "$p" 2> /dev/null || true
}

ev0=$(rcli XLEN onb:events)
t0=$(date +%s%N)
devsim_claim --serial-prefix C -n "$N" -c "$C" --timeout 2500 --register-retries 2 --out "$T/creds" \
	> "$T/pass0.out" 2>&1 &
DS=$!
BG_PIDS+=("$DS")
KILLS=()
# Kill when 40 and when 120 devices are registered (one onb:events entry
# each), whatever the machine's speed; 10 s at most per kill.
for at in 40 120; do
	deadline=$(( $(date +%s%N) + 10000000000 ))
	while [ "$(rcli XLEN onb:events)" -lt $((ev0 + at)) ] && [ "$(date +%s%N)" -lt "$deadline" ]; do sleep 0.02; done
	kill_claimsvc
	KILLS+=("$(ms_since "$t0") ms (after $at registrations)")
	sleep 0.4
	start_claimsvc claimsvc-1
done
wait "$DS" || true
first=$(sed -n 's/^succeeded \([0-9]*\)\/.*/\1/p' "$T/pass0.out")
resent=$(sed -n 's/.*RegisterThing resent \([0-9]*\).*/\1/p' "$T/pass0.out")
echo "# claimsvc SIGKILLed at ${KILLS[0]} and ${KILLS[1]} into the run (restarted 0.4 s later each time)"
echo "# first pass: ${first:-?}/$N provisioned in $(ms_since "$t0") ms, RegisterThing resent ${resent:-?} times; $(grep -A20 'failures by reason' "$T/pass0.out" | grep -v failures | tr -s ' ' | sed -n 1,5p | tr '\n' ';')"
check "claimsvc was killed while devices were in flight (some timed out in the first pass)" \
	bash -c "[ -n '$first' ] && [ -n '$resent' ] && [ '$first' -gt 0 ] && { [ '$first' -lt $N ] || [ '$resent' -gt 0 ]; }"

# missing: serials without credentials yet.
missing() { for i in $(seq 0 $((N - 1))); do s=$(printf 'C%04d' "$i"); [ -f "$T/creds/$s.pem" ] || echo "$s"; done; }
retry_one() { devsim_claim --serial "$1" --timeout 3000 --register-retries 2 --out "$T/creds" > "$T/retry-$1.out" 2>&1 || true; }
export -f retry_one devsim_claim
export T MQTT_PORT PKI DEVSIM
for round in 1 2 3; do
	todo=$(missing)
	[ -z "$todo" ] && break
	xargs -P 4 -I{} bash -c 'retry_one {}' <<<"$todo"
	echo "# retry round $round: $(wc -w <<<"$todo") devices retried, $(missing | wc -w) still missing"
done
left=$(missing | tr '\n' ' ')
echo "# RegisterThing requests answered as replays (registered, answer lost, resent): $(audit_count action=register-thing result='^replay$')"
check "every device that retried ends provisioned (missing: ${left:-none})" test -z "$left"
if [ -n "$left" ]; then
	for s in $left; do echo "#   $s: $(grep -h 'register\|csr\|connect' "$T/retry-$s.out" 2> /dev/null | tail -n 1)"; done
fi

# ---------------------------------------------------------------- the registry afterwards
rcli --json XRANGE onb:audit - + | jq -r '.[] | .[1] as $a
	| reduce range(0; $a | length; 2) as $i ({}; .[$a[$i]] = $a[$i + 1])
	| select(.action == "register-thing" and .result == "ok") | .device' | sort > "$T/registered.txt"
dups=$(uniq -d "$T/registered.txt" | tr '\n' ' ')
check "exactly one successful RegisterThing per device ($(wc -l < "$T/registered.txt") for $N devices; twice: ${dups:-none})" \
	bash -c "[ -z '$dups' ] && [ \$(sort -u '$T/registered.txt' | grep -c '^C') -eq $N ]"

"$ONBOARDCTL" --json device list | jq -r '.[] | select(.id | startswith("C")) | "\(.id) \(.state) \(.cert_fp) \(.cert_fp_next)"' \
	> "$T/devices.txt"
wrong=0
while read -r id state fp next; do
	held=$("$ONBOARDCTL" pki fingerprint "$T/creds/$id.pem" 2> /dev/null || echo none)
	if [ "$state" != unclaimed ] || [ "$fp" != "$held" ]; then
		wrong=$((wrong + 1)); echo "#   $id: state $state, bound $fp, holds $held"
	fi
done < "$T/devices.txt"
check "each of the $N devices is unclaimed and bound to the certificate it holds ($wrong wrong)" \
	bash -c "[ $wrong -eq 0 ] && [ \$(wc -l < '$T/devices.txt') -eq $N ]"

for k in $(rcli --scan --pattern 'onb:fp:*'); do echo "${k#onb:fp:} $(rcli --raw GET "$k")"; done | sort > "$T/fp.txt"
bound_devices=$(awk '{ print $2 }' "$T/fp.txt" | sort | uniq -d | tr '\n' ' ')
check "no device is the target of two bindings (${bound_devices:-none})" test -z "$bound_devices"
orphans=0
while read -r fp dev; do
	rec=$(rcli --raw HMGET "onb:dev:{$dev}" cert_fp cert_fp_next | tr '\n' ' ')
	case " $rec " in *" $fp "*) ;; *) orphans=$((orphans + 1)); echo "#   orphan: onb:fp:$fp -> $dev ($rec)";; esac
done < "$T/fp.txt"
check "no orphan binding: all $(wc -l < "$T/fp.txt") onb:fp entries point to a device holding that fingerprint" \
	test "$orphans" -eq 0
pend=$(rcli --scan --pattern 'onb:pending:*' | sed 's/^onb:pending://' | sort)
pend_bound=$(comm -12 <(echo "$pend") <(awk '{ print $1 }' "$T/fp.txt") | grep -c . || true)
echo "# certificates issued but never registered (kills between the two requests, or replies lost): $(grep -c . <<<"$pend" || true)"
check "  ... none of those is bound" test "$pend_bound" -eq 0
# ---------------------------------------------------------------- a reply lost after the commit
# The window a kill can hit between claimsvc's registry write and its reply,
# made deterministic: the device's link drops right after it sends
# RegisterThing (a flaky cellular link does the same), so the broker drops the
# answer. The device then does what device SDKs do after a timeout: it sends
# the same request again. It must end provisioned, once.
CSR_T='$aws/certificates/create-from-csr/json'
REG_T='$aws/provisioning-templates/default/provision/json'
printf 'serial\nC8888\n' > "$T/lost.csv"
"$ONBOARDCTL" allowlist import "$T/lost.csv" > /dev/null
cp "$T/claim-batch.pem" "$T/claim-lost.pem"; cp "$T/claim-batch.key" "$T/claim-lost.key"
new_csr lost -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=C8888
csr_json "$T/lost.csr" > "$T/lost.json"
out=$(raw claim-lost connect lost-1 sub "$CSR_T/accepted" sub "$CSR_T/rejected" \
	pub "$CSR_T" x qos=1 file="$T/lost.json" expect "$CSR_T/" 5000 close)
sed -n "s|^msg $CSR_T/accepted ||p" <<<"$out" > "$T/lost-acc.json"
jq -cn --arg t "$(jq -r .certificateOwnershipToken "$T/lost-acc.json")" \
	'{certificateOwnershipToken: $t, parameters: {SerialNumber: "C8888"}}' > "$T/lost-reg.json"
jq -r .certificatePem "$T/lost-acc.json" | openssl x509 -out "$T/C8888.pem" 2> /dev/null
cp "$T/lost.csr.key" "$T/C8888.key"
raw claim-lost connect lost-1 pub "$REG_T" x qos=0 file="$T/lost-reg.json" drop > /dev/null
committed() { "$ONBOARDCTL" --json device show C8888 | jq -e '.state == "unclaimed"' > /dev/null; }
check "lost reply: RegisterThing was committed though the device never heard back" wait_for 3 committed
out=$(raw claim-lost connect lost-1 sub "$REG_T/accepted" sub "$REG_T/rejected" \
	pub "$REG_T" x qos=1 file="$T/lost-reg.json" expect "$REG_T/" 5000 close)
echo "# the same RegisterThing sent again: $(grep "^msg" <<<"$out" | cut -c1-200)"
check "  ... the same request sent again is answered accepted, thingName C8888 (idempotent)" \
	grep -q "^msg $REG_T/accepted .*\"thingName\":\"C8888\"" <<<"$out"
check "  ... still one binding and one successful RegisterThing for C8888" bash -c \
	"[ \$(redis-cli -p $REDIS_PORT --scan --pattern 'onb:fp:*' | xargs -r -n 50 redis-cli -p $REDIS_PORT MGET | grep -c '^C8888$') -eq 1 ]"
check "  ... audited once as registered and once as a replay" bash -c \
	"[ $(audit_count action=register-thing device='^C8888$' result='^ok$') -eq 1 ] &&
	 [ $(audit_count action=register-thing device='^C8888$' result='^replay$') -eq 1 ]"
check "  ... (the certificate it holds is the one bound: it connects as C8888)" \
	grep -q "connack 0" <<<"$(raw C8888 connect C8888 close)"

check "claimsvc serves after all this (one more device)" bash -c \
	"printf 'serial\nC9999\n' > '$T/one.csv' && '$ONBOARDCTL' allowlist import '$T/one.csv' > /dev/null &&
	 '$DEVSIM' --format ${ONB_PROV_FORMAT:-json} --port $MQTT_PORT --cafile '$PKI/ca-bundle.pem' --claim-cert '$T/claim-batch.pem' \
	   --claim-key '$T/claim-batch.key' --quiet --serial C9999 > /dev/null"

finish

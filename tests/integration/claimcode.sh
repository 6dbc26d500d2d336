# Claim codes through the CLI against a real redis-server (no broker needed):
# issue, show, claim by code and by URI, second claim, typo, expiry, devices
# that are not unclaimed, lockout, release, transfer, the QR PNG decoded by
# zbarimg, and a 10,000-label batch against the clock.
source "$(dirname "$0")/harness.sh"
make_pki
start_redis

CTL="$ONBOARDCTL"
# field NAME: value of "NAME: value" in $T/out
field() { sed -n "s/^$1: *//p" "$T/out"; }
# fails CMD...: the command exits 1 with one error line, kept in $T/err
fails() { local rc=0; "$@" > "$T/out" 2> "$T/err" || rc=$?; [ "$rc" -eq 1 ] && [ "$(wc -l < "$T/err")" -eq 1 ]; }
fails_usage() { local rc=0; "$@" > "$T/out" 2> "$T/err" || rc=$?; [ "$rc" -eq 2 ] && [ "$(wc -l < "$T/err")" -eq 1 ]; }
# no_code_in_redis CODE: neither form of CODE is in any key or value
no_code_in_redis() {
	local canon=$1 human key
	human=$(sed 's/..../&-/g; s/-$//' <<<"$canon")
	while read -r key; do
		case $(rcli TYPE "$key") in
			string) rcli --raw GET "$key" ;;
			hash) rcli --raw HGETALL "$key" ;;
			stream) rcli --raw XRANGE "$key" - + ;;
			*) echo "unexpected type of $key" ;;
		esac
		echo "$key"
	done < <(rcli --scan) > "$T/dump"
	[ -s "$T/dump" ] && ! grep -qiF -e "$canon" -e "$human" "$T/dump"
}

for d in dev-1 dev-2 dev-3 dev-4; do new_device $d; register $d unclaimed; done

# ---- issue, show
"$CTL" claimcode issue --device dev-1 > "$T/out"
CODE=$(field code); URI=$(field uri)
CANON=${CODE//-/}
check "issue prints a 24-symbol code in groups of 4" grep -qE '^([0-9A-HJKMNP-TV-Z]{4}-){5}[0-9A-HJKMNP-TV-Z]{4}$' <<<"$CODE"
check "issue prints the claim URI" test "$URI" = "mqtt-onboard://claim?d=dev-1&c=$CANON"
check "issue draws the QR code in the terminal" grep -q '█' "$T/out"
"$CTL" claimcode show --device dev-1 > "$T/out"
check "show: issued" test "$(field status)" = issued
refute "show never prints the code" grep -qF "$CANON" "$T/out"
check "Redis holds no form of the code" no_code_in_redis "$CANON"
check "the issue is audited" audit_has claimcode-issue dev-1
ISO='20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z'
"$CTL" audit --device dev-1 > "$T/audit.txt"; "$CTL" --json audit --device dev-1 > "$T/audit.json"
check "audit prints the code's expiry as ISO 8601, not epoch ms" grep -qE "claimcode-issue.* expires=$ISO( |$)" "$T/audit.txt"
check "  ... and so does audit --json (expires and ts)" \
	grep -qE "\"expires\":\"$ISO\".*\"ts\":\"$ISO\"" "$T/audit.json"
ACTOR=$(rcli --raw XREVRANGE onb:audit + - COUNT 1 | sed -n '/^actor$/{n;p;q}')  # cli:user@host

# ---- redeem: typo, success, second time
for ((i = 0; i < 23; i++)); do  # swap the first two adjacent symbols that differ
	a=${CANON:i:1}; b=${CANON:i+1:1}
	if [ "$a" != "$b" ]; then TYPO=${CANON:0:i}$b$a${CANON:i+2}; break; fi
done
audit_before=$(rcli XLEN onb:audit)
check "a swapped pair is caught by the check symbol" fails "$CTL" claim --tenant acme "$TYPO"
check "  ... with a typo message" grep -q "typo" "$T/err"
check "  ... before any lookup (nothing audited)" test "$(rcli XLEN onb:audit)" -eq "$audit_before"
lower=$(tr 'A-Z' 'a-z' <<<"$CODE" | sed 's/1/l/g; s/0/o/g')
"$CTL" claim --tenant acme "$URI" > "$T/out"
check "claim by URI: deviceId" test "$(field deviceId)" = dev-1
check "claim: tenantId and state" test "$(field tenantId)/$(field state)" = acme/active
check "the device is active for acme" bash -c "\"$CTL\" --json device show dev-1 | grep -q '\"state\":\"active\",\"tenant\":\"acme\"'"
check "one state event for live sessions" bash -c "redis-cli -p $REDIS_PORT --raw XREVRANGE onb:events + - COUNT 1 | tr '\n' ' ' | grep -q 'device dev-1 state active tenant acme policy'"
check "a second claim fails" fails "$CTL" claim --tenant acme "$lower"
check "  ... as 'invalid or expired claim code'" grep -qx "onboardctl: claim refused: invalid or expired claim code" "$T/err"
check "  ... audited with the precise reason" audit_has "reason used"
"$CTL" claimcode show --device dev-1 > "$T/out"
check "show: used by acme" bash -c "grep -q '^status:  used' '$T/out' && grep -q 'by tenant acme' '$T/out'"

# ---- expiry, superseded codes, devices that are not unclaimed
CODE2=$("$CTL" --json claimcode issue --device dev-2 --ttl 1s | sed 's/.*"code":"\([^"]*\)".*/\1/')
sleep 1.2
check "an expired code fails" fails "$CTL" claim --tenant acme "$CODE2"
check "  ... looking like any invalid code" grep -q "invalid or expired claim code" "$T/err"
check "  ... show: expired" bash -c "\"$CTL\" claimcode show dev-2 | grep -q '^status:  expired'"
OLD=$("$CTL" claimcode issue --device dev-2 --format uri)
NEW=$("$CTL" claimcode issue --device dev-2 --format uri)
check "a superseded code fails" fails "$CTL" claim --tenant acme "$OLD"
check "  ... audited as superseded" audit_has "reason superseded"

printf 'serial\nSN-M1\n' > "$T/m.csv"
"$CTL" allowlist import "$T/m.csv" > /dev/null
M=$("$CTL" claimcode issue --device SN-M1 --format uri)
check "a code for a manufactured device is refused" fails "$CTL" claim --tenant acme "$M"
check "  ... saying so" grep -q "SN-M1 cannot be claimed now (it is manufactured)" "$T/err"
R=$("$CTL" claimcode issue --device dev-3 --format uri)
"$CTL" device revoke dev-3 > /dev/null
check "a code for a revoked device is refused" fails "$CTL" claim --tenant acme "$R"
check "  ... saying so" grep -q "it is revoked" "$T/err"
check "revoked devices get no new code" fails "$CTL" claimcode issue --device dev-3

# ---- lockout: 5 wrong codes lock the tenant out (for this operator too), not the operator
"$CTL" claimcode unlock --tenant acme --source "$ACTOR" > /dev/null   # forget the failures above
GOOD=$("$CTL" claimcode issue --device dev-4 --format uri)
for i in 1 2 3 4 5; do
	WRONG=$("$CTL" claimcode issue --device SN-M1 --format uri)  # a real code, for another device
	"$CTL" claimcode revoke --device SN-M1 > /dev/null
	fails "$CTL" claim --tenant mallory "$WRONG" || true
done
check "the fifth failure starts the lockout" grep -q "claiming is locked for 900 s" "$T/err"
check "during the lockout the right code is refused" fails "$CTL" claim --tenant mallory "$GOOD"
check "  ... with the time to wait" grep -q "too many failed claim attempts: try again in" "$T/err"
check "  ... and the code was not touched" bash -c "\"$CTL\" claimcode show dev-4 | grep -q '^status:  issued'"
check "lockouts are audited" audit_has "reason locked-out" "lockout tenant,source"
check "  ... keyed by the tenant, and by the tenant at this operator" bash -c \
	"[ \"\$(redis-cli -p $REDIS_PORT EXISTS onb:cclock:tenant:mallory)\" = 1 ] &&
	 [ \"\$(redis-cli -p $REDIS_PORT --scan --pattern 'onb:cclock:source:mallory/*' | wc -l)\" = 1 ]"
new_device dev-5; register dev-5 unclaimed
G5=$("$CTL" claimcode issue --device dev-5 --format uri)
check "the same operator claims for another tenant at once" bash -c "\"$CTL\" claim --tenant acme '$G5' | grep -q 'tenantId: acme'"
check "mallory is still locked" fails "$CTL" claim --tenant mallory "$GOOD"
"$CTL" claimcode unlock --source "$ACTOR" > "$T/out"
check "unlock --source lifts mallory's lockout at this operator only" bash -c \
	"grep -qx 'lockout and failure count cleared' '$T/out' &&
	 [ -z \"\$(redis-cli -p $REDIS_PORT --scan --pattern 'onb:cclock:source:*')\" ] &&
	 [ \"\$(redis-cli -p $REDIS_PORT EXISTS onb:cclock:tenant:mallory)\" = 1 ]"
check "  ... mallory's own lockout stays" fails "$CTL" claim --tenant mallory "$GOOD"
"$CTL" claimcode unlock --tenant mallory > "$T/out"
check "unlock --tenant lifts the rest" grep -qx "lockout and failure count cleared" "$T/out"
check "  ... (audited)" audit_has "claim-unlock" "tenant mallory"
check "after unlock the right code works" bash -c "\"$CTL\" claim --tenant mallory '$GOOD' | grep -q 'tenantId: mallory'"

# ---- release and transfer
check "release an active device" bash -c "\"$CTL\" device release dev-1 --reason returned | grep -q 'released from acme'"
check "  ... now unclaimed without tenant" bash -c "\"$CTL\" --json device show dev-1 | grep -q '\"state\":\"unclaimed\",\"tenant\":null'"
check "  ... its code is gone" bash -c "\"$CTL\" claimcode show dev-1 | grep -q '^status:  none'"
check "  ... the old code does not work" fails "$CTL" claim --tenant globex "$URI"
check "release of an unclaimed device is refused" fails "$CTL" device release dev-1
NEWURI=$("$CTL" claimcode issue --device dev-1 --format uri)
check "a new code claims it for another tenant" bash -c "\"$CTL\" claim --tenant globex '$NEWURI' | grep -q 'tenantId: globex'"
check "transfer to another tenant" bash -c "\"$CTL\" device transfer dev-1 --to initech | grep -q 'transferred from globex to initech'"
check "  ... the device follows" bash -c "\"$CTL\" --json device show dev-1 | grep -q '\"tenant\":\"initech\"'"
check "  ... audited with both tenants" audit_has "action transfer" "to_tenant initech" "from_tenant globex"
check "transfer to the same tenant is refused" fails "$CTL" device transfer dev-1 --to initech
check "transfer of an unclaimed device is refused" fails "$CTL" device transfer dev-2 --to initech

# ---- the QR code, read by an independent decoder
"$CTL" claimcode issue --device dev-2 --format png --out "$T/dev-2.png" > "$T/out"
check "the PNG QR code decodes (zbarimg) to the printed URI" test "$(zbarimg --raw -q "$T/dev-2.png" 2>/dev/null)" = "$(field uri)"
check "  ... and the file is private (0600)" test "$(stat -c %a "$T/dev-2.png")" = 600

# ---- links a phone opens (--link, $ONBOARD_CLAIM_LINK)
new_device dev-6; register dev-6 unclaimed
"$CTL" claimcode issue --device dev-6 --link 'https://claim.example.com/c?d={device}&c={code}' \
	--format png --out "$T/dev-6.png" > "$T/out"
C6=$(field code); C6=${C6//-/}
check "--link: the QR code holds the https link a phone opens" \
	test "$(zbarimg --raw -q "$T/dev-6.png" 2>/dev/null)" = "https://claim.example.com/c?d=dev-6&c=$C6"
check "  ... and the link is printed" test "$(field uri)" = "https://claim.example.com/c?d=dev-6&c=$C6"
# swap the first two adjacent symbols that differ (a random code may begin
# with a run of equal symbols, where a swap changes nothing)
i=0; while [ "${C6:i:1}" = "${C6:i+1:1}" ]; do i=$((i + 1)); done
T6=${C6:0:i}${C6:i+1:1}${C6:i:1}${C6:i+2}
check "  ... a typo in the link is caught by the check symbol" \
	fails "$CTL" claim --tenant acme "https://claim.example.com/c?d=dev-6&c=$T6"
check "  ... with a typo message" grep -q "typo" "$T/err"
check "  ... the link itself claims the device" \
	bash -c "\"$CTL\" claim --tenant acme 'https://claim.example.com/c?d=dev-6&c=$C6' | grep -q 'deviceId: dev-6'"
new_device dev-7; register dev-7 unclaimed
L7=$(ONBOARD_CLAIM_LINK='https://claim.example.com/c#d={device}&c={code}' "$CTL" claimcode issue --device dev-7 --format uri)
check "\$ONBOARD_CLAIM_LINK sets the link (here the code in the fragment)" grep -qE '^https://claim.example.com/c#d=dev-7&c=[0-9A-Z]{24}$' <<<"$L7"
check "  ... and it claims too" bash -c "\"$CTL\" claim --tenant acme '$L7' | grep -q 'deviceId: dev-7'"
new_device dev-8; register dev-8 unclaimed
check "an http:// template is refused (the code would travel in clear)" \
	fails_usage "$CTL" claimcode issue --device dev-8 --link 'http://claim.example.com/c?d={device}&c={code}'
check "  ... saying why" grep -q "must start with https://" "$T/err"
check "a template without {code} is refused" \
	fails_usage "$CTL" claimcode issue --device dev-8 --link 'https://claim.example.com/c?d={device}'
check "  ... and nothing was issued" bash -c "\"$CTL\" claimcode show dev-8 | grep -q '^status:  none'"

# ---- batches
{ echo "serial"; for i in $(seq -w 1 10000); do echo "LOT-$i"; done; } > "$T/lot.csv"
"$CTL" allowlist import "$T/lot.csv" > /dev/null
{ head -n 21 "$T/lot.csv"; echo "bad id"; echo "LOT-00003"; } > "$T/small.csv"
rc=0
"$CTL" claimcode issue --batch "$T/small.csv" --out "$T/small" --format svg > "$T/out" 2> "$T/err" || rc=$?
check "batch with bad lines exits 1" test "$rc" -eq 1
check "batch: a bad line is reported" grep -q "^line 22: not a valid device id" "$T/err"
check "batch: a repeated device is reported" grep -q "^line 23: device LOT-00003 listed again (first on line 4)" "$T/err"
check "batch: 20 SVG labels and a manifest" test "$(ls "$T/small" | wc -l)" -eq 21 -a "$(wc -l < "$T/small/manifest.csv")" -eq 21
check "batch: a label carries the device id and the human code" bash -c \
	"code=\$(grep '^LOT-00007,' '$T/small/manifest.csv' | cut -d, -f2); grep -q \">LOT-00007</text>\" '$T/small/LOT-00007.svg' && grep -q \">\$code</text>\" '$T/small/LOT-00007.svg'"
check "batch: the manifest is private (0600)" test "$(stat -c %a "$T/small/manifest.csv")" = 600
start=$(date +%s%N)
big_batch() { "$CTL" claimcode issue --batch "$T/lot.csv" --out "$T/labels" > "$T/out"; }
check "a batch of 10,000 PNG labels" big_batch
echo "# 10,000 PNG labels in $(( ($(date +%s%N) - start) / 1000000 )) ms (a figure, not a goal: speed is the benchmarks' job)"
check "  ... 10,000 files and a manifest" test "$(ls "$T/labels" | wc -l)" -eq 10001
line=$(grep '^LOT-09999,' "$T/labels/manifest.csv")
check "  ... a label decodes to its manifest URI" test "$(zbarimg --raw -q "$T/labels/LOT-09999.png" 2>/dev/null)" = "$(cut -d, -f3 <<<"$line" | tr -d '"')"

finish

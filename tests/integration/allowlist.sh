# Allowlist import: a manufacturing CSV becomes `manufactured` devices; the
# summary, the invalid line numbers, idempotence, one audit entry per chunk,
# and the time of a 100,000-line import. Needs Redis only (no broker).
source "$(dirname "$0")/harness.sh"
start_redis

# show ID: `device show --json ID` on one line
show() { "$ONBOARDCTL" --json device show "$1"; }
# field JSON NAME: the value of a string (or null) field of a flat JSON object
field() { sed -n "s/.*\"$2\":\(\"[^\"]*\"\|null\).*/\1/p" <<<"$1" | tr -d '"'; }

BIRTH=abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789
BIRTH_COLONS=$(sed 's/../&:/g; s/:$//' <<<"${BIRTH^^}")

cat > "$T/lot7.csv" <<CSV
serial,birth_fp,batch
# lot 7, line 3 blank below

SN-0001,,lot-7
SN-0002,$BIRTH_COLONS,lot-7
"SN-0003" ,
SN-0001,,lot-7
bad serial,,lot-7
SN-0004,1234,lot-7
SN-0005,,lot-7,extra
CSV

set +e
"$ONBOARDCTL" allowlist import "$T/lot7.csv" --batch default-lot > "$T/out" 2> "$T/err"
code=$?
set -e
check "import with invalid lines exits 1" test "$code" -eq 1
check "summary counts (3 added, 1 duplicate, 3 invalid)" \
	grep -qx "added 3, already present 1, invalid 3" "$T/out"
check "invalid line 8 (bad serial) is named" grep -q "^line 8: serial 'bad serial' is not a valid device id" "$T/err"
check "invalid line 9 (bad fingerprint) is named" grep -q "^line 9: birth fingerprint '1234'" "$T/err"
check "invalid line 10 (4 columns) is named" grep -q "^line 10: more than 3 columns" "$T/err"
check "exactly the three invalid lines are listed" test "$(grep -c '^line ' "$T/err")" -eq 3
check "one closing error line" grep -q "^onboardctl: allowlist import: 3 invalid lines skipped" "$T/err"

d1=$(show SN-0001); d2=$(show SN-0002); d3=$(show SN-0003)
check "SN-0001 is manufactured" test "$(field "$d1" state)" = manufactured
check "SN-0001 keeps its batch column" test "$(field "$d1" batch)" = lot-7
check "SN-0001's serial is in device show --json" test "$(field "$d1" serial)" = SN-0001
check "  ... and in device show" bash -c "\"$ONBOARDCTL\" device show SN-0001 | grep -qx 'serial: *SN-0001'"
check "SN-0002 birth fingerprint normalised to lower-case hex" test "$(field "$d2" birth_fp)" = "$BIRTH"
check "SN-0003 (quoted, no batch column) gets --batch" test "$(field "$d3" batch)" = default-lot
check "SN-0003 has no birth fingerprint" test "$(field "$d3" birth_fp)" = null
check "a manufactured device has no certificate (so nothing can connect as it)" \
	test "$(field "$d1" cert_fp)" = null
# known ID: device ID exists
known() { "$ONBOARDCTL" device show "$1" > /dev/null 2>&1; }
refute "the invalid serial was not written" known SN-0004
check "three devices, one audit entry, no event" \
	test "$(rcli DBSIZE)" -eq 4 -a "$(rcli XLEN onb:audit)" -eq 1 -a "$(rcli EXISTS onb:events)" -eq 0
check "audit entry summarises the chunk" audit_has allowlist-add "added 3, already present 1"

# Idempotence, --json, and a clean file exits 0.
set +e
json=$("$ONBOARDCTL" --json allowlist import "$T/lot7.csv" 2>/dev/null)
set -e
check "re-import: nothing added, all present" grep -q '"added":0,"present":4,"invalid":3' <<<"$json"
check "--json lists the invalid line numbers" \
	test "$(grep -o '"line":[0-9]*' <<<"$json" | tr '\n' ' ')" = '"line":8 "line":9 "line":10 '
printf 'SN-0006\nSN-0001\n' > "$T/clean.csv"
set +e; "$ONBOARDCTL" allowlist import "$T/clean.csv" > "$T/out" 2>&1; code=$?; set -e
check "clean file exits 0" test "$code" -eq 0
check "  ... and counts" grep -qx "added 1, already present 1, invalid 0" "$T/out"
printf 'SN-0007\n' > "$T/dry.csv"
check "dry run succeeds" "$ONBOARDCTL" allowlist import "$T/dry.csv" --dry-run > /dev/null
refute "  ... and writes nothing" known SN-0007
check "usage: --help" "$ONBOARDCTL" allowlist --help > /dev/null
set +e; "$ONBOARDCTL" allowlist import > /dev/null 2>&1; code=$?; set -e
check "usage error exits 2" test "$code" -eq 2

# 100,000 lines: one audit entry per 1,000-line chunk, timed (not asserted).
awk 'BEGIN { print "serial,birth_fp,batch";
	for(i = 0; i < 100000; i++) printf "BULK-%07d,%s,lot-%d\n", i, (i % 2 ? sprintf("%064x", i) : ""), i / 10000 }' \
	> "$T/big.csv"
audit_before=$(rcli XLEN onb:audit)
t0=$(date +%s%N)
"$ONBOARDCTL" allowlist import "$T/big.csv" > "$T/out"
t1=$(date +%s%N)
echo "# allowlist import of 100000 lines: $(( (t1 - t0) / 1000000 )) ms"
check "100,000 lines added" grep -qx "added 100000, already present 0, invalid 0" "$T/out"
check "  ... 100 audit entries, not 100,000" test $(( $(rcli XLEN onb:audit) - audit_before )) -eq 100
check "  ... a bulk device is manufactured" test "$(field "$(show BULK-0099999)" state)" = manufactured

finish

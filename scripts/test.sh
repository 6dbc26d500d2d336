#!/usr/bin/env bash
# The whole test suite, in stages:
#   1. build, then every ctest test (unit, integration, security, faults)
#      against Debian 12's Mosquitto 2.0.11 and Redis 7.0;
#   2. the version matrix: the integration, security and fault suites again
#      against bookworm-backports' Mosquitto (2.0.21) and sid's (2.1.2, built
#      from Debian's source package), and the integration suite against
#      Valkey 8 (scripts/brokers.sh fetches them), leaving out what does not
#      depend on the broker or the registry (ctest labels cbor, cbor-once,
#      sentinel-variant, once: tests/CMakeLists.txt says which runs where);
#      docs/compatibility.md is written from the results;
#   3. the same ctest tests under AddressSanitizer and UBSan (Mosquitto 2.0.11);
#   4. each libFuzzer target briefly;
#   5. the docker/ stages (static check, dockerised integration test);
#   6. the Debian package installed, used and purged on a clean Debian 12 root.
# A failed test prints its "not ok" lines and the broker's log; the end names
# every failed stage and closes with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=$(nproc)
STARTED=$(date +%s)

scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }

total_pass=0
total_fail=0
failed_stages=()
# what the matrix saw: server, registry, suite, passed, total, failed tests
MATRIX="$ROOT/build/onb-matrix.tsv"
mkdir -p "$ROOT/build"
: > "$MATRIX"

stage_failed() { total_fail=$((total_fail + 1)); failed_stages+=("$1"); }
# The "not ok" lines of every failure, repeated at the end: a CI page that
# shows only the last lines of a long run still says what failed.
FAILURE_LINES="$ROOT/build/onb-failures.txt"
: > "$FAILURE_LINES"
# note_failures NAME LOG: keeps LOG's first "not ok" lines under NAME.
note_failures() { grep -m 12 'not ok' "$2" 2>/dev/null | sed "s|^|$1: |" >> "$FAILURE_LINES" || :; }
# script_stage NAME SCRIPT: one stage; exit 77 means skipped (the script said why).
script_stage() {
	local log="$ROOT/build/onb-stage-${1//[^A-Za-z0-9.+-]/_}.log" rc
	echo "=== $1 ==="
	# Into a file, then shown: a tee could wait forever on a container
	# process that inherited the pipe.
	"$2" > "$log" 2>&1
	rc=$?
	cat "$log"
	case $rc in
		0) total_pass=$((total_pass + 1)) ;;
		77) echo "=== $1 SKIPPED (reason above) ===" ;;
		*) stage_failed "$1"; note_failures "$1" "$log" ;;
	esac
}

# build DIR CMAKE_ARGS...: configure and build; a failure is a failed stage.
build() {
	local dir=$1; shift
	echo "=== build $dir ($*) ==="
	mkdir -p "$dir"
	if cmake -S "$ROOT" -B "$dir" "$@" >/dev/null && cmake --build "$dir" -j"$JOBS" >"$dir/onb-build.log" 2>&1; then
		return 0
	fi
	tail -n 40 "$dir/onb-build.log" 2>/dev/null
	stage_failed "build $dir"
	return 1
}

# run_ctest NAME SERVER REGISTRY DIR CTEST_ARGS...: ctest in DIR (with the
# environment the caller set), every test counted; each suite's result goes
# to the matrix table as SERVER x REGISTRY.
run_ctest() {
	local name=$1 server=$2 registry=$3 dir=$4; shift 4
	local log="$dir/onb-ctest-${name//[^A-Za-z0-9.+-]/_}.log"
	echo "=== ctest: $name ==="
	(cd "$dir" && ctest --output-on-failure -j"$JOBS" --timeout 600 "$@") 2>&1 | tee "$log"
	# "  1/49 Test #23: integration.connect .....   Passed    0.66 sec", or
	# "***Failed", "***Timeout", "***Exception: ...", "Not Run" in its place
	local results
	results=$(awk '/^ *[0-9]+\/[0-9]+ +Test +#[0-9]+: / {
		for(i = 1; i <= NF; i++) if($i ~ /^#[0-9]+:$/) name = $(i + 1)
		print name, (/ Passed +[0-9.]+ sec$/ ? "Passed" : "Failed") }' "$log")
	if [ -z "$results" ] || ! grep -qE 'tests passed, [0-9]+ tests failed out of' "$log"; then
		stage_failed "ctest $name (no result: see above)"
		return
	fi
	local pass fail failed_names
	pass=$(awk '$2 == "Passed"' <<<"$results" | wc -l)
	fail=$(awk '$2 != "Passed"' <<<"$results" | wc -l)
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	if [ "$fail" -gt 0 ]; then
		failed_names=$(awk '$2 != "Passed" { printf "%s%s", sep, $1; sep = ", " }' <<<"$results")
		failed_stages+=("ctest $name: $failed_names")
		note_failures "$name" "$log"
	fi
	awk -v srv="$server" -v reg="$registry" '
		{ split($1, p, "."); suite = p[1]; total[suite]++; if($2 == "Passed") ok[suite]++; else bad[suite] = bad[suite] (bad[suite] ? ", " : "") $1 }
		END { for(s in total) printf "%s\t%s\t%s\t%d\t%d\t%s\n", srv, reg, s, ok[s], total[s], bad[s] }' \
		<<<"$results" >> "$MATRIX"
}

# ------------------------------------------------- 1. Debian 12's servers
mosq_version() { { "$1" -h 2>/dev/null || true; } | awk '/^mosquitto version/ && !v { v = $3 } END { print v }'; }
redis_version() { "$1" --version | sed -E 's/.* v=([0-9.]+).*/\1/'; }
DEB_MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
DEB_MOSQ_LABEL="$(mosq_version "$DEB_MOSQ") (Debian 12)"
REDIS_LABEL="Redis $(redis_version redis-server)"

if build "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
	run_ctest "Mosquitto $DEB_MOSQ_LABEL" "$DEB_MOSQ_LABEL" "$REDIS_LABEL" "$ROOT/build"

	# --------------------------------------------- 2. the version matrix
	echo "=== servers of the version matrix (scripts/brokers.sh) ==="
	if servers=$(scripts/brokers.sh "$ROOT/build/servers"); then
		echo "$servers"
		path_of() { awk -v n="$1" '$1 == n { print $2 }' <<<"$servers"; }
		version_of() { awk -v n="$1" '$1 == n { print $3 }' <<<"$servers"; }
		BP_LABEL="$(version_of mosquitto-backports) (bookworm-backports)"
		SID_LABEL="$(version_of mosquitto-sid) (sid source)"
		VALKEY_LABEL="Valkey $(version_of valkey-backports)"
		# The CBOR passes (label cbor) run on 2.0.11, 2.1.2 and under ASan: the
		# format is claimsvc's and the plugin's envelope code, the same on
		# every broker, so 2.0.21 and Valkey leave them out (suite time);
		# those of scripts that only provision on the way (label cbor-once)
		# run on 2.0.11 alone.
		ONB_MOSQUITTO=$(path_of mosquitto-backports) \
			run_ctest "Mosquitto $BP_LABEL" "$BP_LABEL" "$REDIS_LABEL" "$ROOT/build" -L 'integration|security|faults' -LE 'cbor|sentinel-variant|once'
		ONB_MOSQUITTO=$(path_of mosquitto-sid) \
			run_ctest "Mosquitto $SID_LABEL" "$SID_LABEL" "$REDIS_LABEL" "$ROOT/build" -L 'integration|security|faults' -LE 'cbor-once|sentinel-variant|once'
		ONB_MOSQUITTO=$(path_of mosquitto-sid) ONB_REDIS_SERVER=$(path_of valkey-backports) \
			run_ctest "Mosquitto $SID_LABEL on $VALKEY_LABEL" "$SID_LABEL" "$VALKEY_LABEL" "$ROOT/build" -L integration -LE 'cbor|sentinel-variant|once'
	else
		stage_failed "servers of the version matrix (scripts/brokers.sh)"
	fi
fi

# ------------------------------------------------- 3. sanitizers
if build "$ROOT/build-asan" -DCMAKE_BUILD_TYPE=Debug -DONB_SANITIZE=ON; then
	run_ctest "ASan+UBSan, Mosquitto $DEB_MOSQ_LABEL" "$DEB_MOSQ_LABEL, plugin under ASan+UBSan" "$REDIS_LABEL" "$ROOT/build-asan" -LE cbor-once
fi

scripts/compatibility.sh "$MATRIX" > docs/compatibility.md \
	&& echo "=== docs/compatibility.md written ===" && cat docs/compatibility.md

# ------------------------------------------------- 4. fuzzing
if [ -x tests/fuzz/run.sh ]; then
	echo "=== fuzz smoke ==="
	# 40 s a target, two at a time: nine targets take 200 s of the suite's
	# budget (the smoke test; campaign.sh is the long run, docs/fuzzing.md)
	if tests/fuzz/run.sh "$ROOT/build-fuzz" "${ONB_FUZZ_SECONDS:-40}"; then
		total_pass=$((total_pass + 1))
	else
		stage_failed "fuzz smoke"
	fi
fi

# ------------------------------------------------- 5. docker/
# A static check of the compose file and Dockerfiles, then the dockerised
# integration test (images built, compose stack up, a device provisioned
# through the published port). Each counts as one stage. The test is skipped,
# with its reason printed, only when no container runtime can run here
# (docker/test.sh exits 77).
echo "=== docker static check ==="
if docker/check.sh; then total_pass=$((total_pass + 1)); else stage_failed "docker static check"; fi
script_stage "docker integration test" docker/test.sh

# ------------------------------------------------- 6. the Debian package
# Built with CPack, installed with apt in a container made from the docker
# stage's base image (so after it), the broker brought up from the installed
# paths, purged, the root compared (packaging/test.sh). Skipped, with its
# reason, where no container can run (exit 77).
script_stage "Debian package" packaging/test.sh

echo "=== done in $(( $(date +%s) - STARTED )) s ==="
if [ -s "$FAILURE_LINES" ]; then echo "--- what failed ---"; cat "$FAILURE_LINES"; fi
for s in "${failed_stages[@]}"; do echo "FAILED: $s"; done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]

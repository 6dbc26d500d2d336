#!/usr/bin/env bash
# The whole test suite: unit and integration tests (real redis-server and
# mosquitto on loopback) in a normal build, then again with AddressSanitizer
# and UndefinedBehaviorSanitizer, then each libFuzzer target briefly, then the
# docker/ stages (static check, dockerised integration test).
# Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=$(nproc)

scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }

total_pass=0
total_fail=0

# run_ctest BUILD_DIR CMAKE_ARGS...: configure, build and run ctest there.
run_ctest() {
	local dir=$1; shift
	echo "=== build $dir ($*) ==="
	mkdir -p "$dir"
	if ! cmake -S "$ROOT" -B "$dir" "$@" >/dev/null || ! cmake --build "$dir" -j"$JOBS" >"$dir/onb-build.log" 2>&1; then
		tail -n 40 "$dir/onb-build.log" 2>/dev/null
		total_fail=$((total_fail + 1))
		return
	fi
	echo "=== ctest $dir ==="
	(cd "$dir" && ctest --output-on-failure -j"$JOBS" --timeout 600) | tee "$dir/onb-ctest.log"
	local line; line=$(grep -E 'tests passed, [0-9]+ tests failed out of' "$dir/onb-ctest.log" | tail -n 1)
	if [ -z "$line" ]; then total_fail=$((total_fail + 1)); return; fi
	local failed total
	failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
	total=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
	total_pass=$((total_pass + total - failed))
	total_fail=$((total_fail + failed))
}

run_ctest "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_ctest "$ROOT/build-asan" -DCMAKE_BUILD_TYPE=Debug -DONB_SANITIZE=ON

if [ -x tests/fuzz/run.sh ]; then
	echo "=== fuzz smoke ==="
	if tests/fuzz/run.sh "$ROOT/build-fuzz" "${ONB_FUZZ_SECONDS:-60}"; then
		total_pass=$((total_pass + 1))
	else
		total_fail=$((total_fail + 1))
	fi
fi

# docker/: a static check of the compose file and Dockerfiles, then the
# dockerised integration test (images built, compose stack up, a device
# provisioned through the published port). Each counts as one stage. The test
# is skipped, with its reason printed, only when no container runtime can run
# here (docker/test.sh exits 77).
echo "=== docker static check ==="
if docker/check.sh; then total_pass=$((total_pass + 1)); else total_fail=$((total_fail + 1)); fi
echo "=== docker integration test ==="
docker/test.sh; rc=$?
case $rc in
	0) total_pass=$((total_pass + 1)) ;;
	77) echo "=== docker integration test SKIPPED (reason above) ===" ;;
	*) total_fail=$((total_fail + 1)) ;;
esac

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]

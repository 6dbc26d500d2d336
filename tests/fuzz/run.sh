#!/usr/bin/env bash
# Builds every libFuzzer target with clang (ASan+UBSan) and runs each for
# SECONDS on its seed corpus, one per core at a time. New inputs go to a
# temp dir, never into the repo. Exit non-zero if any crash, leak or timeout
# was found.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build-fuzz}
SECONDS_EACH=${2:-60}

CC=clang cmake -S "$ROOT" -B "$BUILD" -DONB_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target fuzz_all >"$BUILD/fuzz-build.log" 2>&1 \
	|| { tail -n 30 "$BUILD/fuzz-build.log"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/onb-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

# fuzz_one BIN: one target for SECONDS_EACH; its exit status goes to
# $work/NAME.rc, its log to $work/NAME.log.
fuzz_one() {
	local bin=$1 name seeds rc=0
	name=$(basename "$bin"); seeds="$ROOT/tests/fuzz/corpus/${name#fuzz_}"
	mkdir -p "$work/$name"
	"$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$work/$name/" "$work/$name" "$seeds" >"$work/$name.log" 2>&1 || rc=$?
	echo "$rc" > "$work/$name.rc"
}

# One target per core at a time: each is single-threaded, and the stage
# then takes ceil(targets / cores) x SECONDS_EACH instead of the sum.
names=()
for bin in "$BUILD"/tests/fuzz/fuzz_*; do
	[ -x "$bin" ] || continue
	while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do wait -n || true; done
	fuzz_one "$bin" &
	names+=("$(basename "$bin")")
done
wait

status=0
for name in "${names[@]}"; do
	if [ "$(cat "$work/$name.rc" 2>/dev/null)" = 0 ]; then
		echo "fuzz $name: $(grep -Eo 'stat::number_of_executed_units: [0-9]+|Done [0-9]+ runs' "$work/$name.log" | tail -n 1) in ${SECONDS_EACH}s, no crash"
	else
		echo "fuzz $name: FAILED"; tail -n 40 "$work/$name.log"
		status=1
	fi
done
exit $status

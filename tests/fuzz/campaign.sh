#!/usr/bin/env bash
# The long fuzzing campaign of docs/fuzzing.md: builds every libFuzzer target
# (like run.sh) and runs them ONE AT A TIME (one core) for RUNS executions
# each, on a temporary working corpus seeded from tests/fuzz/corpus/NAME.
# Prints one Markdown table row per target; logs, corpora and any crash
# inputs stay in WORK (default: a new temp dir, kept, its path printed).
#   tests/fuzz/campaign.sh [BUILD_DIR] [RUNS] [WORK] [TARGET...]
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build-fuzz}
RUNS=${2:-10000000}
WORK=${3:-$(mktemp -d "${TMPDIR:-/tmp}/onb-campaign.XXXXXX")}
shift $(( $# < 3 ? $# : 3 ))
TARGETS=("$@")

CC=clang cmake -S "$ROOT" -B "$BUILD" -DONB_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
cmake --build "$BUILD" -j"$(nproc)" --target fuzz_all >"$BUILD/fuzz-build.log" 2>&1 \
	|| { tail -n 30 "$BUILD/fuzz-build.log"; exit 1; }
if [ ${#TARGETS[@]} -eq 0 ]; then
	for bin in "$BUILD"/tests/fuzz/fuzz_*; do [ -x "$bin" ] && TARGETS+=("$(basename "$bin")"); done
fi
echo "commit $(git -C "$ROOT" rev-parse HEAD), work dir $WORK" >&2
echo "| target | executions | wall s | exec/s | cov | ft | corpus (files/bytes) | crashes |"
echo "|---|---|---|---|---|---|---|---|"
status=0
for name in "${TARGETS[@]}"; do
	name=fuzz_${name#fuzz_}
	mkdir -p "$WORK/$name/corpus" "$WORK/$name/artifacts"
	t0=$(date +%s.%N)
	"$BUILD/tests/fuzz/$name" -runs="$RUNS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$WORK/$name/artifacts/" "$WORK/$name/corpus" "$ROOT/tests/fuzz/corpus/${name#fuzz_}" \
		>"$WORK/$name.log" 2>&1
	rc=$?
	wall=$(echo "$(date +%s.%N) - $t0" | bc)
	execs=$(grep -Eo 'stat::number_of_executed_units: [0-9]+' "$WORK/$name.log" | grep -Eo '[0-9]+$' || echo 0)
	last=$(grep -E '^#[0-9]+' "$WORK/$name.log" | tail -n 1)
	cov=$(grep -Eo 'cov: [0-9]+' <<<"$last" | grep -Eo '[0-9]+')
	ft=$(grep -Eo 'ft: [0-9]+' <<<"$last" | grep -Eo '[0-9]+')
	corp=$(grep -Eo 'corp: [0-9]+/[0-9]+[a-zA-Z]*' <<<"$last" | cut -d' ' -f2)
	crashes=$(find "$WORK/$name/artifacts" -type f | wc -l)
	[ "$rc" = 0 ] || status=1
	printf '| %s | %s | %.0f | %.0f | %s | %s | %s | %s%s |\n' "$name" "$execs" "$wall" \
		"$(echo "$execs / $wall" | bc -l)" "$cov" "$ft" "$corp" "$crashes" "$([ "$rc" = 0 ] || echo " (exit $rc)")"
done
exit $status

#!/usr/bin/env bash
# ACL check cost: ns/check natively and instructions/check under callgrind
# ((Ir with N checks - Ir with 0 checks) / N, so setup does not count).
#   tests/bench/acl_bench.sh [path/to/acl_bench] [N] [acl_bench options, e.g. --delivery]
set -euo pipefail

BIN=${1:-${ONB_BUILD_DIR:-build}/tests/bench/acl_bench}
N=${2:-200000}
shift $(($# < 2 ? $# : 2))
OPTS=("$@")
[ -x "$BIN" ] || { echo "acl_bench.sh: $BIN not built (cmake --build ... --target acl_bench)" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

"$BIN" "${OPTS[@]}" --iterations 20000000 | tee "$TMP/native.txt" | sed 's/^/native: /'

ir() { # total instructions of one callgrind run
	valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.$1" "$BIN" "${OPTS[@]}" --iterations "$1" >/dev/null 2>"$TMP/cg.$1.log"
	awk '/^(summary|totals):/ { print $2; exit }' "$TMP/cg.$1"
}
if command -v valgrind >/dev/null; then
	base=$(ir 0)
	full=$(ir "$N")
	echo "callgrind: Ir(0)=$base Ir($N)=$full"
	awk -v a="$base" -v b="$full" -v n="$N" 'BEGIN { printf "instructions/check: %.1f\n", (b - a) / n }'
else
	echo "instructions/check: (valgrind not installed)"
fi
grep '^ns/check' "$TMP/native.txt"

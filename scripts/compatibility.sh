#!/usr/bin/env bash
# docs/compatibility.md from the version matrix scripts/test.sh ran: one row
# per server and registry, one column per suite.
# usage: compatibility.sh MATRIX.tsv > docs/compatibility.md
# (MATRIX.tsv: server, registry, suite, passed, total, failed tests; tab-separated)
set -euo pipefail
cd "$(dirname "$0")/.."
tsv=${1:?usage: $0 MATRIX.tsv}

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain --untracked-files=no -- . ':!docs/compatibility.md' 2>/dev/null)" ] \
	|| commit="$commit with uncommitted changes"

cat <<EOF
# Compatibility

Written by \`scripts/test.sh\` (the README's test command) on $(date -u '+%Y-%m-%d %H:%M UTC'),
at commit $commit, on $(. /etc/os-release && echo "$PRETTY_NAME"), $(nproc) cores.
Each cell counts that suite's ctest tests that passed against that broker
and registry; "not run" means the suite is not part of that row (the unit
tests start no broker, and the Valkey row runs the integration suite only).

Where the servers come from (\`scripts/brokers.sh\`, Debian's archive only):
Mosquitto 2.0.11 and Redis 7.0 are Debian 12's packages; the
bookworm-backports broker is Debian's binary package (the same version
Debian 13 ships), unpacked with \`dpkg -x\`; the sid broker is built from
Debian's source package with CMake (the broker alone); Valkey is
bookworm-backports' \`valkey-server\`. Every broker in these runs used
glibc's checking malloc (\`MALLOC_CHECK_=3\`), or ASan in the sanitizer row,
and a test fails when its broker dies.

| Mosquitto | registry | unit | integration | security | faults |
|---|---|---|---|---|---|
EOF
awk -F'\t' '
	{
		row = $1 "\t" $2
		if(!(row in seen)){ seen[row] = 1; order[++n] = row }
		cell = ($4 == $5) ? sprintf("passed (%d/%d)", $4, $5) \
			: sprintf("**FAILED** (%d/%d; %s)", $4, $5, $6)
		cells[row "\t" $3] = cell
	}
	END {
		split("unit integration security faults", suites, " ")
		for(i = 1; i <= n; i++){
			split(order[i], rs, "\t")
			line = "| " rs[1] " | " rs[2]
			for(j = 1; j <= 4; j++){
				k = order[i] "\t" suites[j]
				line = line " | " ((k in cells) ? cells[k] : "not run")
			}
			print line " |"
		}
	}' "$tsv"

#!/usr/bin/env bash
# The plugin exports its three Mosquitto entry points and no other symbol
# (plugin/exports.map says why: a broker that exports a global of the same
# name takes it over, as 2.1's "metrics" did).
# usage: plugin_exports.sh PLUGIN.so
set -euo pipefail
so=${1:?usage: $0 PLUGIN.so}
expected=$'mosquitto_plugin_cleanup\nmosquitto_plugin_init\nmosquitto_plugin_version'
defined=$(nm -D --defined-only "$so" | awk '{ print $NF }' | sort)
if [ "$defined" = "$expected" ]; then
	echo "ok - $so defines exactly: $(tr '\n' ' ' <<<"$defined")"
	echo "1 passed, 0 failed"
else
	echo "not ok - $so exports more or less than its three entry points:"
	diff <(echo "$expected") <(echo "$defined") || true
	echo "0 passed, 1 failed"
	exit 1
fi

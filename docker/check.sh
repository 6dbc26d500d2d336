#!/usr/bin/env bash
# Fast static check of docker/ (a few seconds, no engine needed):
#   - compose.yml: docker-compose/docker compose "config -q" when installed; always a YAML parse and the stack's rules (the
#     balancer on 127.0.0.1 by default, brokers and Redis not published, CA keys
#     only where needed, claimsvc scalable and serving every broker, volumes declared)
#   - Dockerfiles: every FROM is debian:bookworm-slim, the final stage runs as a
#     non-root USER with a HEALTHCHECK, nothing copies keys, every COPY source exists
#   - the broker configuration rendered from config/mosquitto.conf
#   - shell syntax (and shellcheck when installed) of the scripts
# Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PASSES=0
FAILS=0
ok() { PASSES=$((PASSES + 1)); echo "ok - $*"; }
not_ok() { FAILS=$((FAILS + 1)); echo "not ok - $*"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

# ---- compose.yml with the compose tools that are here
ran=0
if command -v docker-compose >/dev/null; then
	check "docker-compose $(docker-compose version --short 2>/dev/null) config -q" \
		docker-compose -f docker/compose.yml config -q
	ran=1
fi
if command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
	check "docker compose config -q" docker compose -f docker/compose.yml config -q
	ran=1
fi
# podman-compose 1.0.3 has no "config" command: docker/test.sh runs its parser.
[ "$ran" -eq 1 ] || echo "# no docker-compose or docker compose here: the YAML checks below only"

# ---- compose.yml: YAML and the stack's rules
if python3 -c 'import yaml' 2>/dev/null; then
	rules() {
		python3 - docker/compose.yml <<'PY'
import re, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
errors = []
svcs = doc.get("services") or {}
declared = set((doc.get("volumes") or {}).keys())
BROKERS = ("broker-1", "broker-2", "broker-3")
for name in ("redis", "init", "lb", "claimsvc") + BROKERS:
    if name not in svcs:
        errors.append("service %s missing" % name)
def mounts(s):
    out = []
    for v in svcs.get(s, {}).get("volumes") or []:
        if isinstance(v, str):
            # defaults of ${VAR:-default} stand in for the variables
            parts = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", v).split(":")
            out.append((parts[0], parts[1] if len(parts) > 1 else "", parts[2:] if len(parts) > 2 else []))
        else:
            out.append((v.get("source", ""), v.get("target", ""), ["ro"] if v.get("read_only") else []))
    return out
for s, d in svcs.items():
    if "image" not in d:
        errors.append("%s: no image name (needed to share and run it)" % s)
    if d.get("privileged") or d.get("network_mode") == "host":
        errors.append("%s: privileged or host network" % s)
    for src, dst, opts in mounts(s):
        if not src.startswith(("/", ".", "~")) and src not in declared:
            errors.append("%s: volume %s is not declared" % (s, src))
ports = svcs.get("lb", {}).get("ports") or []
if not ports or not all(isinstance(p, str) and p.startswith("${ONB_MQTT_BIND:-127.0.0.1}:") for p in ports):
    errors.append("lb: must be published on 127.0.0.1 by default (${ONB_MQTT_BIND:-127.0.0.1}:...)")
# devices reach the brokers through the balancer only
for s in ("redis", "claimsvc", "init") + BROKERS:
    if svcs.get(s, {}).get("ports"):
        errors.append("%s: must not publish ports" % s)
c = svcs.get("claimsvc", {})
if "container_name" in c:
    errors.append("claimsvc: container_name prevents scaling")
if "replicas" not in (c.get("deploy") or {}):
    errors.append("claimsvc: deploy.replicas missing")
# a claimsvc that misses a broker leaves the devices landing there unanswered
served = str((c.get("environment") or {}).get("CLAIMSVC_BROKERS", "")).split()
for b in BROKERS:
    if b + ":8883" not in served:
        errors.append("claimsvc: CLAIMSVC_BROKERS does not list %s:8883" % b)
# The CA keys (pki volume, operator PKI) reach the init job only.
for s in ("claimsvc", "redis", "lb") + BROKERS:
    for src, dst, opts in mounts(s):
        if src in ("pki", "operator-pki"):
            errors.append("%s: mounts the CA keys (%s)" % (s, src))
for s in ("claimsvc",) + BROKERS:
    for src, dst, opts in mounts(s):
        if "ro" not in opts:
            errors.append("%s: %s should be mounted read-only" % (s, src))
op = [m for m in mounts("init") if m[1] == "/operator-pki"]
if not op or "ro" not in op[0][2]:
    errors.append("init: the operator PKI must be mounted read-only at /operator-pki")
for s in ("redis", "claimsvc", "lb") + BROKERS:
    if "stop_grace_period" not in svcs.get(s, {}) and not svcs.get(s, {}).get("init"):
        errors.append("%s: no stop_grace_period or init" % s)
for e in errors:
    print("  " + e)
sys.exit(1 if errors else 0)
PY
	}
	check "compose.yml: YAML, balancer on 127.0.0.1, brokers and Redis private, CA keys in the init job only, claimsvc scalable and serving every broker" rules
else
	not_ok "python3-yaml is missing: compose.yml was not parsed"
fi

# ---- Dockerfiles
dockerfile_rules() {
	local f=$1 bad=0 last_from src
	while read -r line; do
		if ! [[ $line =~ ^FROM[[:space:]]+debian:bookworm-slim([[:space:]]+AS[[:space:]]+[a-z0-9_-]+)?$ ]]; then
			echo "  $f: '$line' (every stage is FROM debian:bookworm-slim)"; bad=1
		fi
	done < <(grep -iE '^FROM[[:space:]]' "$f")
	last_from=$(grep -inE '^FROM[[:space:]]' "$f" | tail -n 1 | cut -d: -f1)
	local final; final=$(tail -n +"$last_from" "$f")
	local user; user=$(grep -E '^USER[[:space:]]' <<<"$final" | tail -n 1 | awk '{print $2}')
	if [ -z "$user" ] || [[ $user =~ ^(root|0)(:.*)?$ ]]; then
		echo "  $f: the final stage must end as a non-root USER (has '${user:-none}')"; bad=1
	fi
	if ! grep -qE '^HEALTHCHECK[[:space:]]+' <<<"$final" || grep -qE '^HEALTHCHECK[[:space:]]+NONE' <<<"$final"; then
		echo "  $f: the final stage has no HEALTHCHECK"; bad=1
	fi
	if grep -qiE '^(COPY|ADD)[[:space:]].*(\.key|pki/|secrets)' "$f"; then
		echo "  $f: copies keys into the image"; bad=1
	fi
	if grep -qiE '^ADD[[:space:]]+https?://' "$f"; then
		echo "  $f: ADD from a URL"; bad=1
	fi
	# every COPY source (not --from) exists in the build context (the repository root)
	while read -r -a words; do
		[[ ${words[1]} == --from=* ]] && continue
		local n=${#words[@]} i
		for ((i = 1; i < n - 1; i++)); do
			src=${words[i]}
			[[ $src == --* ]] && continue
			[ -e "$src" ] || { echo "  $f: COPY source $src does not exist"; bad=1; }
		done
	done < <(grep -E '^COPY[[:space:]]' "$f")
	return "$bad"
}
for f in docker/*.Dockerfile; do
	check "$f: FROM debian:bookworm-slim, non-root USER, HEALTHCHECK, no keys, COPY sources exist" dockerfile_rules "$f"
done
same_build_stage() {
	diff <(sed -n '/^# ---- build stage/,/^# ---- runtime/p' docker/broker.Dockerfile) \
		<(sed -n '/^# ---- build stage/,/^# ---- runtime/p' docker/claimsvc.Dockerfile) >/dev/null
}
check "broker and claimsvc Dockerfiles share one build stage (layer cache)" same_build_stage

# ---- the broker configuration
render() { docker/bin/render-mosquitto-conf config/mosquitto.conf > "$OUT"; }
check "mosquitto.conf renders from config/mosquitto.conf (per_listener_settings false, require_certificate, set_tcp_nodelay)" render
# the balancer's configuration, when HAProxy is installed here (the image checks it at build time)
if command -v haproxy >/dev/null; then
	check "haproxy.cfg is valid ($(haproxy -v | sed -n 's/^HAProxy version \([^ ]*\).*/\1/p'))" \
		bash -c 'haproxy -c -f docker/haproxy.cfg >/dev/null 2>&1'
fi

# ---- scripts
syntax() {
	local f bad=0
	for f in docker/bin/* docker/*.sh; do
		case "$(head -n 1 "$f")" in
			*bash*) bash -n "$f" || bad=1 ;;
			*) sh -n "$f" || bad=1 ;;
		esac
	done
	if command -v shellcheck >/dev/null; then shellcheck -x docker/bin/* docker/*.sh || bad=1; fi
	return "$bad"
}
check "scripts: syntax$(command -v shellcheck >/dev/null && echo ' and shellcheck')" syntax
exec_bits() { local f; for f in docker/bin/* docker/*.sh; do [ -x "$f" ] || { echo "  $f is not executable"; return 1; }; done; }
check "scripts are executable" exec_bits

echo "$PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]

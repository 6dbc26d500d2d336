#!/usr/bin/env bash
# A stand-in for claimsvc on a plain Mosquitto broker (no plugin), for
# devsim's smoke test: answers the AWS fleet-provisioning requests with
# mosquitto_sub/mosquitto_pub and the openssl CLI. Replies go to the shared
# accepted/rejected topics, so every waiting device sees every reply.
#
# usage: fake_responder.sh --port P --pki DIR --state DIR [--reject-serial REGEX]
#          [--reject-csr] [--silent-register] [--thing-prefix S] [--chain]
# Prints "ready" on stdout once subscribed; runs until killed.
set -euo pipefail

PORT="" PKI="" STATE="" REJECT_SERIAL="" REJECT_CSR=0 SILENT_REG=0 THING_PREFIX="" CHAIN=0
while [ $# -gt 0 ]; do
	case "$1" in
	--port) PORT=$2; shift 2 ;;
	--pki) PKI=$2; shift 2 ;;
	--state) STATE=$2; shift 2 ;;
	--reject-serial) REJECT_SERIAL=$2; shift 2 ;;
	--reject-csr) REJECT_CSR=1; shift ;;
	--silent-register) SILENT_REG=1; shift ;;
	--thing-prefix) THING_PREFIX=$2; shift 2 ;;
	--chain) CHAIN=1; shift ;;
	*) echo "fake_responder: unknown option $1" >&2; exit 2 ;;
	esac
done
[ -n "$PORT" ] && [ -n "$PKI" ] && [ -n "$STATE" ] || { echo "fake_responder: --port, --pki, --state" >&2; exit 2; }
mkdir -p "$STATE/tokens"

TLS=(-h 127.0.0.1 -p "$PORT" --cafile "$PKI/ca-bundle.pem" --cert "$PKI/responder.pem" --key "$PKI/responder.key")

# reply TOPIC JSON
reply() { mosquitto_pub "${TLS[@]}" -i "responder-pub-$$" -q 1 -t "$1" -m "$2"; }

# json_str NAME PAYLOAD: the value of a string member (no escaped quotes inside).
json_str() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" <<<"$2"; }

# PEM on stdin -> one JSON string body (newlines as \n).
pem_json() { awk 'BEGIN{ORS=""} {print $0 "\\n"}'; }

on_csr() {
	local topic=$1 payload=$2 csr cert id tok body
	if [ "$REJECT_CSR" = 1 ]; then
		reply "$topic/rejected" '{"statusCode":400,"errorCode":"InvalidCsr","errorMessage":"rejected by the fake responder"}'
		return
	fi
	csr=$(json_str certificateSigningRequest "$payload")
	printf '%b' "$csr" > "$STATE/req.csr"
	if ! openssl x509 -req -in "$STATE/req.csr" -CA "$PKI/device-ca.pem" -CAkey "$PKI/device-ca.key" \
			-set_serial "0x$(openssl rand -hex 16)" -days 1 -out "$STATE/cert.pem" 2>/dev/null; then
		reply "$topic/rejected" '{"statusCode":400,"errorCode":"InvalidCsr","errorMessage":"CSR does not parse"}'
		return
	fi
	[ "$CHAIN" = 1 ] && cat "$PKI/device-ca.pem" >> "$STATE/cert.pem"
	id=$(openssl x509 -in "$STATE/cert.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')
	tok=$(openssl rand -hex 32)
	touch "$STATE/tokens/$tok"
	body=$(pem_json < "$STATE/cert.pem")
	reply "$topic/accepted" "{\"certificateId\":\"$id\",\"certificatePem\":\"$body\",\"certificateOwnershipToken\":\"$tok\"}"
}

on_register() {
	local topic=$1 payload=$2 tok serial
	[ "$SILENT_REG" = 1 ] && return
	tok=$(json_str certificateOwnershipToken "$payload")
	serial=$(json_str SerialNumber "$payload")
	if [ -z "$tok" ] || [ ! -e "$STATE/tokens/$tok" ]; then
		reply "$topic/rejected" '{"statusCode":400,"errorCode":"InvalidCertificateOwnershipToken","errorMessage":"unknown token"}'
		return
	fi
	rm -f "$STATE/tokens/$tok"
	if [ -n "$REJECT_SERIAL" ] && [[ $serial =~ $REJECT_SERIAL ]]; then
		reply "$topic/rejected" "{\"statusCode\":403,\"errorCode\":\"DeviceNotAllowlisted\",\"errorMessage\":\"serial $serial is not on the allowlist\"}"
		return
	fi
	reply "$topic/accepted" "{\"deviceConfiguration\":{\"telemetryInterval\":\"60\"},\"thingName\":\"$THING_PREFIX$serial\"}"
}

coproc SUB { exec mosquitto_sub "${TLS[@]}" -i "responder-sub-$$" -q 1 -v \
	-t '$aws/certificates/create-from-csr/json' -t '$aws/provisioning-templates/+/provision/json'; }
trap 'kill $SUB_PID 2>/dev/null || true' EXIT
echo ready
while IFS= read -r line <&"${SUB[0]}"; do
	topic=${line%% *}
	payload=${line#* }
	case "$topic" in
	'$aws/certificates/create-from-csr/json') on_csr "$topic" "$payload" ;;
	'$aws/provisioning-templates/'*'/provision/json') on_register "$topic" "$payload" ;;
	esac
done

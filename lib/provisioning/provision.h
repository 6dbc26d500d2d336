/* The AWS IoT fleet-provisioning MQTT API (JSON documents; CBOR ones in
 * provisioning/provcbor.h) and the internal
 * envelope between the broker plugin and claimsvc (docs/internal-topics.md,
 * docs/provisioning.md). Pure functions of buffers: no I/O, fuzzable.
 *
 * JSON rules for every document parsed here: the top level must be an
 * object; field names are case-sensitive; unknown fields are ignored (AWS
 * devices may send more than we read); a field we read that appears twice
 * is refused; a payload that contains the escape \u0000 is refused (it would
 * silently truncate a string). Every input has a size cap. */
#ifndef ONB_PROVISION_H
#define ONB_PROVISION_H

#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

#include "core/common.h"
#include "pki/csr.h" /* its error codes are among ONB_PROV_ERRORS */
#include "provisioning/envelope.h" /* the broker side: topic names, ONB_PROV_PAYLOAD_MAX, ONB_PROV_TOPIC_MAX */
#include "core/ids.h"
#include "pki/x509.h"

/* ---- topics ---- */

#define ONB_PROV_TEMPLATE_NAME_MAX 36          /* ^[0-9A-Za-z_-]{1,36}$ */
#define ONB_PROV_SHARED_SUB    "$share/claimsvc/" ONB_TOPIC_PROV_REQUEST

enum onb_prov_kind {
	ONB_PROV_CREATE_FROM_CSR, /* $aws/certificates/create-from-csr/json (or /cbor) */
	ONB_PROV_CREATE_KEYS,     /* $aws/certificates/create/json (or /cbor) */
	ONB_PROV_REGISTER_THING,  /* $aws/provisioning-templates/<name>/provision/json (or /cbor) */
	ONB_PROV_RENEW,           /* devices/<id>/certificates/renew (an operational certificate renews) */
};

/* A request topic taken apart. template_name is the raw topic level (it may
 * fail onb_prov_template_name_valid; the caller answers InvalidTemplateName). */
struct onb_prov_topic {
	enum onb_prov_kind kind;
	char template_name[ONB_PROV_TOPIC_MAX + 1]; /* empty unless REGISTER_THING */
	char device_id[ONB_ID_MAX + 1];             /* RENEW: the id in the topic (valid) */
	enum onb_prov_format format;                /* of the request and of its reply */
};

/* True when name matches ^[0-9A-Za-z_-]{1,36}$. */
bool onb_prov_template_name_valid(const char *name);

/* Parses one of the request topics (the /json and /cbor formats, and the
 * renewal topic devices/<valid id>/certificates/renew, JSON only). The
 * template level must be non-empty and free of '+', '#'. ONB_EINVAL for any
 * other topic (claimsvc cannot answer it: there is no reply topic). */
int onb_prov_topic_parse(const char *topic, struct onb_prov_topic *out, struct onb_err *err);

/* Writes "<request topic>/accepted" or "/rejected" into buf. */
int onb_prov_reply_topic(const char *request_topic, bool accepted, char *buf, size_t len,
		struct onb_err *err);

/* True when buf[0..len) contains the JSON escape \u0000, which every JSON
 * document lib/ reads refuses (it would silently truncate a string). */
bool onb_json_has_nul_escape(const char *buf, size_t len);

/* ---- error codes of rejected replies ---- */

/* Each errorCode's spelling; its statusCode is in ONB_PROV_ERRORS below. */
#define ONB_PE_INVALID_PAYLOAD   "InvalidPayload"        /* not a JSON object, field missing or mistyped */
#define ONB_PE_PAYLOAD_TOO_LARGE "PayloadTooLarge"       /* over ONB_PROV_PAYLOAD_MAX (as the plugin says) */
#define ONB_PE_INVALID_PARAMS    "InvalidParameters"     /* template parameter missing or malformed */
#define ONB_PE_INVALID_TEMPLATE  "InvalidTemplateName"
#define ONB_PE_NOT_FOUND         "ResourceNotFound"      /* unknown template */
#define ONB_PE_TOKEN_INVALID     "InvalidCertificateOwnershipToken" /* unknown, expired, used */
#define ONB_PE_TOKEN_FOREIGN     "CertificateOwnershipTokenMismatch" /* issued to another connection */
#define ONB_PE_NOT_ALLOWLISTED   "DeviceNotAllowlisted"
#define ONB_PE_PROVISIONED       "DeviceAlreadyProvisioned"
#define ONB_PE_BIRTH_MISMATCH    "BirthCertificateMismatch"
#define ONB_PE_CERT_BOUND        "CertificateAlreadyRegistered"
#define ONB_PE_ACCESS_DENIED     "AccessDenied"          /* identity class may not provision */
#define ONB_PE_CREATE_DISABLED   "CreateKeysAndCertificateDisabled"
#define ONB_PE_NOT_CURRENT       "CertificateNotCurrent" /* renewal not sent with the device's current certificate */
#define ONB_PE_NOT_RENEWABLE     "DeviceNotRenewable"    /* unknown device, or a state that may not connect */
#define ONB_PE_THROTTLED         "Throttling"
#define ONB_PE_UNAVAILABLE       "ServiceUnavailable"    /* registry unreachable: retry */
#define ONB_PE_INTERNAL          "InternalError"

/* The one list of errorCodes with their statusCodes (docs/provisioning.md),
 * pki/csr.h's CSR codes included: onb_prov_status reads it. */
#define ONB_PROV_ERRORS(X) \
	X(ONB_PE_INVALID_PAYLOAD, 400)   X(ONB_PE_PAYLOAD_TOO_LARGE, 413) \
	X(ONB_PE_INVALID_PARAMS, 400)    X(ONB_PE_INVALID_TEMPLATE, 400) \
	X(ONB_CSR_E_INVALID, 400)        X(ONB_CSR_E_TOO_LARGE, 400) \
	X(ONB_CSR_E_SIGNATURE, 400)      X(ONB_CSR_E_WEAK_KEY, 400) \
	X(ONB_CSR_E_KEY_TYPE, 400)       X(ONB_CSR_E_SIG_ALG, 400) \
	X(ONB_PE_NOT_FOUND, 404) \
	X(ONB_PE_TOKEN_INVALID, 403)     X(ONB_PE_TOKEN_FOREIGN, 403) \
	X(ONB_PE_NOT_ALLOWLISTED, 403)   X(ONB_PE_PROVISIONED, 403) \
	X(ONB_PE_BIRTH_MISMATCH, 403)    X(ONB_PE_CERT_BOUND, 403) \
	X(ONB_PE_ACCESS_DENIED, 403)     X(ONB_PE_CREATE_DISABLED, 403) \
	X(ONB_PE_NOT_CURRENT, 403)       X(ONB_PE_NOT_RENEWABLE, 403) \
	X(ONB_PE_THROTTLED, 429) \
	X(ONB_PE_UNAVAILABLE, 500)       X(ONB_PE_INTERNAL, 500)

/* The statusCode of an errorCode of ONB_PROV_ERRORS; 500 when unknown. */
int onb_prov_status(const char *error_code);

/* The errorCode that answers a registry's refusal reason (ONB_RT_* of
 * provisioning/provreg.h, ONB_ROT_* of registry/lifecycle.h): the one mapping of reasons to
 * codes. fallback when reason is NULL or not mapped. */
const char *onb_prov_reason_error(const char *reason, const char *fallback);

/* ---- the internal envelope (docs/internal-topics.md) ---- */

#define ONB_PROV_ENVELOPE_MAX (1024 * 1024) /* whole request envelope, bytes */
#define ONB_PROV_CLASS_MAX 16
#define ONB_PROV_ADDRESS_MAX 64

/* A decoded request envelope. Owns payload: release with
 * onb_prov_envelope_clear. */
struct onb_prov_envelope {
	char client_id[ONB_ID_MAX + 1];            /* onb_id_valid (the plugin's rule) */
	char idclass[ONB_PROV_CLASS_MAX + 1];      /* [a-z]+, e.g. "claim" */
	char fp[ONB_FP_HEXLEN + 1];                /* 64 lower-case hex */
	char address[ONB_PROV_ADDRESS_MAX + 1];    /* empty when absent */
	char topic[ONB_PROV_TOPIC_MAX + 1];        /* the device's request topic */
	char *payload;                             /* NUL-terminated; NULL when too large, "" when refused */
	size_t payload_len;                        /* its length (a CBOR payload may hold NULs); the length the device sent when too large */
	bool payload_too_large;                    /* payload_len > ONB_PROV_PAYLOAD_MAX */
	enum onb_refusal refused;                  /* the payload did not travel: why (ONB_REFUSAL_NONE: it did) */
	size_t refused_len;                        /* with refused: the length the device sent */
	char tenant[ONB_ID_MAX + 1];               /* a tenant back-end's verified tenant, "" if none */
};

#define ONB_MQTT_PAYLOAD_MAX 268435455 /* the largest payload an MQTT packet can hold */

/* Decodes a request envelope of len bytes: {"v":1, clientId, class, fp,
 * [address], [tenant], topic, payload}, where a CBOR topic's
 * (onb_prov_topic_format) has "payloadBase64" instead of "payload" (each
 * format's field only), or a refusal envelope that has
 * "refused" (a reason of onb_refusal_parse) and "size" (an integer: over
 * ONB_PROV_PAYLOAD_MAX for "too-large", at most that for "nul-byte") instead
 * of "payload". The device payload inside is capped at ONB_PROV_PAYLOAD_MAX
 * (the plugin refuses larger ones); one over it still decodes (so the device
 * can be told) as refused ONB_REFUSAL_TOO_LARGE. Refused envelopes decode
 * with refused and refused_len set, payload NULL and payload_too_large set
 * when too large, payload "" otherwise. ONB_EINVAL for anything else that is
 * wrong: no reply can be addressed then. */
int onb_prov_envelope_decode(const char *buf, size_t len, struct onb_prov_envelope *out,
		struct onb_err *err);

/* For an envelope whose payload the broker refused (env->refused set): the
 * errorCode to answer (ONB_PE_PAYLOAD_TOO_LARGE or ONB_PE_INVALID_PAYLOAD)
 * and, in msg, the errorMessage. */
const char *onb_prov_refusal_error(const struct onb_prov_envelope *env, char *msg, size_t len);

/* Frees the payload and zeroes *env. */
void onb_prov_envelope_clear(struct onb_prov_envelope *env);

/* Encodes a reply envelope {"v":1, clientId, topic, payload}. Returns a
 * string the caller frees with onb_prov_free, or NULL with err set. */
char *onb_prov_reply_encode(const char *client_id, const char *topic, const char *payload,
		struct onb_err *err);

/* ---- request documents (payloads from the device) ---- */

#define ONB_PROV_TOKEN_MAX 128
#define ONB_PROV_PARAMS_MAX 32
#define ONB_PROV_PARAM_NAME_MAX 64
#define ONB_PROV_PARAM_VALUE_MAX 256

/* CreateCertificateFromCsr {"certificateSigningRequest": "<PEM>"}: on
 * success *csr_out is a new NUL-terminated copy of the PEM (free with free())
 * and *csr_len its length. Failures set *code: PayloadTooLarge (over
 * ONB_PROV_PAYLOAD_MAX), InvalidPayload, or CsrTooLarge (PEM over ONB_CSR_MAX). */
int onb_prov_csr_request_parse(const char *buf, size_t len, char **csr_out, size_t *csr_len,
		const char **code, struct onb_err *err);

/* CreateKeysAndCertificate: AWS sends {} (an empty payload is taken as {}).
 * Anything but an object is InvalidPayload. */
int onb_prov_keys_request_parse(const char *buf, size_t len, const char **code,
		struct onb_err *err);

struct onb_prov_param {
	char name[ONB_PROV_PARAM_NAME_MAX + 1];
	char value[ONB_PROV_PARAM_VALUE_MAX + 1];
};

/* RegisterThing {"certificateOwnershipToken": "...", "parameters": {...}}.
 * parameters is optional; its values must be strings (AWS sends strings). */
struct onb_prov_register_req {
	char token[ONB_PROV_TOKEN_MAX + 1];
	size_t nparams;
	struct onb_prov_param params[ONB_PROV_PARAMS_MAX];
};

/* Parses a RegisterThing request into *out. Failures set *code: InvalidPayload
 * (shape), InvalidCertificateOwnershipToken (token over ONB_PROV_TOKEN_MAX),
 * InvalidParameters (too many, a name or value too long, a value not a string). */
int onb_prov_register_request_parse(const char *buf, size_t len,
		struct onb_prov_register_req *out, const char **code, struct onb_err *err);

/* The RegisterThing request in one canonical text, the same whatever the
 * order of the parameters: ["<template>", ["name", "value"], ...] sorted by
 * name (JSON). A resent request is recognised by it (provisioning/provreg.h). Returns
 * a string the caller frees with cJSON_free, or NULL when memory is short. */
char *onb_prov_register_canonical(const char *template_name, const struct onb_prov_register_req *req,
		struct onb_err *err);

/* The value of parameter name in req, or NULL. */
const char *onb_prov_param_get(const struct onb_prov_register_req *req, const char *name);

/* ---- response documents (to the device; free each with onb_prov_free) ----
 * They are printed into one buffer sized in advance, so no intermediate copy
 * of a private key is left in freed memory. */

/* {"certificateId", "certificatePem", "certificateOwnershipToken"} and, when
 * private_key_pem is non-NULL (CreateKeysAndCertificate), "privateKey". */
char *onb_prov_cert_accepted(const char *cert_id, const char *cert_pem,
		const char *private_key_pem, const char *token, struct onb_err *err);

/* The answer to a renewal: {"certificateId", "certificatePem",
 * "previousCertificateValidUntil": seconds since the epoch}. */
char *onb_prov_renew_accepted(const char *cert_id, const char *cert_pem, int64_t old_valid_until_ms,
		struct onb_err *err);

/* {"deviceConfiguration": <copy of device_config or {}>, "thingName"}. */
char *onb_prov_register_accepted(const cJSON *device_config, const char *thing_name,
		struct onb_err *err);

/* {"statusCode", "errorCode", "errorMessage"} with statusCode from
 * onb_prov_status(error_code). */
char *onb_prov_rejected(const char *error_code, const char *message, struct onb_err *err);

/* Wipes and frees a document returned by this module. NULL is fine. */
void onb_prov_free(char *doc);

#endif

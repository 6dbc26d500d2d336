/* The AWS IoT fleet-provisioning documents in CBOR (RFC 8949), as AWS serves
 * them on the .../cbor topics to the AWS IoT Device SDK for Embedded C
 * (Fleet Provisioning library): the same fields, limits and error codes as
 * the JSON documents of provisioning/provision.h, read into and written from the same
 * structures. libcbor (Debian's libcbor 0.8) decodes and encodes; this
 * module adds the strictness. Pure functions of buffers: no I/O, fuzzable.
 *
 * Decoding rules for a request (docs/provisioning.md, "CBOR"): one data item,
 * nothing after it; the top level a map; definite and indefinite lengths
 * alike; every map key we read a text string, none of them twice; text
 * strings valid UTF-8 (libcbor checks) and the ones we read free of NUL bytes; containers nested at most
 * ONB_PROVCBOR_DEPTH_MAX deep; no tags; no length that claims more than the
 * payload holds (checked before anything is allocated); the payload at most
 * ONB_PROV_PAYLOAD_MAX bytes. Unknown fields are ignored, as in JSON. */
#ifndef ONB_PROVCBOR_H
#define ONB_PROVCBOR_H

#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

#include "core/common.h"
#include "provisioning/provcodec.h"
#include "provisioning/provision.h"

/* A request needs 2 levels (the document, its parameters); 4 leaves room
 * for an unknown field holding a small map, which JSON would ignore too. */
#define ONB_PROVCBOR_DEPTH_MAX 4
/* Replies read by tools and tests (onb_provcbor_to_json): a template's
 * deviceConfiguration may nest deeper. */
#define ONB_PROVCBOR_TOOL_DEPTH_MAX 64

/* ---- requests (from the device); same outputs and errorCodes as JSON ---- */

/* CreateCertificateFromCsr {"certificateSigningRequest": text}: *csr_out a
 * new NUL-terminated copy (free with free()). See onb_prov_csr_request_parse. */
int onb_provcbor_csr_request_parse(const void *buf, size_t len, char **csr_out, size_t *csr_len,
		const char **code, struct onb_err *err);

/* CreateKeysAndCertificate: an empty payload or a map (its fields ignored). */
int onb_provcbor_keys_request_parse(const void *buf, size_t len, const char **code, struct onb_err *err);

/* RegisterThing {"certificateOwnershipToken": text, "parameters": {text:
 * text, ...}}; see onb_prov_register_request_parse. */
int onb_provcbor_register_request_parse(const void *buf, size_t len, struct onb_prov_register_req *out,
		const char **code, struct onb_err *err);

/* ---- replies (to the device; release with onb_prov_doc_clear) ---- */

/* {certificateId, certificatePem, [privateKey], certificateOwnershipToken},
 * written into one buffer sized in advance (no stray copy of the key). */
int onb_provcbor_cert_accepted(const char *cert_id, const char *cert_pem, const char *private_key_pem,
		const char *token, struct onb_prov_doc *out, struct onb_err *err);

/* {deviceConfiguration: <device_config as CBOR, or {}>, thingName}. JSON
 * numbers become CBOR integers when they are whole (|n| <= 2^53), floats
 * otherwise. */
int onb_provcbor_register_accepted(const cJSON *device_config, const char *thing_name,
		struct onb_prov_doc *out, struct onb_err *err);

/* {statusCode, errorCode, errorMessage}, statusCode from onb_prov_status;
 * errorMessage cut to ONB_ERRLEN - 1 bytes, each outside printable ASCII
 * replaced by '?' (a CBOR text string must be UTF-8). */
int onb_provcbor_rejected(const char *error_code, const char *message, struct onb_prov_doc *out,
		struct onb_err *err);

/* ---- conversions for tools and tests (devsim, tests/tools/cbortool) ---- */

/* A CBOR document decoded under the request rules (but any top-level item,
 * nesting up to max_depth, byte strings refused) as a new cJSON tree (free
 * with cJSON_Delete); NULL with err set. */
cJSON *onb_provcbor_to_json(const void *buf, size_t len, int max_depth, struct onb_err *err);

/* json as CBOR (objects as definite maps, whole numbers as integers). */
int onb_provcbor_from_json(const cJSON *json, struct onb_prov_doc *out, struct onb_err *err);

#endif

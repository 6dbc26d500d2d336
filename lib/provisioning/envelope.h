/* The broker side of docs/internal-topics.md: which topics are provisioning
 * requests and replies, and the envelopes that carry them to and from claimsvc
 * stamped with the requester's verified identity. Pure functions of buffers. */
#ifndef ONB_ENVELOPE_H
#define ONB_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/common.h"
#include "core/ids.h"
#include "core/vocab.h"

#define ONB_TOPIC_INTERNAL_PREFIX "onb/internal/"
#define ONB_TOPIC_PROV_REQUEST "onb/internal/prov/request"
#define ONB_TOPIC_PROV_REPLY   "onb/internal/prov/reply"    /* every reply, also to claims */
#define ONB_TOPIC_CLAIM        "onb/claim/json"             /* tenant back-ends redeem codes */
#define ONB_TOPIC_CLAIM_REQUEST "onb/internal/claim/request"
#define ONB_TOPIC_STATS        "onb/internal/stats"         /* a service's counters -> $SYS/onboard/claimsvc/<id> */
#define ONB_TOPIC_RENEW_PREFIX "devices/"               /* devices/<id>/certificates/renew */
#define ONB_TOPIC_RENEW_SUFFIX "/certificates/renew"
#define ONB_PROV_PAYLOAD_MAX 65536   /* a device's request; a CSR is at most 16 KiB */
#define ONB_PROV_REPLY_MAX   262144  /* claimsvc's envelope: cert chain, maybe a key */
#define ONB_PROV_TOPIC_MAX   160
/* The template level of a RegisterThing topic, valid name or not, such that
 * the reply topic ("/rejected" appended) still fits ONB_PROV_TOPIC_MAX. */
#define ONB_PROV_TEMPLATE_LEVEL_MAX 100

/* True for the request topics a device may send: create-from-csr, create,
 * provisioning-templates/<name>/provision (each ending in /json or /cbor),
 * and the renewal topic devices/<id>/certificates/renew (<id> any valid id:
 * whose id it must be is the caller's check, onb_prov_renew_topic). */
bool onb_prov_is_request_topic(const char *topic);

/* The payload format of a provisioning request or reply topic: AWS serves
 * each fleet-provisioning API in JSON and in CBOR (RFC 8949), named by the
 * topic's .../json or .../cbor level. Renewals and claims are JSON only. */
enum onb_prov_format {
	ONB_PROV_JSON = 0,
	ONB_PROV_CBOR,
};

/* The format of a request topic or of its /accepted, /rejected reply topic
 * (ONB_PROV_JSON for any other topic). */
enum onb_prov_format onb_prov_topic_format(const char *topic);

/* True for the /accepted and /rejected answers to those requests and to
 * onb/claim/json: the only topics a reply envelope may deliver to. */
bool onb_prov_is_reply_topic(const char *topic);

/* True when topic is "devices/<device_id>/certificates/renew" followed by
 * exactly suffix ("" for the request, "/accepted", "/rejected", "/required"). */
bool onb_prov_renew_topic(const char *topic, const char *device_id, const char *suffix);

/* The internal topic a request on topic is stamped and re-routed to
 * (ONB_TOPIC_PROV_REQUEST or ONB_TOPIC_CLAIM_REQUEST), or NULL. */
const char *onb_request_route(const char *topic);

/* True for any topic under onb/internal/. */
bool onb_topic_is_internal(const char *topic);

/* True for the topics whose messages the plugin takes over and nobody may
 * receive: the request topics (their originals go on emptied once handed to
 * claimsvc) and everything under onb/internal/ but the two routes claimsvc
 * subscribes to (its replies and counters, once consumed). */
bool onb_topic_handed_off(const char *topic);

struct onb_requester_stamp {
	const char *client_id;
	const char *idclass;   /* "claim", "birth", "device" */
	const char *fp;
	const char *address;   /* may be NULL */
	const char *tenant;    /* a tenant back-end's verified tenant, or NULL */
};

/* Why the broker refused a request's payload itself. Such a payload does not
 * travel: the plugin sends claimsvc a refusal envelope instead (no payload,
 * only its size and this reason), and claimsvc answers and audits it like
 * any other bad request, under its rate limits (docs/internal-topics.md). */
/* enum onb_refusal: the list ONB_REFUSALS of core/vocab.h. */

/* "too-large", "nul-byte"; NULL for ONB_REFUSAL_NONE. */
const char *onb_refusal_name(enum onb_refusal why);

/* The reason named name; ONB_REFUSAL_NONE when unknown. */
enum onb_refusal onb_refusal_parse(const char *name);

/* The base64 (RFC 4648, padded, no line breaks) of data[0..len) into a new
 * NUL-terminated string the caller frees with free(); NULL when memory is
 * short or len is over ONB_B64_INPUT_MAX. OpenSSL's EVP_EncodeBlock. */
#define ONB_B64_INPUT_MAX (64 * 1024 * 1024)
char *onb_b64_encode(const void *data, size_t len);

/* Decodes the base64 text b64[0..len) (padded, no blanks) into a new buffer
 * the caller frees with free(), holding *out_len bytes and one NUL after
 * them (so text can be used as a string). NULL when the text is not base64,
 * would decode to more than max bytes, or memory is short. */
unsigned char *onb_b64_decode(const char *b64, size_t len, size_t max, size_t *out_len);

/* The envelope that hands payload[0..len), sent on topic by who, to
 * claimsvc: a request envelope, or, when the payload cannot travel, a
 * refusal envelope ({..., "refused": reason, "size": len}, no payload), with
 * the reason in *refused (ONB_REFUSAL_NONE for a request envelope). A CBOR
 * request (onb_prov_topic_format) is binary: its bytes travel as base64 in
 * "payloadBase64" instead of "payload", NUL bytes and all. Returns
 * a NUL-terminated string the caller frees with cJSON_free, *out_len its
 * length; NULL only when memory is short. */
char *onb_envelope_request(const struct onb_requester_stamp *who, const char *topic,
		const void *payload, size_t len, size_t *out_len, enum onb_refusal *refused,
		struct onb_err *err);

/* A decoded reply envelope; the strings live in the struct. The payload is
 * heap memory (malloc) the caller frees with free(), length payload_len. */
struct onb_reply {
	char client_id[ONB_ID_MAX + 1];
	char topic[ONB_PROV_TOPIC_MAX + 1];
	char *payload;
	size_t payload_len;
};

/* Parses a reply envelope; refuses anything but a valid client id, a reply
 * topic (onb_prov_is_reply_topic) and, for a JSON topic, a string
 * "payload", for a CBOR topic a base64 "payloadBase64" (decoded into
 * payload; the envelope, base64 and all, at most ONB_PROV_REPLY_MAX). */
int onb_envelope_reply_parse(const void *buf, size_t len, struct onb_reply *out, struct onb_err *err);

/* claimsvc's side of a CBOR reply: the envelope {"v":1, clientId, topic,
 * payloadBase64} delivering data[0..len) on a CBOR reply topic. Returns a
 * string the caller frees with onb_prov_free (provisioning/provision.h), or NULL
 * with err set. */
char *onb_envelope_reply_binary(const char *client_id, const char *topic, const void *data, size_t len,
		struct onb_err *err);

#endif

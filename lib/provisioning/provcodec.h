/* The provisioning documents of both formats behind one interface: claimsvc
 * picks a codec by the request topic's format (onb_prov_topic_format) and
 * answers in the same format. JSON: provisioning/provision.h; CBOR: provisioning/provcbor.h. */
#ifndef ONB_PROVCODEC_H
#define ONB_PROVCODEC_H

#include <stddef.h>

#include <cJSON.h>

#include "core/common.h"
#include "provisioning/envelope.h"

struct onb_prov_register_req;

/* A reply document of either format; owns data (release with
 * onb_prov_doc_clear, which wipes it: it may hold a private key). */
struct onb_prov_doc {
	unsigned char *data;          /* JSON: NUL-terminated text; CBOR: len bytes */
	size_t len;
	enum onb_prov_format format;  /* says which allocator freed data */
};

void onb_prov_doc_clear(struct onb_prov_doc *doc);

/* ---- one codec per format: claimsvc picks by the request topic's ---- */

struct onb_prov_codec {
	const char *name; /* "json", "cbor" */
	int (*csr_request)(const void *buf, size_t len, char **csr_out, size_t *csr_len, const char **code,
			struct onb_err *err);
	int (*keys_request)(const void *buf, size_t len, const char **code, struct onb_err *err);
	int (*register_request)(const void *buf, size_t len, struct onb_prov_register_req *out, const char **code,
			struct onb_err *err);
	int (*cert_accepted)(const char *cert_id, const char *cert_pem, const char *private_key_pem,
			const char *token, struct onb_prov_doc *out, struct onb_err *err);
	int (*register_accepted)(const cJSON *device_config, const char *thing_name, struct onb_prov_doc *out,
			struct onb_err *err);
	int (*rejected)(const char *error_code, const char *message, struct onb_prov_doc *out, struct onb_err *err);
};

/* The codec of a format (never NULL). */
const struct onb_prov_codec *onb_prov_codec(enum onb_prov_format format);

/* The reply envelope delivering doc on topic to client_id (JSON: "payload",
 * CBOR: "payloadBase64"). A string the caller frees with onb_prov_free. */
char *onb_prov_doc_envelope(const char *client_id, const char *topic, const struct onb_prov_doc *doc,
		struct onb_err *err);

#endif

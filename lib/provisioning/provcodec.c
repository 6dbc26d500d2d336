/* One interface over the JSON (provision.c) and CBOR (provcbor.c) documents
 * (contract: provisioning/provcodec.h). The JSON entries wrap provision.c's functions
 * so that they hand back a document with its length like the CBOR ones. */
#include "provisioning/provcodec.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "provisioning/provcbor.h"
#include "provisioning/provision.h"

void onb_prov_doc_clear(struct onb_prov_doc *doc)
{
	if(!doc) return;
	if(doc->data){
		OPENSSL_cleanse(doc->data, doc->len);
		/* JSON documents come from cJSON's allocator, CBOR ones from malloc */
		if(doc->format == ONB_PROV_JSON) cJSON_free(doc->data);
		else free(doc->data);
	}
	memset(doc, 0, sizeof(*doc));
}

/* Takes over a JSON document of provision.c (NULL: err is set already). */
static int json_doc(char *text, struct onb_prov_doc *out)
{
	if(!text) return ONB_EINTERNAL;
	*out = (struct onb_prov_doc){ .data = (unsigned char *)text, .len = strlen(text), .format = ONB_PROV_JSON };
	return ONB_OK;
}

static int json_csr(const void *buf, size_t len, char **csr_out, size_t *csr_len, const char **code,
		struct onb_err *err)
{
	return onb_prov_csr_request_parse(buf, len, csr_out, csr_len, code, err);
}

static int json_keys(const void *buf, size_t len, const char **code, struct onb_err *err)
{
	return onb_prov_keys_request_parse(buf, len, code, err);
}

static int json_register(const void *buf, size_t len, struct onb_prov_register_req *out, const char **code,
		struct onb_err *err)
{
	return onb_prov_register_request_parse(buf, len, out, code, err);
}

static int json_cert_accepted(const char *cert_id, const char *cert_pem, const char *private_key_pem,
		const char *token, struct onb_prov_doc *out, struct onb_err *err)
{
	return json_doc(onb_prov_cert_accepted(cert_id, cert_pem, private_key_pem, token, err), out);
}

static int json_register_accepted(const cJSON *device_config, const char *thing_name, struct onb_prov_doc *out,
		struct onb_err *err)
{
	return json_doc(onb_prov_register_accepted(device_config, thing_name, err), out);
}

static int json_rejected(const char *error_code, const char *message, struct onb_prov_doc *out,
		struct onb_err *err)
{
	return json_doc(onb_prov_rejected(error_code, message, err), out);
}

static const struct onb_prov_codec codecs[] = {
	[ONB_PROV_JSON] = {
		.name = "json",
		.csr_request = json_csr, .keys_request = json_keys, .register_request = json_register,
		.cert_accepted = json_cert_accepted, .register_accepted = json_register_accepted,
		.rejected = json_rejected,
	},
	[ONB_PROV_CBOR] = {
		.name = "cbor",
		.csr_request = onb_provcbor_csr_request_parse, .keys_request = onb_provcbor_keys_request_parse,
		.register_request = onb_provcbor_register_request_parse,
		.cert_accepted = onb_provcbor_cert_accepted, .register_accepted = onb_provcbor_register_accepted,
		.rejected = onb_provcbor_rejected,
	},
};

const struct onb_prov_codec *onb_prov_codec(enum onb_prov_format format)
{
	return &codecs[format == ONB_PROV_CBOR ? ONB_PROV_CBOR : ONB_PROV_JSON];
}

char *onb_prov_doc_envelope(const char *client_id, const char *topic, const struct onb_prov_doc *doc,
		struct onb_err *err)
{
	if(!doc || !doc->data){
		onb_fail(err, ONB_EINVAL, "reply envelope: no document");
		return NULL;
	}
	if(doc->format == ONB_PROV_CBOR) return onb_envelope_reply_binary(client_id, topic, doc->data, doc->len, err);
	return onb_prov_reply_encode(client_id, topic, (const char *)doc->data, err);
}

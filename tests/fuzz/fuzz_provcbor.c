/* libFuzzer target for lib/provisioning/provcbor.c and the binary envelopes. The first
 * byte picks what the rest of the input is:
 *   0 CreateCertificateFromCsr request (CBOR)
 *   1 CreateKeysAndCertificate request (CBOR)
 *   2 RegisterThing request (CBOR)    (then written back as CBOR and read again)
 *   3 any CBOR document for the tools (onb_provcbor_to_json, then back and forth)
 *   4 a device payload on a cbor topic (request envelope, base64, decoded back)
 *   5 a reply envelope (the plugin's parse), then the rest as reply fields
 * Invariants: failures name an errorCode with a known status and a message;
 * what is decoded respects the documented limits; round trips give back
 * what went in. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "pki/csr.h"
#include "provisioning/provcbor.h"
#include "provisioning/provision.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FP "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void check_code(int rc, const char *code, const struct onb_err *err)
{
	if(rc == ONB_OK) return;
	if(!code || !err->msg[0]) abort();
	/* a known errorCode (500 only for InternalError: out of memory) */
	if(onb_prov_status(code) == 500 && strcmp(code, ONB_PE_INTERNAL) != 0) abort();
}

static void csr_request(const uint8_t *buf, size_t len)
{
	const char *code = NULL;
	struct onb_err err = { "" };
	char *csr = NULL;
	size_t n = 0;
	int rc = onb_provcbor_csr_request_parse(buf, len, &csr, &n, &code, &err);

	check_code(rc, code, &err);
	if(rc != ONB_OK) return;
	if(!csr || n > ONB_CSR_MAX || strlen(csr) != n) abort();
	free(csr);
}

/* The request as CBOR again: {token, parameters{...}}. */
static void register_round_trip(const struct onb_prov_register_req *req)
{
	struct onb_prov_register_req back;
	struct onb_prov_doc doc;
	const char *code = NULL;
	struct onb_err err = { "" };
	cJSON *j = cJSON_CreateObject(), *p;

	if(!j || !cJSON_AddStringToObject(j, "certificateOwnershipToken", req->token)
			|| !(p = cJSON_AddObjectToObject(j, "parameters"))){
		cJSON_Delete(j);
		return;
	}
	for(size_t i = 0; i < req->nparams; i++) cJSON_AddStringToObject(p, req->params[i].name, req->params[i].value);
	if(onb_provcbor_from_json(j, &doc, &err) == ONB_OK){
		if(onb_provcbor_register_request_parse(doc.data, doc.len, &back, &code, &err) != ONB_OK) abort();
		if(strcmp(back.token, req->token) != 0 || back.nparams != req->nparams) abort();
		for(size_t i = 0; i < req->nparams; i++){
			const char *v = onb_prov_param_get(&back, req->params[i].name);
			if(!v || strcmp(v, req->params[i].value) != 0) abort();
		}
		onb_prov_doc_clear(&doc);
	}
	cJSON_Delete(j);
}

static void register_request(const uint8_t *buf, size_t len)
{
	struct onb_prov_register_req req;
	const char *code = NULL;
	struct onb_err err = { "" };
	int rc = onb_provcbor_register_request_parse(buf, len, &req, &code, &err);

	check_code(rc, code, &err);
	if(rc != ONB_OK) return;
	if(!req.token[0] || strlen(req.token) > ONB_PROV_TOKEN_MAX || req.nparams > ONB_PROV_PARAMS_MAX) abort();
	for(size_t i = 0; i < req.nparams; i++){
		if(!req.params[i].name[0] || strlen(req.params[i].value) > ONB_PROV_PARAM_VALUE_MAX) abort();
	}
	register_round_trip(&req);
}

/* A document the tools read: JSON, CBOR again, the same JSON. */
static void tool_document(const uint8_t *buf, size_t len)
{
	struct onb_prov_doc doc;
	struct onb_err err = { "" };
	cJSON *j = onb_provcbor_to_json(buf, len, ONB_PROVCBOR_TOOL_DEPTH_MAX, &err), *j2;
	char *a, *b;

	if(!j){
		if(!err.msg[0]) abort();
		return;
	}
	if(onb_provcbor_from_json(j, &doc, &err) == ONB_OK){
		j2 = onb_provcbor_to_json(doc.data, doc.len, ONB_PROVCBOR_TOOL_DEPTH_MAX, &err);
		if(!j2) abort();
		a = cJSON_PrintUnformatted(j);
		b = cJSON_PrintUnformatted(j2);
		if(a && b && strcmp(a, b) != 0) abort();
		cJSON_free(a);
		cJSON_free(b);
		cJSON_Delete(j2);
		onb_prov_doc_clear(&doc);
	}
	cJSON_Delete(j);
}

/* A device's bytes on a cbor topic cross the envelope unchanged. */
static void request_envelope(const uint8_t *buf, size_t len)
{
	struct onb_requester_stamp who = { .client_id = "claim-1", .idclass = "claim", .fp = FP, .address = "::1" };
	enum onb_refusal refused = ONB_REFUSAL_NONE;
	struct onb_prov_envelope env;
	struct onb_err err = { "" };
	size_t n = 0;
	char *text = onb_envelope_request(&who, "$aws/certificates/create-from-csr/cbor", buf, len, &n, &refused, &err);

	if(!text) return;
	if(refused != ONB_REFUSAL_NONE) abort(); /* the input is far below 64 KiB */
	if(onb_prov_envelope_decode(text, n, &env, &err) != ONB_OK) abort();
	if(env.payload_len != len || (len && memcmp(env.payload, buf, len) != 0)) abort();
	onb_prov_envelope_clear(&env);
	cJSON_free(text);
}

/* The plugin's side of a reply; then the input's halves as reply fields,
 * whose CBOR reads back the same. */
static void reply(const uint8_t *buf, size_t len)
{
	struct onb_prov_doc doc;
	struct onb_reply r;
	struct onb_err err = { "" };
	char *s = malloc(len + 1), *half, *text;
	cJSON *j;

	if(onb_envelope_reply_parse(buf, len, &r, &err) == ONB_OK){
		if(!onb_prov_is_reply_topic(r.topic) || !r.payload) abort();
		free(r.payload);
	}
	if(!s) return;
	memcpy(s, buf, len);
	s[len] = '\0';
	half = s + strlen(s) / 2; /* the second half of the first string */
	if(onb_provcbor_rejected(ONB_PE_INVALID_PAYLOAD, half, &doc, &err) == ONB_OK){
		/* errorMessage: printable ASCII, at most ONB_ERRLEN - 1 bytes */
		for(char *c = half; *c; c++) if(*c < 0x20 || *c == 0x7f) *c = '?';
		if(strlen(half) >= ONB_ERRLEN) half[ONB_ERRLEN - 1] = '\0';
		j = onb_provcbor_to_json(doc.data, doc.len, 4, &err);
		if(!j || strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(j, "errorMessage")), half) != 0) abort();
		cJSON_Delete(j);
		/* and through the reply envelope to the plugin */
		text = onb_prov_doc_envelope("claim-1", "$aws/certificates/create-from-csr/cbor/rejected", &doc, &err);
		if(!text || onb_envelope_reply_parse(text, strlen(text), &r, &err) != ONB_OK) abort();
		if(r.payload_len != doc.len || memcmp(r.payload, doc.data, doc.len) != 0) abort();
		free(r.payload);
		onb_prov_free(text);
		onb_prov_doc_clear(&doc);
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *code = NULL;
	struct onb_err err = { "" };

	if(size < 1 || size > 70000) return 0;
	switch(data[0] % 6){
	case 0: csr_request(data + 1, size - 1); break;
	case 1: check_code(onb_provcbor_keys_request_parse(data + 1, size - 1, &code, &err), code, &err); break;
	case 2: register_request(data + 1, size - 1); break;
	case 3: tool_document(data + 1, size - 1); break;
	case 4: request_envelope(data + 1, size - 1); break;
	case 5: reply(data + 1, size - 1); break;
	}
	return 0;
}

#include "provisioning/envelope.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "$aws/provisioning-templates/<name>/provision/json" (or /cbor) + optional
 * suffix; returns the rest after "/json", or NULL. Any name up to
 * ONB_PROV_TEMPLATE_LEVEL_MAX bytes counts, not only valid ones
 * ([0-9A-Za-z_-]{1,36}): claimsvc answers a bad one InvalidTemplateName, and
 * otherwise the request (with its ownership token) would travel on as an
 * ordinary message. */
static const char *after_template_request(const char *topic)
{
	static const char prefix[] = "$aws/provisioning-templates/";
	static const char tail_json[] = "/provision/json", tail_cbor[] = "/provision/cbor";
	const char *p;
	size_t n;

	if(!starts_with(topic, prefix)) return NULL;
	p = topic + sizeof(prefix) - 1;
	n = strcspn(p, "/+#");
	if(n == 0 || n > ONB_PROV_TEMPLATE_LEVEL_MAX) return NULL;
	/* (both tails have the same length) */
	if(!starts_with(p + n, tail_json) && !starts_with(p + n, tail_cbor)) return NULL;
	return p + n + sizeof(tail_json) - 1;
}

static const char *after_cert_request(const char *topic)
{
	static const char *const requests[] = {
		"$aws/certificates/create-from-csr/json",
		"$aws/certificates/create-from-csr/cbor",
		"$aws/certificates/create/json",
		"$aws/certificates/create/cbor",
	};
	for(size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++){
		if(starts_with(topic, requests[i])) return topic + strlen(requests[i]);
	}
	return NULL;
}

/* "devices/<id>/certificates/renew" + optional suffix, <id> a valid device
 * id; returns the rest after "/renew" (and the id's start and length), or NULL. */
static const char *after_renew_request(const char *topic, const char **id, size_t *idlen)
{
	static const char prefix[] = ONB_TOPIC_RENEW_PREFIX;
	static const char tail[] = ONB_TOPIC_RENEW_SUFFIX;
	char buf[ONB_ID_MAX + 1];
	const char *p;
	size_t n;

	if(!starts_with(topic, prefix)) return NULL;
	p = topic + sizeof(prefix) - 1;
	n = strcspn(p, "/");
	if(n == 0 || n > ONB_ID_MAX || !starts_with(p + n, tail)) return NULL;
	memcpy(buf, p, n);
	buf[n] = '\0';
	if(!onb_id_valid(buf)) return NULL;
	if(id) *id = p;
	if(idlen) *idlen = n;
	return p + n + sizeof(tail) - 1;
}

static const char *request_rest(const char *topic)
{
	const char *rest = after_cert_request(topic);
	if(!rest) rest = after_template_request(topic);
	return rest ? rest : after_renew_request(topic, NULL, NULL);
}

bool onb_prov_renew_topic(const char *topic, const char *device_id, const char *suffix)
{
	const char *id, *rest;
	size_t idlen;

	if(!topic || !device_id || !suffix) return false;
	rest = after_renew_request(topic, &id, &idlen);
	return rest && strlen(device_id) == idlen && !memcmp(id, device_id, idlen) && !strcmp(rest, suffix);
}

bool onb_prov_is_request_topic(const char *topic)
{
	const char *rest = topic ? request_rest(topic) : NULL;
	return rest && *rest == '\0';
}

enum onb_prov_format onb_prov_topic_format(const char *topic)
{
	const char *rest = topic ? request_rest(topic) : NULL;

	/* every request topic's format level ends just before its rest */
	if(!rest || rest - topic < 5 || memcmp(rest - 5, "/cbor", 5) != 0) return ONB_PROV_JSON;
	return ONB_PROV_CBOR;
}

/* True when topic ends in "/accepted" or "/rejected" (the same length). */
static bool may_be_reply(const char *topic)
{
	size_t n = strlen(topic), k = sizeof("/accepted") - 1;
	return n >= k && (!memcmp(topic + n - k, "/accepted", k) || !memcmp(topic + n - k, "/rejected", k));
}

bool onb_prov_is_reply_topic(const char *topic)
{
	const char *rest;

	/* asked for every delivery (acl.c): the suffix settles almost all */
	if(!topic || !may_be_reply(topic)) return false;
	rest = starts_with(topic, ONB_TOPIC_CLAIM) ? topic + strlen(ONB_TOPIC_CLAIM) : request_rest(topic);
	return rest && (!strcmp(rest, "/accepted") || !strcmp(rest, "/rejected"));
}

const char *onb_request_route(const char *topic)
{
	if(!topic) return NULL;
	if(!strcmp(topic, ONB_TOPIC_CLAIM)) return ONB_TOPIC_CLAIM_REQUEST;
	return onb_prov_is_request_topic(topic) ? ONB_TOPIC_PROV_REQUEST : NULL;
}

bool onb_topic_is_internal(const char *topic)
{
	return topic && starts_with(topic, ONB_TOPIC_INTERNAL_PREFIX);
}

/* Every request topic onb_prov_is_request_topic knows ends in one of these:
 * a delivery's topic that does not stops here (a new request format must be
 * added here too; test_provision's handed_off_topics checks each one). */
static bool may_be_request(const char *topic)
{
	size_t n = strlen(topic);
	return (n >= 5 && (!memcmp(topic + n - 5, "/json", 5) || !memcmp(topic + n - 5, "/cbor", 5)))
		|| (n >= 6 && !memcmp(topic + n - 6, "/renew", 6));
}

bool onb_topic_handed_off(const char *topic)
{
	if(!topic) return false;
	/* Every delivery asks: the first bytes rule most topics out. */
	switch(topic[0]){
	case '$':
		return !strncmp(topic, "$aws/", 5) && may_be_request(topic) && onb_prov_is_request_topic(topic);
	case 'd':
		return !strncmp(topic, ONB_TOPIC_RENEW_PREFIX, strlen(ONB_TOPIC_RENEW_PREFIX)) && may_be_request(topic)
				&& onb_prov_is_request_topic(topic);
	case 'o':
		if(onb_topic_is_internal(topic)){
			return strcmp(topic, ONB_TOPIC_PROV_REQUEST) != 0 && strcmp(topic, ONB_TOPIC_CLAIM_REQUEST) != 0;
		}
		return !strcmp(topic, ONB_TOPIC_CLAIM);
	default:
		return false;
	}
}

#define REFUSAL_NAME_(id, name) name,
static const char *const refusal_names[ONB_REFUSAL_COUNT] = { NULL, ONB_REFUSALS(REFUSAL_NAME_) };
#undef REFUSAL_NAME_

const char *onb_refusal_name(enum onb_refusal why)
{
	return why > ONB_REFUSAL_NONE && why < ONB_REFUSAL_COUNT ? refusal_names[why] : NULL;
}

enum onb_refusal onb_refusal_parse(const char *name)
{
	int i = onb_name_index(refusal_names + 1, ONB_REFUSAL_COUNT - 1, name);

	return i < 0 ? ONB_REFUSAL_NONE : (enum onb_refusal)(i + 1);
}

char *onb_b64_encode(const void *data, size_t len)
{
	char *out;

	if(len > ONB_B64_INPUT_MAX) return NULL;
	out = malloc(4 * ((len + 2) / 3) + 1);
	if(!out) return NULL;
	/* EVP_EncodeBlock writes no line breaks and a NUL after the text */
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

unsigned char *onb_b64_decode(const char *b64, size_t len, size_t max, size_t *out_len)
{
	size_t pad = 0, n;
	unsigned char *out;
	int got;

	/* EVP_DecodeBlock skips blanks and ignores some malformations: only
	 * canonical padded text gets that far */
	if(!b64 || len % 4 != 0 || len / 4 > (max + 2) / 3 || len > INT_MAX) return NULL;
	for(size_t i = 0; i < len; i++){
		unsigned char c = (unsigned char)b64[i];
		bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
			|| c == '+' || c == '/';
		if(c == '=' && i + 2 >= len && (i + 1 == len || b64[i + 1] == '=')) pad++;
		else if(!alpha || pad) return NULL;
	}
	n = len / 4 * 3 - pad;
	if(n > max) return NULL;
	out = malloc(len / 4 * 3 + 1);
	if(!out) return NULL;
	got = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)len);
	if(got < 0 || (size_t)got != len / 4 * 3){
		free(out);
		return NULL;
	}
	out[n] = '\0';
	*out_len = n;
	return out;
}

char *onb_envelope_request(const struct onb_requester_stamp *who, const char *topic,
		const void *payload, size_t len, size_t *out_len, enum onb_refusal *refused,
		struct onb_err *err)
{
	enum onb_refusal why = ONB_REFUSAL_NONE;
	bool binary = onb_prov_topic_format(topic) == ONB_PROV_CBOR;
	cJSON *root = NULL;
	char *text = NULL, *body = NULL;

	if(len > ONB_PROV_PAYLOAD_MAX){
		why = ONB_REFUSAL_TOO_LARGE;
	}else if(binary){
		/* CBOR is binary (NUL bytes and all): its bytes travel as base64 */
		if(!(body = onb_b64_encode(payload, len))) goto oom;
	}else{
		/* The device's bytes travel as a JSON string; claimsvc parses them. */
		body = malloc(len + 1);
		if(!body) goto oom;
		if(len) memcpy(body, payload, len);
		body[len] = '\0';
		if(memchr(body, '\0', len)) why = ONB_REFUSAL_NUL_BYTE;
	}
	root = cJSON_CreateObject();
	if(!root
			|| !cJSON_AddNumberToObject(root, "v", 1)
			|| !cJSON_AddStringToObject(root, "clientId", who->client_id)
			|| !cJSON_AddStringToObject(root, "class", who->idclass)
			|| !cJSON_AddStringToObject(root, "fp", who->fp)
			|| !cJSON_AddStringToObject(root, "address", who->address ? who->address : "")
			|| (who->tenant && !cJSON_AddStringToObject(root, "tenant", who->tenant))
			|| !cJSON_AddStringToObject(root, "topic", topic)){
		goto oom;
	}
	if(why == ONB_REFUSAL_NONE){
		if(!cJSON_AddStringToObject(root, binary ? "payloadBase64" : "payload", body)) goto oom;
	}else if(!cJSON_AddStringToObject(root, "refused", onb_refusal_name(why))
			|| !cJSON_AddNumberToObject(root, "size", (double)len)){
		goto oom;
	}
	text = cJSON_PrintUnformatted(root);
	if(!text) goto oom;
	*out_len = strlen(text);
	if(refused) *refused = why;
	goto cleanup;
oom:
	onb_fail(err, ONB_EINTERNAL, "out of memory building a request envelope");
cleanup:
	cJSON_Delete(root);
	free(body);
	return text;
}

static bool copy_field(const cJSON *obj, const char *name, char *dst, size_t cap)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
	const char *s = cJSON_GetStringValue(f);
	size_t n;

	if(!s) return false;
	n = strlen(s);
	if(n >= cap) return false;
	memcpy(dst, s, n + 1);
	return true;
}

int onb_envelope_reply_parse(const void *buf, size_t len, struct onb_reply *out, struct onb_err *err)
{
	struct onb_reply r = { .payload = NULL };
	cJSON *root = NULL;
	const char *payload;
	bool binary;
	int ret = ONB_EINVAL;

	/* (the cap holds for the envelope, base64 and all: a CBOR reply of up
	 * to about 190 KiB fits, whereas one is about 1 KiB) */
	if(len > ONB_PROV_REPLY_MAX) return onb_fail(err, ONB_EINVAL, "reply envelope too large");
	root = cJSON_ParseWithLength(buf, len);
	if(!cJSON_IsObject(root)){
		onb_fail(err, ONB_EINVAL, "reply envelope is not a JSON object");
		goto cleanup;
	}
	if(!copy_field(root, "clientId", r.client_id, sizeof(r.client_id)) || !onb_id_valid(r.client_id)){
		onb_fail(err, ONB_EINVAL, "reply envelope: bad clientId");
		goto cleanup;
	}
	if(!copy_field(root, "topic", r.topic, sizeof(r.topic)) || !onb_prov_is_reply_topic(r.topic)){
		onb_fail(err, ONB_EINVAL, "reply envelope: topic is not a provisioning reply topic");
		goto cleanup;
	}
	/* a renewal's answer goes to the device the topic names, and only to it */
	if(starts_with(r.topic, ONB_TOPIC_RENEW_PREFIX) && !onb_prov_renew_topic(r.topic, r.client_id, "/accepted")
			&& !onb_prov_renew_topic(r.topic, r.client_id, "/rejected")){
		onb_fail(err, ONB_EINVAL, "reply envelope: renewal answer for another device");
		goto cleanup;
	}
	/* the payload in the format of its topic: text for JSON, base64 for CBOR */
	binary = onb_prov_topic_format(r.topic) == ONB_PROV_CBOR;
	payload = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, binary ? "payloadBase64" : "payload"));
	if(!payload || cJSON_GetObjectItemCaseSensitive(root, binary ? "payload" : "payloadBase64")){
		onb_fail(err, ONB_EINVAL, "reply envelope: %s missing (or both payload fields)",
				binary ? "payloadBase64" : "payload");
		goto cleanup;
	}
	if(binary){
		r.payload = (char *)onb_b64_decode(payload, strlen(payload), ONB_PROV_REPLY_MAX, &r.payload_len);
		if(!r.payload){
			onb_fail(err, ONB_EINVAL, "reply envelope: payloadBase64 is not base64");
			goto cleanup;
		}
	}else{
		r.payload_len = strlen(payload);
		r.payload = malloc(r.payload_len + 1);
		if(!r.payload){
			ret = onb_fail(err, ONB_EINTERNAL, "out of memory");
			goto cleanup;
		}
		memcpy(r.payload, payload, r.payload_len + 1);
	}
	*out = r;
	ret = ONB_OK;
cleanup:
	cJSON_Delete(root);
	return ret;
}

char *onb_envelope_reply_binary(const char *client_id, const char *topic, const void *data, size_t len,
		struct onb_err *err)
{
	cJSON *root = NULL;
	char *b64 = NULL, *out = NULL; /* b64: ours; out: the caller's */
	size_t bound;

	if(!onb_id_valid(client_id) || !topic || onb_prov_topic_format(topic) != ONB_PROV_CBOR || !data
			|| len > ONB_PROV_REPLY_MAX){
		onb_fail(err, ONB_EINVAL, "reply envelope: bad CBOR reply");
		return NULL;
	}
	if(!(b64 = onb_b64_encode(data, len))) goto cleanup;
	root = cJSON_CreateObject();
	if(!root || !cJSON_AddNumberToObject(root, "v", 1) || !cJSON_AddStringToObject(root, "clientId", client_id)
			|| !cJSON_AddStringToObject(root, "topic", topic)
			|| !cJSON_AddItemToObject(root, "payloadBase64", cJSON_CreateStringReference(b64))){
		goto cleanup;
	}
	/* printed into one buffer sized in advance (base64 needs no escapes; the
	 * rest at worst \uXXXX each): a private key's base64 is not left behind
	 * in buffers cJSON would grow and free */
	bound = strlen(b64) + 6 * (strlen(client_id) + strlen(topic)) + 128;
	if(!(out = cJSON_malloc(bound))) goto cleanup;
	if(!cJSON_PrintPreallocated(root, out, (int)bound, false)){
		cJSON_free(out);
		out = NULL;
	}
cleanup:
	if(!out) onb_fail(err, ONB_EINTERNAL, "out of memory");
	cJSON_Delete(root);
	if(b64){
		OPENSSL_cleanse(b64, strlen(b64));
		free(b64);
	}
	return out;
}

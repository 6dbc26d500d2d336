/* AWS IoT fleet-provisioning JSON documents and the internal envelope
 * (contract: provisioning/provision.h). Pure functions of buffers. */
#include "provisioning/provision.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/ids.h"
#include "pki/csr.h"
#include "registry/lifecycle.h"
#include "provisioning/provreg.h"

/* ------------------------------------------------------------------ topics */

static const char topic_csr[] = "$aws/certificates/create-from-csr/";
static const char topic_keys[] = "$aws/certificates/create/";
static const char tpl_prefix[] = "$aws/provisioning-templates/";
static const char tpl_suffix[] = "/provision/";

/* The format level ending each $aws request topic: "json" or "cbor". */
static bool format_level(const char *s, enum onb_prov_format *f)
{
	if(!strcmp(s, "json")) *f = ONB_PROV_JSON;
	else if(!strcmp(s, "cbor")) *f = ONB_PROV_CBOR;
	else return false;
	return true;
}

bool onb_prov_template_name_valid(const char *name)
{
	return onb_name_valid(name, ONB_PROV_TEMPLATE_NAME_MAX, "_-");
}

int onb_prov_topic_parse(const char *topic, struct onb_prov_topic *out, struct onb_err *err)
{
	size_t n, pl = sizeof(tpl_prefix) - 1, sl = sizeof(tpl_suffix) - 1, nl;
	const char *name;

	if(!topic || !out) return onb_fail(err, ONB_EINVAL, "no topic");
	n = strlen(topic);
	if(n > ONB_PROV_TOPIC_MAX) return onb_fail(err, ONB_EINVAL, "topic too long");
	out->format = ONB_PROV_JSON;
	if(!strncmp(topic, topic_csr, sizeof(topic_csr) - 1) && format_level(topic + sizeof(topic_csr) - 1, &out->format)){
		out->kind = ONB_PROV_CREATE_FROM_CSR;
		out->template_name[0] = '\0';
		return ONB_OK;
	}
	if(!strncmp(topic, topic_keys, sizeof(topic_keys) - 1) && format_level(topic + sizeof(topic_keys) - 1, &out->format)){
		out->kind = ONB_PROV_CREATE_KEYS;
		out->template_name[0] = '\0';
		return ONB_OK;
	}
	if(!strncmp(topic, ONB_TOPIC_RENEW_PREFIX, strlen(ONB_TOPIC_RENEW_PREFIX))){
		size_t idlen = strcspn(topic + strlen(ONB_TOPIC_RENEW_PREFIX), "/");
		char id[ONB_ID_MAX + 1];

		if(idlen == 0 || idlen > ONB_ID_MAX) return onb_fail(err, ONB_EINVAL, "not a renewal request topic");
		memcpy(id, topic + strlen(ONB_TOPIC_RENEW_PREFIX), idlen);
		id[idlen] = '\0';
		if(!onb_prov_renew_topic(topic, id, "")) return onb_fail(err, ONB_EINVAL, "not a renewal request topic");
		out->kind = ONB_PROV_RENEW;
		out->template_name[0] = '\0';
		memcpy(out->device_id, id, idlen + 1);
		return ONB_OK;
	}
	/* (sl + 4: the format level) */
	if(n <= pl + sl + 4 || strncmp(topic, tpl_prefix, pl) || strncmp(topic + n - sl - 4, tpl_suffix, sl)
			|| !format_level(topic + n - 4, &out->format)){
		return onb_fail(err, ONB_EINVAL, "not a fleet-provisioning request topic");
	}
	name = topic + pl;
	nl = n - pl - sl - 4;
	for(size_t i = 0; i < nl; i++){
		if(name[i] == '/' || name[i] == '+' || name[i] == '#'){
			return onb_fail(err, ONB_EINVAL, "not a fleet-provisioning request topic");
		}
	}
	out->kind = ONB_PROV_REGISTER_THING;
	memcpy(out->template_name, name, nl);
	out->template_name[nl] = '\0';
	return ONB_OK;
}

int onb_prov_reply_topic(const char *request_topic, bool accepted, char *buf, size_t len,
		struct onb_err *err)
{
	int n;

	if(!request_topic || !buf || len == 0) return onb_fail(err, ONB_EINVAL, "reply topic: bad arguments");
	n = snprintf(buf, len, "%s/%s", request_topic, accepted ? "accepted" : "rejected");
	if(n < 0 || (size_t)n >= len) return onb_fail(err, ONB_EINVAL, "reply topic too long");
	return ONB_OK;
}

/* ------------------------------------------------------------- error codes */

#define STATUS_(code, status) { code, status },
static const struct {
	const char *code;
	int status;
} statuses[] = { ONB_PROV_ERRORS(STATUS_) };
#undef STATUS_

int onb_prov_status(const char *error_code)
{
	if(!error_code) return 500;
	for(size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++){
		if(!strcmp(statuses[i].code, error_code)) return statuses[i].status;
	}
	return 500;
}

/* The registries' refusal reasons (their Lua scripts answer these tokens). */
static const struct {
	const char *reason;
	const char *code;
} reason_codes[] = {
	{ ONB_RT_TOKEN_INVALID, ONB_PE_TOKEN_INVALID },
	{ ONB_RT_TOKEN_USED, ONB_PE_TOKEN_INVALID },
	{ ONB_RT_TOKEN_FOREIGN, ONB_PE_TOKEN_FOREIGN },
	{ ONB_RT_NOT_ALLOWLISTED, ONB_PE_NOT_ALLOWLISTED },
	{ ONB_RT_PROVISIONED, ONB_PE_PROVISIONED },
	{ ONB_RT_BIRTH_MISMATCH, ONB_PE_BIRTH_MISMATCH },
	{ ONB_RT_CERT_BOUND, ONB_PE_CERT_BOUND },  /* also ONB_ROT_CERT_BOUND: the same token */
	{ ONB_RT_REPROV_STATE, ONB_PE_PROVISIONED },
	{ ONB_RT_REPROV_IDENTITY, ONB_PE_PROVISIONED },
	{ ONB_RT_REPROV_TEMPLATE, ONB_PE_PROVISIONED },
	{ ONB_ROT_NOT_CURRENT, ONB_PE_NOT_CURRENT },
	{ ONB_ROT_NOT_FOUND, ONB_PE_NOT_RENEWABLE },
	{ ONB_ROT_STATE, ONB_PE_NOT_RENEWABLE },
};

const char *onb_prov_reason_error(const char *reason, const char *fallback)
{
	for(size_t i = 0; reason && i < sizeof(reason_codes) / sizeof(reason_codes[0]); i++){
		if(!strcmp(reason_codes[i].reason, reason)) return reason_codes[i].code;
	}
	return fallback;
}

/* ------------------------------------------------------------ JSON helpers */

static int set_code(const char **code, const char *c, int rc)
{
	if(code) *code = c;
	return rc;
}

static bool blank_only(const char *s, size_t n)
{
	for(size_t i = 0; i < n; i++){
		if(s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return false;
	}
	return true;
}

/* memmem is a GNU extension; a backslash run decides what is an escape. */
bool onb_json_has_nul_escape(const char *buf, size_t len)
{
	size_t run = 0; /* backslashes in a row just before buf[i] */

	for(size_t i = 0; i < len; i++){
		if(buf[i] != '\\'){
			run = 0;
			continue;
		}
		/* after an even run this backslash starts an escape; after an odd one it is escaped */
		if(run % 2 == 0 && i + 6 <= len && !memcmp(buf + i + 1, "u0000", 5)) return true;
		run++;
	}
	return false;
}

/* Parses buf[0..len) as one JSON object with nothing but blanks after it. */
static int parse_object(const char *buf, size_t len, const char *what, cJSON **out,
		struct onb_err *err)
{
	const char *end = NULL;
	cJSON *root;

	if(!buf || len == 0) return onb_fail(err, ONB_EINVAL, "%s is empty", what);
	if(onb_json_has_nul_escape(buf, len)) return onb_fail(err, ONB_EINVAL, "%s contains \\u0000", what);
	root = cJSON_ParseWithLengthOpts(buf, len, &end, false);
	if(!root) return onb_fail(err, ONB_EINVAL, "%s is not valid JSON", what);
	if(!end || end < buf || (size_t)(end - buf) > len || !blank_only(end, len - (size_t)(end - buf))){
		cJSON_Delete(root);
		return onb_fail(err, ONB_EINVAL, "%s has data after the JSON document", what);
	}
	if(!cJSON_IsObject(root)){
		cJSON_Delete(root);
		return onb_fail(err, ONB_EINVAL, "%s is not a JSON object", what);
	}
	*out = root;
	return ONB_OK;
}

/* The member `name` of obj in *item (NULL when absent); ONB_EINVAL when
 * the name appears more than once. */
static int member(const cJSON *obj, const char *name, cJSON **item, struct onb_err *err)
{
	cJSON *found = NULL, *c;

	for(c = obj ? obj->child : NULL; c; c = c->next){
		if(c->string && !strcmp(c->string, name)){
			if(found) return onb_fail(err, ONB_EINVAL, "field %s appears more than once", name);
			found = c;
		}
	}
	*item = found;
	return ONB_OK;
}

/* A required string member no longer than max, copied into buf[max + 1]. */
static int string_member(const cJSON *obj, const char *name, char *buf, size_t max,
		struct onb_err *err)
{
	cJSON *item;
	size_t n;
	int ret = member(obj, name, &item, err);

	if(ret != ONB_OK) return ret;
	if(!item) return onb_fail(err, ONB_EINVAL, "field %s is missing", name);
	if(!cJSON_IsString(item) || !item->valuestring) return onb_fail(err, ONB_EINVAL, "field %s must be a string", name);
	n = strlen(item->valuestring);
	if(n > max) return onb_fail(err, ONB_EINVAL, "field %s is longer than %zu bytes", name, max);
	memcpy(buf, item->valuestring, n + 1);
	return ONB_OK;
}

static bool no_controls(const char *s)
{
	for(; *s; s++){
		unsigned char c = (unsigned char)*s;
		if(c < 0x20 || c == 0x7f) return false;
	}
	return true;
}

static bool printable_ascii(const char *s)
{
	for(; *s; s++){
		if((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) return false;
	}
	return true;
}

/* The envelope's optional string member name into buf (left as it is when
 * absent or null), refused with "envelope <name> <invalid>" unless valid. */
static int optional_member(const cJSON *root, const char *name, char *buf, size_t max,
		bool (*valid)(const char *), const char *invalid, struct onb_err *err)
{
	cJSON *item;
	int ret = member(root, name, &item, err);

	if(ret != ONB_OK || !item || cJSON_IsNull(item)) return ret;
	ret = string_member(root, name, buf, max, err);
	if(ret != ONB_OK) return ret;
	return valid(buf) ? ONB_OK : onb_fail(err, ONB_EINVAL, "envelope %s %s", name, invalid);
}

/* Prints root into one buffer of bound bytes (no reallocation, so no stray
 * copies of secrets); NULL when it does not fit or memory is short. */
static char *print_bounded(const cJSON *root, size_t bound, struct onb_err *err)
{
	char *buf;

	if(!root){
		onb_fail(err, ONB_EINTERNAL, "out of memory");
		return NULL;
	}
	buf = cJSON_malloc(bound);
	if(!buf){
		onb_fail(err, ONB_EINTERNAL, "out of memory");
		return NULL;
	}
	if(!cJSON_PrintPreallocated((cJSON *)root, buf, (int)bound, false)){
		OPENSSL_cleanse(buf, bound);
		cJSON_free(buf);
		onb_fail(err, ONB_EINTERNAL, "cannot print JSON document");
		return NULL;
	}
	return buf;
}

/* Worst-case printed size of strings: every byte escaped as \uXXXX. */
static size_t escaped_bound(const char *const *strs, size_t n)
{
	size_t total = 256;

	for(size_t i = 0; i < n; i++){
		if(strs[i]) total += 6 * strlen(strs[i]) + 32;
	}
	return total;
}

void onb_prov_free(char *doc)
{
	if(!doc) return;
	OPENSSL_cleanse(doc, strlen(doc));
	cJSON_free(doc);
}

/* ---------------------------------------------------------------- envelope */

/* The refusal of a refusal envelope: "refused" and "size", no "payload". */
static int envelope_refusal(const cJSON *root, const cJSON *refused, struct onb_prov_envelope *env,
		struct onb_err *err)
{
	cJSON *size, *payload;
	int ret;

	if(!cJSON_IsString(refused) || (env->refused = onb_refusal_parse(refused->valuestring)) == ONB_REFUSAL_NONE){
		return onb_fail(err, ONB_EINVAL, "envelope: unknown refusal reason");
	}
	if((ret = member(root, "payload", &payload, err)) != ONB_OK) return ret;
	if(payload) return onb_fail(err, ONB_EINVAL, "refusal envelope with a payload");
	if((ret = member(root, "size", &size, err)) != ONB_OK) return ret;
	/* (written so that NaN fails before the cast) */
	if(!cJSON_IsNumber(size) || !(size->valuedouble >= 0 && size->valuedouble <= ONB_MQTT_PAYLOAD_MAX)
			|| size->valuedouble != (double)(size_t)size->valuedouble){
		return onb_fail(err, ONB_EINVAL, "refusal envelope: size must be an MQTT payload length");
	}
	env->refused_len = (size_t)size->valuedouble;
	/* the reason must fit the size: a larger payload is always "too-large" */
	if((env->refused == ONB_REFUSAL_TOO_LARGE) != (env->refused_len > ONB_PROV_PAYLOAD_MAX)){
		return onb_fail(err, ONB_EINVAL, "refusal envelope: reason and size disagree");
	}
	if(env->refused == ONB_REFUSAL_TOO_LARGE){
		env->payload_too_large = true;
		env->payload_len = env->refused_len;
	}else if(!(env->payload = strdup(""))){
		return onb_fail(err, ONB_EINTERNAL, "out of memory");
	}
	return ONB_OK;
}

/* A CBOR request's bytes, from base64; over ONB_PROV_PAYLOAD_MAX as too large. */
static int envelope_binary(const char *b64, struct onb_prov_envelope *env, struct onb_err *err)
{
	size_t n = strlen(b64), size;

	env->payload = (char *)onb_b64_decode(b64, n, ONB_PROV_PAYLOAD_MAX, &env->payload_len);
	if(env->payload) return ONB_OK;
	size = n >= 4 && n % 4 == 0 ? n / 4 * 3 - (b64[n - 1] == '=') - (b64[n - 2] == '=') : 0;
	if(size > ONB_PROV_PAYLOAD_MAX){
		/* from an envelope writer that does not refuse (hand-made) */
		env->payload_too_large = true;
		env->refused = ONB_REFUSAL_TOO_LARGE;
		env->payload_len = env->refused_len = size;
		return ONB_OK;
	}
	return onb_fail(err, ONB_EINVAL, "envelope payloadBase64 is not base64 of at most %d bytes",
			ONB_PROV_PAYLOAD_MAX);
}

/* The device's payload of an envelope, or the broker's refusal of it. */
static int envelope_payload(const cJSON *root, struct onb_prov_envelope *env, struct onb_err *err)
{
	cJSON *item;
	bool binary;
	int ret = member(root, "refused", &item, err);

	if(ret != ONB_OK) return ret;
	if(item) return envelope_refusal(root, item, env, err);
	binary = onb_prov_topic_format(env->topic) == ONB_PROV_CBOR;
	if((ret = member(root, binary ? "payload" : "payloadBase64", &item, err)) != ONB_OK) return ret;
	if(item) return onb_fail(err, ONB_EINVAL, "envelope payload field does not fit the topic's format");
	ret = member(root, binary ? "payloadBase64" : "payload", &item, err);
	if(ret != ONB_OK) return ret;
	if(!item || !cJSON_IsString(item) || !item->valuestring){
		return onb_fail(err, ONB_EINVAL, "envelope payload must be a string");
	}
	if(binary) return envelope_binary(item->valuestring, env, err);
	env->payload_len = strlen(item->valuestring);
	if(env->payload_len > ONB_PROV_PAYLOAD_MAX){
		/* from an envelope writer that does not refuse (claimsvc_bench, hand-made) */
		env->payload_too_large = true;
		env->refused = ONB_REFUSAL_TOO_LARGE;
		env->refused_len = env->payload_len;
	}else if(!(env->payload = strdup(item->valuestring))){
		return onb_fail(err, ONB_EINTERNAL, "out of memory");
	}
	return ONB_OK;
}

int onb_prov_envelope_decode(const char *buf, size_t len, struct onb_prov_envelope *out,
		struct onb_err *err)
{
	int ret;
	cJSON *root = NULL, *item;
	struct onb_prov_envelope env;

	memset(&env, 0, sizeof(env));
	if(!out) return onb_fail(err, ONB_EINVAL, "envelope: no output");
	if(len > ONB_PROV_ENVELOPE_MAX){
		return onb_fail(err, ONB_EINVAL, "envelope of %zu bytes is over the limit of %d",
				len, ONB_PROV_ENVELOPE_MAX);
	}
	ret = parse_object(buf, len, "envelope", &root, err);
	if(ret != ONB_OK) return ret;

	ret = member(root, "v", &item, err);
	if(ret != ONB_OK) goto cleanup;
	if(!item || !cJSON_IsNumber(item) || item->valuedouble != 1.0){
		ret = onb_fail(err, ONB_EINVAL, "envelope version v must be 1");
		goto cleanup;
	}
	ret = string_member(root, "clientId", env.client_id, ONB_ID_MAX, err);
	if(ret != ONB_OK) goto cleanup;
	if(!onb_id_valid(env.client_id)){
		ret = onb_fail(err, ONB_EINVAL, "envelope clientId is not a valid id");
		goto cleanup;
	}
	ret = string_member(root, "class", env.idclass, ONB_PROV_CLASS_MAX, err);
	if(ret != ONB_OK) goto cleanup;
	if(!env.idclass[0] || strspn(env.idclass, "abcdefghijklmnopqrstuvwxyz") != strlen(env.idclass)){
		ret = onb_fail(err, ONB_EINVAL, "envelope class must be lower-case letters");
		goto cleanup;
	}
	ret = string_member(root, "fp", env.fp, ONB_FP_HEXLEN, err);
	if(ret != ONB_OK) goto cleanup;
	if(strlen(env.fp) != ONB_FP_HEXLEN || strspn(env.fp, "0123456789abcdef") != ONB_FP_HEXLEN){
		ret = onb_fail(err, ONB_EINVAL, "envelope fp must be 64 lower-case hex digits");
		goto cleanup;
	}
	ret = optional_member(root, "address", env.address, ONB_PROV_ADDRESS_MAX, printable_ascii,
			"holds non-printable characters", err);
	if(ret != ONB_OK) goto cleanup;
	ret = optional_member(root, "tenant", env.tenant, ONB_ID_MAX, onb_id_valid, "is not a valid id", err);
	if(ret != ONB_OK) goto cleanup;
	ret = string_member(root, "topic", env.topic, ONB_PROV_TOPIC_MAX, err);
	if(ret != ONB_OK) goto cleanup;
	if(!env.topic[0] || !no_controls(env.topic)){
		ret = onb_fail(err, ONB_EINVAL, "envelope topic is empty or holds control characters");
		goto cleanup;
	}
	ret = envelope_payload(root, &env, err);
	if(ret != ONB_OK) goto cleanup;
	*out = env;
	memset(&env, 0, sizeof(env));
	ret = ONB_OK;
cleanup:
	onb_prov_envelope_clear(&env);
	cJSON_Delete(root);
	return ret;
}

const char *onb_prov_refusal_error(const struct onb_prov_envelope *env, char *msg, size_t len)
{
	if(env->refused == ONB_REFUSAL_TOO_LARGE){
		snprintf(msg, len, "request of %zu bytes is larger than the limit of %d bytes",
				env->refused_len, ONB_PROV_PAYLOAD_MAX);
		return ONB_PE_PAYLOAD_TOO_LARGE;
	}
	snprintf(msg, len, "request of %zu bytes contains a NUL byte (not a JSON document)", env->refused_len);
	return ONB_PE_INVALID_PAYLOAD;
}

void onb_prov_envelope_clear(struct onb_prov_envelope *env)
{
	if(!env) return;
	if(env->payload){
		OPENSSL_cleanse(env->payload, env->payload_len);
		free(env->payload);
	}
	memset(env, 0, sizeof(*env));
}

char *onb_prov_reply_encode(const char *client_id, const char *topic, const char *payload,
		struct onb_err *err)
{
	cJSON *root;
	char *out = NULL;
	const char *strs[3] = { client_id, topic, payload };

	if(!onb_id_valid(client_id) || !topic || !*topic || !payload){
		onb_fail(err, ONB_EINVAL, "reply envelope: missing field");
		return NULL;
	}
	root = cJSON_CreateObject();
	if(root && cJSON_AddNumberToObject(root, "v", 1) && cJSON_AddStringToObject(root, "clientId", client_id)
			&& cJSON_AddStringToObject(root, "topic", topic)
			&& cJSON_AddItemToObject(root, "payload", cJSON_CreateStringReference(payload))){
		out = print_bounded(root, escaped_bound(strs, 3), err);
	}else{
		onb_fail(err, ONB_EINTERNAL, "out of memory");
	}
	cJSON_Delete(root);
	return out;
}

/* ---------------------------------------------------------------- requests */

int onb_prov_csr_request_parse(const char *buf, size_t len, char **csr_out, size_t *csr_len,
		const char **code, struct onb_err *err)
{
	int ret;
	cJSON *root = NULL, *item;
	size_t n;
	char *copy;

	if(!csr_out || !csr_len) return set_code(code, ONB_PE_INTERNAL, onb_fail(err, ONB_EINVAL, "no output"));
	if(len > ONB_PROV_PAYLOAD_MAX){
		return set_code(code, ONB_PE_PAYLOAD_TOO_LARGE, onb_fail(err, ONB_EINVAL,
				"request of %zu bytes is larger than the limit of %d bytes", len, ONB_PROV_PAYLOAD_MAX));
	}
	ret = parse_object(buf, len, "request", &root, err);
	if(ret != ONB_OK) return set_code(code, ONB_PE_INVALID_PAYLOAD, ret);
	ret = member(root, "certificateSigningRequest", &item, err);
	if(ret != ONB_OK){
		set_code(code, ONB_PE_INVALID_PAYLOAD, ret);
		goto cleanup;
	}
	if(!item || !cJSON_IsString(item) || !item->valuestring){
		ret = set_code(code, ONB_PE_INVALID_PAYLOAD, onb_fail(err, ONB_EINVAL,
				"certificateSigningRequest is missing or not a string"));
		goto cleanup;
	}
	n = strlen(item->valuestring);
	if(n > ONB_CSR_MAX){
		ret = set_code(code, ONB_CSR_E_TOO_LARGE, onb_fail(err, ONB_EINVAL,
				"CSR of %zu bytes is larger than the limit of %d bytes", n, ONB_CSR_MAX));
		goto cleanup;
	}
	copy = malloc(n + 1);
	if(!copy){
		ret = set_code(code, ONB_PE_INTERNAL, onb_fail(err, ONB_EINTERNAL, "out of memory"));
		goto cleanup;
	}
	memcpy(copy, item->valuestring, n + 1);
	*csr_out = copy;
	*csr_len = n;
	ret = ONB_OK;
cleanup:
	cJSON_Delete(root);
	return ret;
}

int onb_prov_keys_request_parse(const char *buf, size_t len, const char **code,
		struct onb_err *err)
{
	cJSON *root = NULL;
	int ret;

	if(len > ONB_PROV_PAYLOAD_MAX){
		return set_code(code, ONB_PE_PAYLOAD_TOO_LARGE, onb_fail(err, ONB_EINVAL,
				"request of %zu bytes is larger than the limit of %d bytes", len, ONB_PROV_PAYLOAD_MAX));
	}
	if(!buf || blank_only(buf, len)) return ONB_OK;
	ret = parse_object(buf, len, "request", &root, err);
	cJSON_Delete(root);
	return ret == ONB_OK ? ONB_OK : set_code(code, ONB_PE_INVALID_PAYLOAD, ret);
}

static int parse_params(const cJSON *params, struct onb_prov_register_req *req,
		const char **code, struct onb_err *err)
{
	for(const cJSON *c = params->child; c; c = c->next){
		struct onb_prov_param *p;
		size_t nl, vl;

		if(!c->string) continue;
		nl = strlen(c->string);
		if(nl == 0 || nl > ONB_PROV_PARAM_NAME_MAX || !printable_ascii(c->string) || strchr(c->string, ' ')){
			return set_code(code, ONB_PE_INVALID_PARAMS, onb_fail(err, ONB_EINVAL,
					"parameter names must be 1..%d printable characters", ONB_PROV_PARAM_NAME_MAX));
		}
		if(onb_prov_param_get(req, c->string)){
			return set_code(code, ONB_PE_INVALID_PARAMS, onb_fail(err, ONB_EINVAL,
					"parameter %s appears more than once", c->string));
		}
		if(req->nparams >= ONB_PROV_PARAMS_MAX){
			return set_code(code, ONB_PE_INVALID_PARAMS, onb_fail(err, ONB_EINVAL,
					"more than %d parameters", ONB_PROV_PARAMS_MAX));
		}
		if(!cJSON_IsString(c) || !c->valuestring){
			return set_code(code, ONB_PE_INVALID_PARAMS, onb_fail(err, ONB_EINVAL,
					"parameter %s must be a string", c->string));
		}
		vl = strlen(c->valuestring);
		if(vl > ONB_PROV_PARAM_VALUE_MAX){
			return set_code(code, ONB_PE_INVALID_PARAMS, onb_fail(err, ONB_EINVAL,
					"parameter %s is longer than %d bytes", c->string, ONB_PROV_PARAM_VALUE_MAX));
		}
		p = &req->params[req->nparams++];
		memcpy(p->name, c->string, nl + 1);
		memcpy(p->value, c->valuestring, vl + 1);
	}
	return ONB_OK;
}

int onb_prov_register_request_parse(const char *buf, size_t len,
		struct onb_prov_register_req *out, const char **code, struct onb_err *err)
{
	int ret;
	cJSON *root = NULL, *item;
	struct onb_prov_register_req *req = NULL;
	size_t n;

	if(!out) return set_code(code, ONB_PE_INTERNAL, onb_fail(err, ONB_EINVAL, "no output"));
	if(len > ONB_PROV_PAYLOAD_MAX){
		return set_code(code, ONB_PE_PAYLOAD_TOO_LARGE, onb_fail(err, ONB_EINVAL,
				"request of %zu bytes is larger than the limit of %d bytes", len, ONB_PROV_PAYLOAD_MAX));
	}
	ret = parse_object(buf, len, "request", &root, err);
	if(ret != ONB_OK) return set_code(code, ONB_PE_INVALID_PAYLOAD, ret);
	req = calloc(1, sizeof(*req));
	if(!req){
		ret = set_code(code, ONB_PE_INTERNAL, onb_fail(err, ONB_EINTERNAL, "out of memory"));
		goto cleanup;
	}
	ret = member(root, "certificateOwnershipToken", &item, err);
	if(ret == ONB_OK && (!item || !cJSON_IsString(item) || !item->valuestring)){
		ret = onb_fail(err, ONB_EINVAL, "certificateOwnershipToken is missing or not a string");
	}
	if(ret != ONB_OK){
		set_code(code, ONB_PE_INVALID_PAYLOAD, ret);
		goto cleanup;
	}
	n = strlen(item->valuestring);
	if(n == 0 || n > ONB_PROV_TOKEN_MAX){
		ret = set_code(code, ONB_PE_TOKEN_INVALID, onb_fail(err, ONB_EINVAL,
				"certificateOwnershipToken is malformed"));
		goto cleanup;
	}
	memcpy(req->token, item->valuestring, n + 1);
	ret = member(root, "parameters", &item, err);
	if(ret != ONB_OK){
		set_code(code, ONB_PE_INVALID_PAYLOAD, ret);
		goto cleanup;
	}
	if(item && !cJSON_IsNull(item)){
		if(!cJSON_IsObject(item)){
			ret = set_code(code, ONB_PE_INVALID_PAYLOAD, onb_fail(err, ONB_EINVAL,
					"parameters must be a JSON object"));
			goto cleanup;
		}
		ret = parse_params(item, req, code, err);
		if(ret != ONB_OK) goto cleanup;
	}
	*out = *req;
	ret = ONB_OK;
cleanup:
	if(req){
		OPENSSL_cleanse(req->token, sizeof(req->token));
		free(req);
	}
	cJSON_Delete(root);
	return ret;
}

static int param_name_cmp(const void *a, const void *b)
{
	const struct onb_prov_param *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

char *onb_prov_register_canonical(const char *template_name, const struct onb_prov_register_req *req,
		struct onb_err *err)
{
	const struct onb_prov_param *sorted[ONB_PROV_PARAMS_MAX];
	size_t n = req->nparams < ONB_PROV_PARAMS_MAX ? req->nparams : ONB_PROV_PARAMS_MAX;
	cJSON *root = cJSON_CreateArray(), *pair;
	char *text = NULL;

	/* names are unique (parse_params refuses a name twice): the order is total */
	for(size_t i = 0; i < n; i++) sorted[i] = &req->params[i];
	qsort(sorted, n, sizeof(sorted[0]), param_name_cmp);
	if(!root || !cJSON_AddItemToArray(root, cJSON_CreateString(template_name ? template_name : ""))) goto cleanup;
	for(size_t i = 0; i < n; i++){
		if(!(pair = cJSON_CreateArray())) goto cleanup;
		if(!cJSON_AddItemToArray(root, pair)){
			cJSON_Delete(pair);
			goto cleanup;
		}
		if(!cJSON_AddItemToArray(pair, cJSON_CreateString(sorted[i]->name))
				|| !cJSON_AddItemToArray(pair, cJSON_CreateString(sorted[i]->value))){
			goto cleanup;
		}
	}
	text = cJSON_PrintUnformatted(root);
cleanup:
	if(!text) onb_fail(err, ONB_EINTERNAL, "out of memory");
	cJSON_Delete(root);
	return text;
}

const char *onb_prov_param_get(const struct onb_prov_register_req *req, const char *name)
{
	if(!req || !name) return NULL;
	for(size_t i = 0; i < req->nparams && i < ONB_PROV_PARAMS_MAX; i++){
		if(!strcmp(req->params[i].name, name)) return req->params[i].value;
	}
	return NULL;
}

/* --------------------------------------------------------------- responses */

char *onb_prov_cert_accepted(const char *cert_id, const char *cert_pem,
		const char *private_key_pem, const char *token, struct onb_err *err)
{
	cJSON *root;
	char *out = NULL;
	const char *strs[4] = { cert_id, cert_pem, private_key_pem, token };
	bool ok;

	if(!cert_id || !cert_pem || !token){
		onb_fail(err, ONB_EINVAL, "accepted document: missing field");
		return NULL;
	}
	/* String references: the key is not copied into cJSON's own buffers. */
	root = cJSON_CreateObject();
	ok = root && cJSON_AddItemToObject(root, "certificateId", cJSON_CreateStringReference(cert_id))
		&& cJSON_AddItemToObject(root, "certificatePem", cJSON_CreateStringReference(cert_pem));
	if(ok && private_key_pem){
		ok = cJSON_AddItemToObject(root, "privateKey", cJSON_CreateStringReference(private_key_pem));
	}
	ok = ok && cJSON_AddItemToObject(root, "certificateOwnershipToken", cJSON_CreateStringReference(token));
	if(ok){
		out = print_bounded(root, escaped_bound(strs, 4), err);
	}else{
		onb_fail(err, ONB_EINTERNAL, "out of memory");
	}
	cJSON_Delete(root);
	return out;
}

char *onb_prov_renew_accepted(const char *cert_id, const char *cert_pem, int64_t old_valid_until_ms,
		struct onb_err *err)
{
	cJSON *root;
	char *out = NULL;

	if(!cert_id || !cert_pem || old_valid_until_ms < 0){
		onb_fail(err, ONB_EINVAL, "accepted document: missing field");
		return NULL;
	}
	root = cJSON_CreateObject();
	if(root && cJSON_AddStringToObject(root, "certificateId", cert_id)
			&& cJSON_AddStringToObject(root, "certificatePem", cert_pem)
			&& cJSON_AddNumberToObject(root, "previousCertificateValidUntil", (double)(old_valid_until_ms / 1000))){
		out = cJSON_PrintUnformatted(root);
	}
	if(!out) onb_fail(err, ONB_EINTERNAL, "out of memory");
	cJSON_Delete(root);
	return out;
}

char *onb_prov_register_accepted(const cJSON *device_config, const char *thing_name,
		struct onb_err *err)
{
	cJSON *root, *cfg;
	char *out = NULL;

	if(!thing_name || (device_config && !cJSON_IsObject(device_config))){
		onb_fail(err, ONB_EINVAL, "accepted document: bad arguments");
		return NULL;
	}
	root = cJSON_CreateObject();
	cfg = device_config ? cJSON_Duplicate(device_config, true) : cJSON_CreateObject();
	if(root && cfg && cJSON_AddItemToObject(root, "deviceConfiguration", cfg)){
		cfg = NULL;
		if(cJSON_AddStringToObject(root, "thingName", thing_name)) out = cJSON_PrintUnformatted(root);
	}
	if(!out) onb_fail(err, ONB_EINTERNAL, "out of memory");
	cJSON_Delete(cfg);
	cJSON_Delete(root);
	return out;
}

char *onb_prov_rejected(const char *error_code, const char *message, struct onb_err *err)
{
	cJSON *root;
	char *out = NULL;

	if(!error_code || !message){
		onb_fail(err, ONB_EINVAL, "rejected document: missing field");
		return NULL;
	}
	root = cJSON_CreateObject();
	if(root && cJSON_AddNumberToObject(root, "statusCode", onb_prov_status(error_code))
			&& cJSON_AddStringToObject(root, "errorCode", error_code)
			&& cJSON_AddStringToObject(root, "errorMessage", message)){
		out = cJSON_PrintUnformatted(root);
	}
	if(!out) onb_fail(err, ONB_EINTERNAL, "out of memory");
	cJSON_Delete(root);
	return out;
}

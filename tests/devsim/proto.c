/* The AWS IoT fleet-provisioning request and reply documents, as a device
 * sees them. Pure functions of a buffer: no I/O, no MQTT. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devsim.h"
#include "provisioning/provcbor.h"

void devsim_printable(char *dst, size_t dstlen, const void *src, size_t len)
{
	const unsigned char *s = src;
	size_t i;

	if(!dstlen) return;
	for(i = 0; i < len && i + 1 < dstlen; i++){
		dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
	}
	dst[i] = '\0';
}

static char *print_and_free(cJSON *o)
{
	char *out = NULL, *s;

	if(o && (s = cJSON_PrintUnformatted(o))){
		out = strdup(s);
		cJSON_free(s);
	}
	cJSON_Delete(o);
	return out;
}

char *devsim_req_csr(const char *csr_pem)
{
	cJSON *o = cJSON_CreateObject();

	if(!o || !cJSON_AddStringToObject(o, "certificateSigningRequest", csr_pem)){
		cJSON_Delete(o);
		return NULL;
	}
	return print_and_free(o);
}

char *devsim_req_register(const char *token, const char *serial)
{
	cJSON *o = cJSON_CreateObject(), *p;

	if(!o || !cJSON_AddStringToObject(o, "certificateOwnershipToken", token)
			|| !(p = cJSON_AddObjectToObject(o, "parameters"))
			|| !cJSON_AddStringToObject(p, "SerialNumber", serial)){
		cJSON_Delete(o);
		return NULL;
	}
	return print_and_free(o);
}

void devsim_csr_accepted_clear(struct devsim_csr_accepted *a)
{
	free(a->certificate_id);
	free(a->certificate_pem);
	free(a->token);
	memset(a, 0, sizeof(*a));
}

static cJSON *parse_object(const void *buf, size_t len, char *err, size_t errlen)
{
	cJSON *root;

	if(len > DEVSIM_REPLY_MAX){
		snprintf(err, errlen, "reply of %zu bytes exceeds %d", len, DEVSIM_REPLY_MAX);
		return NULL;
	}
	root = cJSON_ParseWithLength(buf, len);
	if(!cJSON_IsObject(root)){
		snprintf(err, errlen, "reply is not a JSON object");
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

/* The non-empty string member name of o, or NULL. */
static const char *str_member(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return (cJSON_IsString(v) && v->valuestring && v->valuestring[0]) ? v->valuestring : NULL;
}

int devsim_parse_csr_accepted(const void *buf, size_t len, struct devsim_csr_accepted *out,
		char *err, size_t errlen)
{
	struct devsim_csr_accepted a = { 0 };
	const char *id, *pem, *tok;
	cJSON *root = parse_object(buf, len, err, errlen);

	if(!root) return -1;
	id = str_member(root, "certificateId");
	pem = str_member(root, "certificatePem");
	tok = str_member(root, "certificateOwnershipToken");
	if(!id || !pem || !tok){
		snprintf(err, errlen, "accepted reply lacks %s", !id ? "certificateId"
				: !pem ? "certificatePem" : "certificateOwnershipToken");
		cJSON_Delete(root);
		return -1;
	}
	a.certificate_id = strdup(id);
	a.certificate_pem = strdup(pem);
	a.token = strdup(tok);
	cJSON_Delete(root);
	if(!a.certificate_id || !a.certificate_pem || !a.token){
		devsim_csr_accepted_clear(&a);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*out = a;
	return 0;
}

int devsim_parse_renew_accepted(const void *buf, size_t len, char **pem_out, char *err, size_t errlen)
{
	const char *id, *pem;
	cJSON *root = parse_object(buf, len, err, errlen);

	if(!root) return -1;
	id = str_member(root, "certificateId");
	pem = str_member(root, "certificatePem");
	if(!id || !pem){
		snprintf(err, errlen, "renewal reply lacks %s", !id ? "certificateId" : "certificatePem");
		cJSON_Delete(root);
		return -1;
	}
	*pem_out = strdup(pem);
	cJSON_Delete(root);
	if(!*pem_out){
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int devsim_parse_reg_accepted(const void *buf, size_t len, struct devsim_reg_accepted *out,
		char *err, size_t errlen)
{
	const cJSON *conf;
	const char *thing;
	cJSON *root = parse_object(buf, len, err, errlen);

	if(!root) return -1;
	thing = str_member(root, "thingName");
	conf = cJSON_GetObjectItemCaseSensitive(root, "deviceConfiguration");
	/* The thing name becomes this device's client id and a file name. */
	if(!thing || !onb_id_valid(thing) || !strcmp(thing, ".") || !strcmp(thing, "..")){
		snprintf(err, errlen, "accepted reply lacks a valid thingName");
		cJSON_Delete(root);
		return -1;
	}
	if(conf && !cJSON_IsObject(conf)){
		snprintf(err, errlen, "deviceConfiguration is not an object");
		cJSON_Delete(root);
		return -1;
	}
	snprintf(out->thing_name, sizeof(out->thing_name), "%s", thing);
	out->config_keys = conf ? cJSON_GetArraySize(conf) : 0;
	cJSON_Delete(root);
	return 0;
}

int devsim_parse_rejected(const void *buf, size_t len, struct devsim_rejected *out)
{
	char err[64];
	const cJSON *st;
	const char *code, *msg;
	cJSON *root;

	memset(out, 0, sizeof(*out));
	snprintf(out->code, sizeof(out->code), "?");
	root = parse_object(buf, len, err, sizeof(err));
	if(!root){
		snprintf(out->code, sizeof(out->code), "MalformedRejection");
		snprintf(out->message, sizeof(out->message), "%s", err);
		return -1;
	}
	st = cJSON_GetObjectItemCaseSensitive(root, "statusCode");
	if(cJSON_IsNumber(st) && st->valuedouble >= 0 && st->valuedouble < 1000){
		out->status = (int)st->valuedouble;
	}
	if((code = str_member(root, "errorCode"))){
		devsim_printable(out->code, sizeof(out->code), code, strlen(code));
	}
	if((msg = str_member(root, "errorMessage"))){
		devsim_printable(out->message, sizeof(out->message), msg, strlen(msg));
	}
	cJSON_Delete(root);
	return 0;
}

int devsim_wire_request(const char *json, bool cbor, unsigned char **out, size_t *len)
{
	struct onb_prov_doc doc;
	struct onb_err err;
	cJSON *tree;
	int ret;

	if(!cbor){
		*len = strlen(json);
		*out = (unsigned char *)strdup(json);
		return *out ? 0 : -1;
	}
	if(!(tree = cJSON_Parse(json))) return -1;
	ret = onb_provcbor_from_json(tree, &doc, &err);
	cJSON_Delete(tree);
	if(ret != ONB_OK) return -1;
	/* a CBOR document from lib/ is malloc'd: handed over as it is */
	*out = doc.data;
	*len = doc.len;
	return 0;
}

char *devsim_reply_json(const void *buf, size_t len, char *err, size_t errlen)
{
	struct onb_err e;
	cJSON *tree;
	char *text = NULL, *s;

	if(len > DEVSIM_REPLY_MAX){
		snprintf(err, errlen, "reply of %zu bytes exceeds %d", len, DEVSIM_REPLY_MAX);
		return NULL;
	}
	tree = onb_provcbor_to_json(buf, len, ONB_PROVCBOR_TOOL_DEPTH_MAX, &e);
	if(!tree){
		snprintf(err, errlen, "reply is not a CBOR document: %s", e.msg);
		return NULL;
	}
	if((s = cJSON_PrintUnformatted(tree))){
		text = strdup(s);
		cJSON_free(s);
	}
	cJSON_Delete(tree);
	if(!text) snprintf(err, errlen, "out of memory");
	return text;
}

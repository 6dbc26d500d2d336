/* The claim API's documents (provisioning/claimwire.h). */
#include "provisioning/claimwire.h"

#include <stdio.h>
#include <string.h>

#include <cJSON.h>

#include "claim/claimreg.h"

static const struct {
	const char *code;
	int status;
} errors[ONB_CLE_COUNT] = {
	[ONB_CLE_NONE] = { NULL, 0 },
#define ERROR_(id, code, status) [ONB_CLE_##id] = { code, status },
	ONB_CLAIM_ERRORS(ERROR_)
#undef ERROR_
};

const char *onb_claim_error_code(enum onb_claim_error e)
{
	return (unsigned)e < ONB_CLE_COUNT ? errors[e].code : NULL;
}

int onb_claim_error_status(enum onb_claim_error e)
{
	return (unsigned)e < ONB_CLE_COUNT ? errors[e].status : 500;
}

enum onb_claim_error onb_claim_reason_error(const char *reason)
{
	if(reason && !strcmp(reason, ONB_CLAIM_LOCKED)) return ONB_CLE_TOO_MANY_ATTEMPTS;
	if(reason && !strcmp(reason, ONB_CLAIM_NOT_CLAIMABLE)) return ONB_CLE_NOT_CLAIMABLE;
	return ONB_CLE_INVALID_CODE; /* ONB_CLAIM_INVALID, and whatever a newer registry says */
}

int onb_claim_request_parse(const char *buf, size_t len, struct onb_claim_request *out,
		struct onb_err *err)
{
	cJSON *root = NULL;
	const char *tok, *cc;
	int ret = ONB_EINVAL;

	memset(out, 0, sizeof(*out));
	root = buf ? cJSON_ParseWithLength(buf, len) : NULL;
	if(!cJSON_IsObject(root)){
		onb_fail(err, ONB_EINVAL, "the request is not a JSON object");
		goto cleanup;
	}
	for(const cJSON *c = root->child; c; c = c->next){
		if(!c->string || (strcmp(c->string, "claimCode") && strcmp(c->string, "clientToken"))){
			onb_fail(err, ONB_EINVAL, "unknown field in the request (the tenant comes from the certificate)");
			goto cleanup;
		}
	}
	tok = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "clientToken"));
	if(tok){
		if(strlen(tok) > ONB_CLAIM_CLIENT_TOKEN_MAX){
			onb_fail(err, ONB_EINVAL, "clientToken is longer than %d bytes", ONB_CLAIM_CLIENT_TOKEN_MAX);
			goto cleanup;
		}
		snprintf(out->client_token, sizeof(out->client_token), "%s", tok);
	}
	cc = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "claimCode"));
	if(!cc || strlen(cc) >= sizeof(out->code)){
		onb_fail(err, ONB_EINVAL, "claimCode is missing or too long");
		goto cleanup;
	}
	memcpy(out->code, cc, strlen(cc) + 1);
	ret = ONB_OK;
cleanup:
	cJSON_Delete(root);
	return ret;
}

/* doc printed, with clientToken when there is one; NULL when anything failed. */
static char *finish(cJSON *doc, bool ok, const char *client_token)
{
	char *text = NULL;

	if(ok && client_token && client_token[0]) ok = cJSON_AddStringToObject(doc, "clientToken", client_token) != NULL;
	if(ok) text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	return text;
}

char *onb_claim_accepted(const char *device, const char *tenant, enum onb_state state,
		const char *client_token)
{
	cJSON *doc = cJSON_CreateObject();
	bool ok = doc && cJSON_AddStringToObject(doc, "deviceId", device)
		&& cJSON_AddStringToObject(doc, "tenantId", tenant)
		&& cJSON_AddStringToObject(doc, "state", onb_state_name(state));

	return finish(doc, ok, client_token);
}

char *onb_claim_rejected(enum onb_claim_error e, const char *msg, const char *client_token)
{
	cJSON *doc;
	bool ok;

	if(e <= ONB_CLE_NONE || e >= ONB_CLE_COUNT) return NULL;
	doc = cJSON_CreateObject();
	ok = doc && cJSON_AddNumberToObject(doc, "statusCode", errors[e].status)
		&& cJSON_AddStringToObject(doc, "errorCode", errors[e].code)
		&& cJSON_AddStringToObject(doc, "errorMessage", msg ? msg : "");
	return finish(doc, ok, client_token);
}

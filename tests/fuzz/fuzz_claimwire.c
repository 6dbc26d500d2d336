/* libFuzzer target for lib/provisioning/claimwire.c: the claim API's request and replies.
 * Invariants: a parsed request has a NUL-terminated claimCode and a
 * clientToken within its cap; the replies built from what was parsed are
 * JSON objects that carry the same values back, the rejected one with the
 * status its error code has in ONB_CLAIM_ERRORS. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "provisioning/claimwire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *str(const cJSON *o, const char *name)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
}

static void check_reply(char *text, const char *token, enum onb_claim_error e)
{
	cJSON *doc;

	if(!text) return; /* out of memory only */
	doc = cJSON_Parse(text);
	if(!cJSON_IsObject(doc)) abort();
	if(token[0] && (!str(doc, "clientToken") || strcmp(str(doc, "clientToken"), token))) abort();
	if(!token[0] && cJSON_GetObjectItemCaseSensitive(doc, "clientToken")) abort();
	if(e != ONB_CLE_NONE){
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(doc, "statusCode");
		if(!cJSON_IsNumber(st) || st->valueint != onb_claim_error_status(e)) abort();
		if(!str(doc, "errorCode") || strcmp(str(doc, "errorCode"), onb_claim_error_code(e))) abort();
	}
	cJSON_Delete(doc);
	cJSON_free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct onb_claim_request req;
	struct onb_err err;
	enum onb_claim_error e;

	if(onb_claim_request_parse((const char *)data, size, &req, &err) != ONB_OK){
		if(!err.msg[0]) abort();
		e = ONB_CLE_INVALID_REQUEST;
	}else{
		if(strlen(req.code) >= sizeof(req.code)) abort();
		/* some error of the list, picked by the input */
		e = (enum onb_claim_error)(1 + size % (ONB_CLE_COUNT - 1));
		check_reply(onb_claim_accepted(req.code, "tenant", ONB_STATE_ACTIVE, req.client_token),
				req.client_token, ONB_CLE_NONE);
	}
	if(strlen(req.client_token) > ONB_CLAIM_CLIENT_TOKEN_MAX) abort();
	check_reply(onb_claim_rejected(e, err.msg, req.client_token), req.client_token, e);
	return 0;
}

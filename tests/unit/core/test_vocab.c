/* The vocabularies of core/vocab.h and the error lists of the two reply
 * formats (provisioning/provision.h, provisioning/claimwire.h), and the claim documents. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cJSON.h>

#include "claim/claimreg.h"
#include "provisioning/claimwire.h"
#include "provisioning/envelope.h"
#include "registry/lifecycle.h"
#include "provisioning/provision.h"
#include "provisioning/provreg.h"
#include "core/vocab.h"

static void names_round_trip(void **state)
{
	(void)state;
	for(int r = 0; r < ONB_AR_COUNT; r++){
		assert_int_equal(onb_admit_reason_parse(onb_admit_reason_name((enum onb_admit_reason)r)), r);
	}
	assert_string_equal(ONB_AR(CLIENT_ID_IN_USE), "client-id-in-use");
	assert_int_equal(onb_admit_reason_parse("nope"), -1);
	assert_int_equal(onb_admit_reason_parse(NULL), -1);
	for(int t = 0; t < ONB_EV_COUNT; t++){
		assert_int_equal(onb_event_type_parse(onb_event_type_name((enum onb_event_type)t)), t);
	}
	assert_int_equal(onb_event_type_parse("future"), ONB_EV_OTHER);
	assert_int_equal(onb_event_type_parse(NULL), ONB_EV_OTHER);
	assert_string_equal(onb_event_type_name(ONB_EV_CERT), "cert");
	for(int a = 0; a < ONB_AA_COUNT; a++){
		assert_int_equal(onb_audit_action_parse(onb_audit_action_name((enum onb_audit_action)a)), a);
	}
	assert_string_equal(onb_audit_action_name(ONB_AA_COUNT), "unknown");
	for(int f = ONB_REFUSAL_NONE + 1; f < ONB_REFUSAL_COUNT; f++){
		assert_int_equal(onb_refusal_parse(onb_refusal_name((enum onb_refusal)f)), f);
	}
	assert_null(onb_refusal_name(ONB_REFUSAL_NONE));
	assert_int_equal(onb_refusal_parse("too-large"), ONB_REFUSAL_TOO_LARGE);
}

static void names_unique(void **state)
{
	(void)state;
	for(int i = 0; i < ONB_AA_COUNT; i++){
		for(int j = i + 1; j < ONB_AA_COUNT; j++){
			assert_string_not_equal(onb_audit_action_name((enum onb_audit_action)i),
					onb_audit_action_name((enum onb_audit_action)j));
		}
	}
	for(int i = 1; i < ONB_CLE_COUNT; i++){
		for(int j = i + 1; j < ONB_CLE_COUNT; j++){
			assert_string_not_equal(onb_claim_error_code((enum onb_claim_error)i),
					onb_claim_error_code((enum onb_claim_error)j));
		}
	}
}

static void prov_statuses_and_reasons(void **state)
{
	(void)state;
	assert_int_equal(onb_prov_status(ONB_PE_PAYLOAD_TOO_LARGE), 413);
	assert_int_equal(onb_prov_status(ONB_PE_NOT_FOUND), 404);
	assert_int_equal(onb_prov_status(ONB_PE_THROTTLED), 429);
	assert_int_equal(onb_prov_status(ONB_PE_UNAVAILABLE), 500);
	assert_int_equal(onb_prov_status(ONB_CSR_E_WEAK_KEY), 400);
	assert_int_equal(onb_prov_status("NoSuchCode"), 500);
	assert_int_equal(onb_prov_status(NULL), 500);
	assert_string_equal(onb_prov_reason_error(ONB_RT_TOKEN_USED, ONB_PE_INTERNAL), ONB_PE_TOKEN_INVALID);
	assert_string_equal(onb_prov_reason_error(ONB_RT_REPROV_TEMPLATE, ONB_PE_INTERNAL), ONB_PE_PROVISIONED);
	assert_string_equal(onb_prov_reason_error("what", ONB_PE_INTERNAL), ONB_PE_INTERNAL);
	assert_string_equal(onb_prov_reason_error(NULL, ONB_PE_NOT_RENEWABLE), ONB_PE_NOT_RENEWABLE);
	assert_string_equal(onb_prov_reason_error(ONB_ROT_NOT_CURRENT, ONB_PE_NOT_RENEWABLE), ONB_PE_NOT_CURRENT);
	assert_string_equal(onb_prov_reason_error(ONB_ROT_CERT_BOUND, ONB_PE_NOT_RENEWABLE), ONB_PE_CERT_BOUND);
	assert_string_equal(onb_prov_reason_error(ONB_ROT_STATE, ONB_PE_NOT_RENEWABLE), ONB_PE_NOT_RENEWABLE);
}

static void claim_errors(void **state)
{
	(void)state;
	assert_null(onb_claim_error_code(ONB_CLE_NONE));
	assert_int_equal(onb_claim_error_status(ONB_CLE_NONE), 0);
	assert_string_equal(onb_claim_error_code(ONB_CLE_INVALID_REQUEST), "InvalidRequest");
	assert_int_equal(onb_claim_error_status(ONB_CLE_NOT_CLAIMABLE), 409);
	assert_int_equal(onb_claim_error_status(ONB_CLE_UNAVAILABLE), 503);
	assert_string_equal(onb_claim_error_code(ONB_CLE_UNAVAILABLE), ONB_PE_UNAVAILABLE);
	assert_int_equal(onb_claim_reason_error(ONB_CLAIM_LOCKED), ONB_CLE_TOO_MANY_ATTEMPTS);
	assert_int_equal(onb_claim_reason_error(ONB_CLAIM_NOT_CLAIMABLE), ONB_CLE_NOT_CLAIMABLE);
	assert_int_equal(onb_claim_reason_error(ONB_CLAIM_INVALID), ONB_CLE_INVALID_CODE);
}

static int parse(const char *s, struct onb_claim_request *r, struct onb_err *err)
{
	return onb_claim_request_parse(s, strlen(s), r, err);
}

static void claim_request(void **state)
{
	struct onb_claim_request r;
	struct onb_err err;
	char big[200];

	(void)state;
	assert_int_equal(parse("{\"claimCode\":\"AB-CD\",\"clientToken\":\"t1\"}", &r, &err), ONB_OK);
	assert_string_equal(r.code, "AB-CD");
	assert_string_equal(r.client_token, "t1");
	assert_int_equal(parse("{\"claimCode\":\"x\"}", &r, &err), ONB_OK);
	assert_string_equal(r.client_token, "");
	assert_int_equal(parse("[1]", &r, &err), ONB_EINVAL);
	assert_string_equal(err.msg, "the request is not a JSON object");
	assert_int_equal(parse("", &r, &err), ONB_EINVAL);
	assert_int_equal(onb_claim_request_parse(NULL, 0, &r, &err), ONB_EINVAL);
	assert_int_equal(parse("{\"claimCode\":\"x\",\"tenantId\":\"t\",\"clientToken\":\"k\"}", &r, &err), ONB_EINVAL);
	assert_non_null(strstr(err.msg, "unknown field"));
	assert_string_equal(r.client_token, "");
	/* the token is read before the code: a refusal of the code echoes it */
	assert_int_equal(parse("{\"clientToken\":\"k\"}", &r, &err), ONB_EINVAL);
	assert_string_equal(err.msg, "claimCode is missing or too long");
	assert_string_equal(r.client_token, "k");
	memset(big, 'a', sizeof(big));
	snprintf(big, sizeof(big), "{\"claimCode\":\"x\",\"clientToken\":\"%065d\"}", 0);
	assert_int_equal(parse(big, &r, &err), ONB_EINVAL);
	assert_string_equal(err.msg, "clientToken is longer than 64 bytes");
	snprintf(big, sizeof(big), "{\"claimCode\":\"x\",\"clientToken\":\"%064d\"}", 0);
	assert_int_equal(parse(big, &r, &err), ONB_OK);
	/* a length shorter than the text: only that much is read */
	assert_int_equal(onb_claim_request_parse("{\"claimCode\":\"x\"}", 5, &r, &err), ONB_EINVAL);
}

static void claim_replies(void **state)
{
	char *t;

	(void)state;
	t = onb_claim_accepted("dev-1", "acme", ONB_STATE_ACTIVE, "tok");
	assert_string_equal(t, "{\"deviceId\":\"dev-1\",\"tenantId\":\"acme\",\"state\":\"active\",\"clientToken\":\"tok\"}");
	cJSON_free(t);
	t = onb_claim_accepted("dev-1", "acme", ONB_STATE_ACTIVE, "");
	assert_string_equal(t, "{\"deviceId\":\"dev-1\",\"tenantId\":\"acme\",\"state\":\"active\"}");
	cJSON_free(t);
	t = onb_claim_rejected(ONB_CLE_NOT_CLAIMABLE, "device is active", NULL);
	assert_string_equal(t, "{\"statusCode\":409,\"errorCode\":\"NotClaimable\",\"errorMessage\":\"device is active\"}");
	cJSON_free(t);
	assert_null(onb_claim_rejected(ONB_CLE_NONE, "x", NULL));
	assert_null(onb_claim_rejected(ONB_CLE_COUNT, "x", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_round_trip),
		cmocka_unit_test(names_unique),
		cmocka_unit_test(prov_statuses_and_reasons),
		cmocka_unit_test(claim_errors),
		cmocka_unit_test(claim_request),
		cmocka_unit_test(claim_replies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

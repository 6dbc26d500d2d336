/* The claim API's documents (docs/claiming.md, section 8): the request a
 * tenant's back-end publishes on onb/claim/json and the replies claimsvc
 * sends back on .../accepted and .../rejected. Pure functions of buffers,
 * next to the provisioning documents (provisioning/provision.h); fuzzed by
 * tests/fuzz/fuzz_claimwire.c. */
#ifndef ONB_CLAIMWIRE_H
#define ONB_CLAIMWIRE_H

#include <stddef.h>

#include "core/common.h"
#include "provisioning/provision.h" /* the codes both APIs share */
#include "registry/state.h"

#define ONB_CLAIM_TEXT_MAX 512         /* a claimCode as typed, NUL included */
#define ONB_CLAIM_CLIENT_TOKEN_MAX 64  /* bytes of clientToken */

/* The one list of the claim API's errorCodes with their statusCodes. A
 * registry outage is 503 here but 500 in the provisioning API, whose
 * statuses follow AWS's (both documented). */
#define ONB_CLAIM_ERRORS(X) \
	X(INVALID_REQUEST,   "InvalidRequest",         400) /* not JSON, unknown keys, no claimCode, a typo */ \
	X(PAYLOAD_TOO_LARGE, ONB_PE_PAYLOAD_TOO_LARGE, 413) \
	X(ACCESS_DENIED,     ONB_PE_ACCESS_DENIED,     403) /* not a tenant's back-end */ \
	X(INVALID_CODE,      "InvalidCode",            403) /* ONB_CLAIM_INVALID */ \
	X(NOT_CLAIMABLE,     "NotClaimable",           409) /* ONB_CLAIM_NOT_CLAIMABLE */ \
	X(TOO_MANY_ATTEMPTS, "TooManyAttempts",        429) /* ONB_CLAIM_LOCKED */ \
	X(UNAVAILABLE,       ONB_PE_UNAVAILABLE,       503) /* the registry is unreachable */

enum onb_claim_error {
	ONB_CLE_NONE = 0, /* accepted */
#define ONB_X_(id, code, status) ONB_CLE_##id,
	ONB_CLAIM_ERRORS(ONB_X_)
#undef ONB_X_
	ONB_CLE_COUNT
};

/* The errorCode of e; NULL for ONB_CLE_NONE and out of range. */
const char *onb_claim_error_code(enum onb_claim_error e);
/* The statusCode of e; 0 for ONB_CLE_NONE, 500 out of range. */
int onb_claim_error_status(enum onb_claim_error e);
/* The error that answers a redemption's refusal class (ONB_CLAIM_* of
 * claim/claimreg.h): the one mapping of claim reasons to codes. */
enum onb_claim_error onb_claim_reason_error(const char *reason);

struct onb_claim_request {
	char code[ONB_CLAIM_TEXT_MAX];                       /* claimCode, as typed */
	char client_token[ONB_CLAIM_CLIENT_TOKEN_MAX + 1];   /* "" when none */
};

/* Parses {"claimCode": "...", "clientToken": "..."} from buf[0..len) (any
 * other key is refused: the tenant comes from the certificate). ONB_OK, or
 * ONB_EINVAL (the answer is ONB_CLE_INVALID_REQUEST) with err's message for
 * the requester; out->client_token is filled once read, so that a later
 * refusal can echo it. Always initialises out. */
int onb_claim_request_parse(const char *buf, size_t len, struct onb_claim_request *out,
		struct onb_err *err);

/* The accepted reply {"deviceId", "tenantId", "state"[, "clientToken"]}; a
 * new string the caller frees with cJSON_free, or NULL when memory is short.
 * client_token may be NULL or "". */
char *onb_claim_accepted(const char *device, const char *tenant, enum onb_state state,
		const char *client_token);

/* The rejected reply {"statusCode", "errorCode", "errorMessage"[,
 * "clientToken"]} for e (not ONB_CLE_NONE); cJSON_free, NULL when memory is
 * short or e is out of range. */
char *onb_claim_rejected(enum onb_claim_error e, const char *msg, const char *client_token);

#endif

/* The stable tokens the parts write and read: one X-macro list per
 * vocabulary, from which the enum and its names are generated, so that logs,
 * counters, audit entries and replies cannot drift apart. Adding a token is
 * adding one line here. Error codes of replies, with their statuses, are the
 * lists of their wire formats: provisioning/provision.h (ONB_PROV_ERRORS) and
 * provisioning/claimwire.h (ONB_CLAIM_ERRORS). */
#ifndef ONB_VOCAB_H
#define ONB_VOCAB_H

/* Returns the index of name in names[0..n), or -1 (also for a NULL name). */
int onb_name_index(const char *const *names, int n, const char *name);

/* ---------------------------------------------------- admission reasons */

/* Why a CONNECT was decided as it was (onb_admit, plugin/auth.c): in the
 * broker's log, the audit entry and the metrics' connects.denied. */
#define ONB_ADMIT_REASONS(X) \
	X(OK,                    "ok") \
	X(NO_CERTIFICATE,        "no-certificate") \
	X(BAD_CERTIFICATE,       "bad-certificate") \
	X(UNKNOWN_CA,            "unknown-ca") \
	X(BAD_CLIENT_ID,         "bad-client-id") \
	X(CLIENT_ID_MISMATCH,    "client-id-mismatch") \
	X(REGISTRY_UNAVAILABLE,  "registry-unavailable") \
	X(NOT_REGISTERED,        "not-registered") \
	X(DEVICE_STATE,          "device-state") \
	X(CERTIFICATE_RETIRED,   "certificate-retired") \
	X(NO_POLICY,             "no-policy") \
	X(POLICY_DENIES_CONNECT, "policy-denies-connect") \
	X(INTERNAL,              "internal") \
	X(CLIENT_ID_IN_USE,      "client-id-in-use") \
	X(CLIENT_ID_RESERVED,    "client-id-reserved")

enum onb_admit_reason {
#define ONB_X_(id, name) ONB_AR_##id,
	ONB_ADMIT_REASONS(ONB_X_)
#undef ONB_X_
	ONB_AR_COUNT
};

/* The token of r ("ok", "no-certificate", ...); "internal" when out of range. */
const char *onb_admit_reason_name(enum onb_admit_reason r);
/* The reason named name, or -1. */
int onb_admit_reason_parse(const char *name);
/* The token of reason id, for a `const char *reason` field. */
#define ONB_AR(id) onb_admit_reason_name(ONB_AR_##id)

/* ------------------------------------------------------ refusal reasons */

/* Why the broker refused a request's payload itself (provisioning/envelope.h): the
 * "refused" field of a refusal envelope. */
#define ONB_REFUSALS(X) \
	X(TOO_LARGE, "too-large") /* over ONB_PROV_PAYLOAD_MAX */ \
	X(NUL_BYTE,  "nul-byte")  /* a NUL byte (a JSON string cannot carry it) */

enum onb_refusal {
	ONB_REFUSAL_NONE = 0,
#define ONB_X_(id, name) ONB_REFUSAL_##id,
	ONB_REFUSALS(ONB_X_)
#undef ONB_X_
	ONB_REFUSAL_COUNT
};

/* ---------------------------------------------------------- event types */

/* The "type" field of onb:events entries (written by the Lua scripts in
 * lib/registry/lua/, which spell these tokens themselves: this list is the reference). */
#define ONB_EVENT_TYPES(X) \
	X(STATE,  "state")  /* a device's state, tenant or policy changed */ \
	X(POLICY, "policy") /* a policy document changed */ \
	X(CERT,   "cert")   /* a device's certificates changed (rotation) */

enum onb_event_type {
#define ONB_X_(id, name) ONB_EV_##id,
	ONB_EVENT_TYPES(ONB_X_)
#undef ONB_X_
	ONB_EV_OTHER, /* a type this version does not know: for newer writers */
	ONB_EV_COUNT
};

/* The token of t; "other" for ONB_EV_OTHER and out of range. */
const char *onb_event_type_name(enum onb_event_type t);
/* The type named name; ONB_EV_OTHER when unknown or NULL. */
enum onb_event_type onb_event_type_parse(const char *name);

/* -------------------------------------------------------- audit actions */

/* The "action" field of onb:audit entries. The C writers take their token
 * from here; the Lua scripts (lib/registry/lua/) spell theirs themselves, and
 * this list is the reference they follow (docs/registry.md lists them). */
#define ONB_AUDIT_ACTIONS(X) \
	/* the plugin */ \
	X(CONNECT,            "connect") \
	X(PUBLISH,            "publish") \
	X(SUBSCRIBE,          "subscribe") \
	X(RECEIVE,            "receive") \
	X(REQUEST,            "request") \
	X(SESSION_TAKEN_OVER, "session-taken-over") \
	X(AUDIT_DROPPED,      "audit-dropped") \
	/* claimsvc: provisioning and claims */ \
	X(CREATE_FROM_CSR,    "create-from-csr") \
	X(CREATE_KEYS,        "create-keys-and-certificate") \
	X(REGISTER_THING,     "register-thing") \
	X(REPROVISION,        "reprovision") \
	X(RENEW,              "renew") \
	X(CLAIM,              "claim") \
	X(UNKNOWN,            "unknown") \
	/* operators (onboardctl) and the registry's scripts */ \
	X(REGISTER,           "register") \
	X(ALLOWLIST_ADD,      "allowlist-add") \
	X(STATE,              "state") \
	X(DEVICE_POLICY,      "device-policy") \
	X(DECOMMISSION,       "decommission") \
	X(RELEASE,            "release") \
	X(TRANSFER,           "transfer") \
	X(POLICY_PUT,         "policy-put") \
	X(POLICY_DELETE,      "policy-delete") \
	X(ROTATE,             "rotate") \
	X(ROTATE_PROMOTE,     "rotate-promote") \
	X(ROTATE_REQUIRE,     "rotate-require") \
	X(CLAIMCODE_ISSUE,    "claimcode-issue") \
	X(CLAIMCODE_REVOKE,   "claimcode-revoke") \
	X(CLAIM_UNLOCK,       "claim-unlock") \
	X(CRL_EXPORT,         "crl-export")

enum onb_audit_action {
#define ONB_X_(id, name) ONB_AA_##id,
	ONB_AUDIT_ACTIONS(ONB_X_)
#undef ONB_X_
	ONB_AA_COUNT
};

/* The token of a; "unknown" when out of range. */
const char *onb_audit_action_name(enum onb_audit_action a);
/* The action named name, or -1. */
int onb_audit_action_parse(const char *name);
/* The token of action id, for a `const char *action` field. */
#define ONB_AA(id) onb_audit_action_name(ONB_AA_##id)

#endif

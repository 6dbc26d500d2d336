/* Fleet provisioning in the registry: ownership tokens, RegisterThing and the
 * allowlist (DESIGN.md s.3, s.6 flow 2). Every change is one Lua script. */
#ifndef ONB_PROVREG_H
#define ONB_PROVREG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

#include "core/common.h"
#include "registry/registry.h"

#define ONB_TOKEN_HEXLEN 64          /* 256-bit token, lower-case hex */
#define ONB_KEY_TOKEN_FMT "onb:tok:%s"     /* sha256(token) hex -> hash */
#define ONB_KEY_PENDING_FMT "onb:pending:%s" /* issued, not yet registered cert fp */
#define ONB_TOKEN_TTL_MAX 604800     /* longest token lifetime accepted, s (7 days) */
#define ONB_ALLOW_BATCH_MAX 10000    /* most entries per onb_allowlist_add call */

/* What RegisterThing does for a device that is already provisioned: the
 * `reprovision` key of a template (docs/provisioning.md, "Re-provisioning").
 * One list: the enum, the names in templates, audit entries and the script. */
#define ONB_REPROVISION_LIST(X) \
	X(ONB_REPROV_NEVER, "never")                 /* refused: DeviceAlreadyProvisioned */ \
	X(ONB_REPROV_SAME_IDENTITY, "same-identity") /* its own birth certificate; keeps tenant and state */ \
	X(ONB_REPROV_REPLACE, "replace")             /* any requester; reset to the template's state */

#define ONB_REPROV_ENUM(e, name) e,
enum onb_reprovision { ONB_REPROVISION_LIST(ONB_REPROV_ENUM) };
#undef ONB_REPROV_ENUM

/* The policy's name as written in templates (static storage); "" for a
 * value outside the enum. */
const char *onb_reprovision_name(enum onb_reprovision p);

/* Parses a name of ONB_REPROVISION_LIST; false (nothing written) for any
 * other string, NULL included. */
bool onb_reprovision_parse(const char *s, enum onb_reprovision *out);

/* The connection that asked, as stamped by the broker plugin. */
struct onb_requester {
	const char *client_id;
	const char *idclass;   /* "claim", "birth" (or "device" for renewals) */
	const char *fp;        /* SHA-256 of the certificate it connected with */
};

/* Records a certificate just issued to requester: a fresh 256-bit token from
 * RAND_bytes is returned in token_out (hex); only sha256(token) is stored, as
 * onb:tok:<hash> {cert_fp, cert_serial, not_after, client_id, idclass,
 * requester_fp, created} expiring after ttl_s, and onb:pending:<cert_fp>
 * expiring likewise (an issued certificate nobody registers is forgotten). */
int onb_token_issue(redisContext *rc, const char *cert_fp, const char *cert_serial,
		int64_t not_after, const struct onb_requester *requester, int ttl_s,
		char token_out[ONB_TOKEN_HEXLEN + 1], struct onb_err *err);
/* onb_token_issue that also appends audit (when not NULL) to onb:audit in
 * the same script, only when the token is recorded: one round trip for the
 * record and its audit entry, and never one without the other. */
int onb_token_issue_audited(redisContext *rc, const char *cert_fp, const char *cert_serial,
		int64_t not_after, const struct onb_requester *requester, int ttl_s,
		const struct onb_audit_entry *audit, char token_out[ONB_TOKEN_HEXLEN + 1], struct onb_err *err);

/* The name of a token in the registry into ref: its SHA-256 in hex (not a
 * secret: onb:tok:<ref>). ONB_EINVAL when token is not one we issue. */
int onb_token_ref(const char *token, char ref[ONB_FP_HEXLEN + 1], struct onb_err *err);

struct onb_register_thing {
	const char *token;                     /* as presented by the device */
	const struct onb_requester *requester; /* the connection presenting it */
	const char *device_id;                 /* thingName computed from the template */
	const char *serial;                    /* the SerialNumber parameter, may be NULL */
	bool allowlist_required;               /* template's allowlist mode */
	const char *policy;                    /* policy name, NULL: default for the state */
	enum onb_state state;                  /* initial state: unclaimed, or active with tenant */
	const char *tenant;                    /* may be NULL */
	const char *request;                   /* the request, canonical (onb_prov_register_canonical);
	                                        * only its SHA-256 is stored, to recognise it resent */
	enum onb_reprovision reprovision;      /* template's policy for a device already provisioned */
	const char *template_name;             /* the request's template, recorded on the device
	                                        * (replace re-provisions only its own); may be NULL */
	const char *cert_fp_hint;              /* the certificate the caller issued this token for,
	                                        * if it remembers (NULL: read from the token record,
	                                        * one more round trip); the script checks it */
};

/* Reasons RegisterThing is refused (stable tokens for errorCode mapping). */
#define ONB_RT_TOKEN_INVALID   "token-invalid"    /* unknown or expired */
#define ONB_RT_TOKEN_USED      "token-used"       /* used, and this is not its own request resent */
#define ONB_RT_TOKEN_FOREIGN   "token-foreign"    /* presented by another connection */
#define ONB_RT_NOT_ALLOWLISTED "not-allowlisted"
#define ONB_RT_PROVISIONED     "already-provisioned"
#define ONB_RT_BIRTH_MISMATCH  "birth-mismatch"   /* allowlisted for another birth certificate */
#define ONB_RT_CERT_BOUND      "cert-bound"       /* certificate already bound */
#define ONB_RT_REPROV_STATE    "reprovision-state"    /* provisioned, and quarantined or revoked */
#define ONB_RT_REPROV_IDENTITY "reprovision-identity" /* same-identity without its birth certificate */
#define ONB_RT_REPROV_TEMPLATE "reprovision-template" /* replace, device provisioned by another template */

/* Atomically: the token (compared by its hash) exists, is unexpired and
 * unused, and was issued to the same requester (client id and fp); the device
 * is allowlisted (a `manufactured` record) when required and has no
 * operational certificate yet; in birth mode its allowlisted birth_fp equals
 * the requester's fp. Then: token marked used (by this request, for this
 * device, until it expires), certificate bound, state set, onb:pending
 * removed, event and audit appended; *replay_out false.
 *
 * A device that is already provisioned is refused (ONB_RT_PROVISIONED) under
 * ONB_REPROV_NEVER. Under the other policies an unclaimed or active device
 * is re-provisioned in the same step (others: ONB_RT_REPROV_STATE): under
 * same-identity only by a birth requester whose fp is the device's birth_fp
 * (else ONB_RT_BIRTH_MISMATCH or ONB_RT_REPROV_IDENTITY), keeping state,
 * tenant, policy and claim code; under replace by any requester, but only a
 * device that req's template provisioned (else ONB_RT_REPROV_TEMPLATE), reset
 * to req's state, tenant and policy (claim code revoked). The old certificates
 * are unbound and put on the CRL record (superseded), one `cert` event makes
 * every broker close their sessions, one `reprovision` audit entry records
 * the policy, old and new fingerprints and, under replace, whether the
 * requester differs from the one that provisioned before (possible_clone).
 *
 * A used token registers nothing again. When its own requester sends the
 * request that used it again (same device id and canonical request; an answer
 * was lost) and the certificate is still bound to that device, returns ONB_OK
 * with *replay_out true having written only an audit entry (result
 * "replay"). On refusal returns ONB_EREFUSED with reason_out set to one of
 * ONB_RT_*, having written only an audit entry. replay_out may be NULL. */
int onb_register_thing(redisContext *rc, const struct onb_register_thing *req,
		const struct onb_actor *actor, bool *replay_out, const char **reason_out, struct onb_err *err);

struct onb_allow_entry {
	const char *device_id;  /* thing name (serial, with the import's prefix) */
	const char *serial;
	const char *birth_fp;   /* birth-certificate SHA-256, or NULL */
	const char *batch;      /* may be NULL */
};

enum onb_allow_result { ONB_ALLOW_ADDED, ONB_ALLOW_PRESENT };

/* Adds entries as `manufactured` devices (pipelined, one script call each),
 * writing each entry's outcome into results[i]. Existing devices are left
 * untouched (ONB_ALLOW_PRESENT). */
int onb_allowlist_add(redisContext *rc, const struct onb_allow_entry *entries, size_t n,
		enum onb_allow_result *results, const struct onb_actor *actor, struct onb_err *err);

#endif

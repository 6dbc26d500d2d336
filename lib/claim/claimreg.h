/* Claim codes and tenants in the registry (docs/claiming.md, schema in
 * docs/registry.md): issuing and revoking codes, redeeming one for a tenant,
 * releasing and transferring a claimed device.
 *
 * Redis only ever sees sha256(code): the record onb:cc:<hash> {device,
 * expires, status issued|used|revoked, created, ...} expires (PEXPIREAT) a
 * grace period after the code does, so that an expired code still reads as
 * expired for a while; the device's field `claimcode` names its current
 * code's hash. Every change is one Lua script with its audit entry (and its
 * onb:events entry when a device's state or tenant changes).
 *
 * Conventions as in registry.h: ONB_EINVAL for bad arguments (nothing
 * sent), ONB_EUNAVAIL for any Redis failure, out-parameters written on
 * success only unless said otherwise. */
#ifndef ONB_CLAIMREG_H
#define ONB_CLAIMREG_H

#include <stdbool.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

#include "claim/claimcode.h"
#include "core/common.h"
#include "registry/registry.h"

#define ONB_KEY_CC_FMT "onb:cc:%s"                 /* claim code record, by hash */
#define ONB_KEY_CCFAIL_FMT "onb:ccfail:tenant:%s"       /* a tenant's failed redemptions */
#define ONB_KEY_CCLOCK_FMT "onb:cclock:tenant:%s"       /* a tenant's lockout */
#define ONB_KEY_CCFAIL_SRC_FMT "onb:ccfail:source:%s/%s" /* one tenant's failures from one source */
#define ONB_KEY_CCLOCK_SRC_FMT "onb:cclock:source:%s/%s" /* one tenant's lockout at one source */
#define ONB_CC_TTL_DEFAULT_MS (90LL * 86400 * 1000)  /* 90 days */
#define ONB_CC_TTL_MAX_MS (3650LL * 86400 * 1000)    /* 10 years: labels wait on shelves */
#define ONB_CC_GRACE_MS (30LL * 86400 * 1000)        /* records outlive their code by this */
#define ONB_CC_ID_LEN 16   /* hash prefix shown by `show` and written to audit entries */

/* --------------------------------------------------------------- issuing */

/* A code just issued. code is the secret: show it once, then cleanse it. */
struct onb_claimcode_issued {
	char code[ONB_CC_SYMBOLS + 1];          /* canonical form */
	char hash[ONB_CC_HASH_HEXLEN + 1];      /* its SHA-256, the record's name */
	int64_t expires_ms;
};

/* Draws a code for device id valid for ttl_ms (1 s .. ONB_CC_TTL_MAX_MS),
 * stores its hash and makes it the device's only code (a previous code still
 * issued is revoked, reason "superseded"), atomically. The device must exist,
 * be manufactured, unclaimed or quarantined, and have no tenant: ONB_ENOTFOUND,
 * ONB_EREFUSED otherwise (audited). */
int onb_claimcode_issue(redisContext *rc, const char *id, int64_t ttl_ms,
		const struct onb_actor *actor, struct onb_claimcode_issued *out, struct onb_err *err);

/* Revokes device id's current code (audited). ONB_ENOTFOUND for an unknown
 * device or one without a code; ONB_EREFUSED when the code is no longer
 * issued (used, revoked, or expired and purged). */
int onb_claimcode_revoke(redisContext *rc, const char *id, const struct onb_actor *actor,
		struct onb_err *err);

/* What `claimcode show` tells: never the code. */
struct onb_claimcode_info {
	char id[ONB_CC_ID_LEN + 1];   /* first hex digits of the hash; "" when none */
	char status[16];              /* none, issued, expired, used, revoked */
	char reason[16];              /* revoked: operator, superseded, released */
	char tenant[ONB_ID_MAX + 1];  /* used: the tenant that redeemed it */
	int64_t created_ms, expires_ms, used_ms, revoked_ms;  /* 0 when not applicable */
};

/* Reads the state of device id's current code; status "none" when it has
 * never had one (or it was released), "expired" once past its expiry (also
 * after the record itself has expired away). ONB_ENOTFOUND for an unknown
 * device. */
int onb_claimcode_show(redisContext *rc, const char *id, struct onb_claimcode_info *out,
		struct onb_err *err);

/* ------------------------------------------------------------ redeeming */

/* Brute-force limits: max_failures failed redemptions within window_ms lock
 * the identity out for lockout_ms. Identities: the tenant, and the tenant at
 * a source when one is given; never a source for every tenant, so that one
 * tenant's guesses do not lock out another tenant behind the same address. */
struct onb_claim_limits {
	int max_failures;   /* 1..1000 */
	int64_t window_ms;  /* 1 ms .. 1 day */
	int64_t lockout_ms; /* 1 ms .. 7 days */
};

/* 5 failures in 10 minutes lock out for 15 minutes. */
extern const struct onb_claim_limits onb_claim_limits_default;

struct onb_claim_req {
	const char *code;    /* canonical (onb_claimcode_parse / _input) */
	const char *device;  /* the device the URI named; NULL or "" for any */
	const char *tenant;  /* who claims: a valid id, from the verified identity */
	const char *source;  /* where the tenant claims from (address, client id,
	                        operator): failures are also counted per tenant
	                        at this source; NULL or "" for none */
	const struct onb_claim_limits *limits; /* NULL: onb_claim_limits_default */
};

/* Public refusal classes (safe to show the redeemer). */
#define ONB_CLAIM_INVALID "invalid-code"        /* unknown, used, revoked, expired: alike */
#define ONB_CLAIM_NOT_CLAIMABLE "not-claimable" /* good code; device not unclaimed */
#define ONB_CLAIM_LOCKED "locked-out"           /* too many failures; code not examined */

struct onb_claim_result {
	char device[ONB_ID_MAX + 1];   /* ok, not-claimable */
	char tenant[ONB_ID_MAX + 1];   /* ok */
	enum onb_state state;          /* ok: active; not-claimable: the device's state */
	const char *reason;            /* refused: an ONB_CLAIM_* constant; ok: NULL */
	char detail[32];               /* refused: the precise reason audited (unknown,
	                                  used, revoked, superseded, released, expired,
	                                  device-mismatch, tenant, source): for operators'
	                                  logs only, never for the redeemer */
	bool locked_now;               /* invalid: this failure started a lockout */
	int64_t retry_after_ms;        /* locked-out: time left */
};

/* Redeems a code for req->tenant in one atomic script: refused without
 * looking at the code while an identity is locked out; then the code must be
 * known, issued, unexpired (and for req->device when given), and the device
 * unclaimed; then the device becomes active for the tenant (explicit policy
 * cleared), the code is used, one state event and one audit entry are
 * written. ONB_OK or ONB_EREFUSED fill *out; err then holds the line to show
 * the redeemer ("invalid or expired claim code", ...). A refusal writes only
 * its audit entry and the failure counters. */
int onb_claim_redeem(redisContext *rc, const struct onb_claim_req *req, const struct onb_actor *actor,
		struct onb_claim_result *out, struct onb_err *err);

/* Lifts lockouts and clears failure counts, audited: with tenant, the
 * tenant's own and the tenant's at every source; with source, every tenant's
 * at that source; with both, all of these (either may be NULL, not both).
 * *cleared_out (may be NULL) receives the number of keys removed. */
int onb_claim_unlock(redisContext *rc, const char *tenant, const char *source,
		const struct onb_actor *actor, int *cleared_out, struct onb_err *err);

/* --------------------------------------------------------------- tenants */

/* Unclaims active device id: state unclaimed, tenant and explicit policy
 * removed, its claim code invalidated (a new one must be issued), one event
 * and one audit entry. ONB_ENOTFOUND, ONB_EREFUSED (not active, audited).
 * former_tenant_out (may be NULL) receives the tenant it had. */
int onb_device_release(redisContext *rc, const char *id, const char *reason,
		const struct onb_actor *actor, char former_tenant_out[ONB_ID_MAX + 1], struct onb_err *err);

/* Moves active device id to tenant `to` (operators only: no tenant may call
 * this), dropping its explicit policy; one event, one audit entry.
 * ONB_ENOTFOUND, ONB_EREFUSED (not active, or already `to`'s; audited).
 * former_tenant_out (may be NULL) receives the tenant it had. */
int onb_device_transfer(redisContext *rc, const char *id, const char *to, const char *reason,
		const struct onb_actor *actor, char former_tenant_out[ONB_ID_MAX + 1], struct onb_err *err);

#endif

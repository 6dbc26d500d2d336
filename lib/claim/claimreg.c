/* Claim codes and tenants in the registry (contract: claim/claimreg.h;
 * rules: docs/claiming.md; schema: docs/registry.md).
 *
 * Secrets: a code exists in clear only in this process (and on the label);
 * Redis sees sha256(code) as the name of its record, never the code. A code
 * is looked up by its hash, so the comparison of secrets is one of hashes,
 * done by Redis; no error message or audit entry carries a code.
 *
 * Keys named by data inside another key (the device a code is for, the code
 * a device points to) are read first by C and passed in KEYS; the script
 * checks they are still current and answers 'retry' otherwise, so every key
 * a script touches is declared. */
#include "claim/claimreg.h"
#include "core/vocab.h"
#include "registry/registry_int.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/ids.h"
#include "registry/state.h"

#define DEV_KEY_MAX ONB_REG_DEV_KEY_MAX
#define CC_KEY_MAX (ONB_CC_HASH_HEXLEN + 16)
#define RL_KEY_MAX (2 * ONB_ID_MAX + 32) /* a tenant, '/', a source name (rl_name) */
#define RETRIES 4

/* States a code may be issued in (and the device must have no tenant). */
#define ISSUE_STATES "manufactured,unclaimed,quarantined"

const struct onb_claim_limits onb_claim_limits_default = {
	.max_failures = 5,
	.window_ms = 10LL * 60 * 1000,
	.lockout_ms = 15LL * 60 * 1000,
};

/* ---------------------------------------------------------------- helpers */

static void dev_key(const char *id, char key[DEV_KEY_MAX])
{
	snprintf(key, DEV_KEY_MAX, ONB_KEY_DEVICE_FMT, id);
}

static void cc_key(const char *hash, char key[CC_KEY_MAX])
{
	snprintf(key, CC_KEY_MAX, ONB_KEY_CC_FMT, hash);
}

/* The name of a rate-limit identity in a key: itself when it is id-shaped,
 * else "h-" and its SHA-256, so that any text makes a bounded, clean key. */
static int rl_name(const char *s, char out[ONB_ID_MAX + 1], struct onb_err *err)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if(onb_id_valid(s)){
		memcpy(out, s, strlen(s) + 1);
		return ONB_OK;
	}
	if(EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32){
		return onb_fail(err, ONB_EINTERNAL, "SHA-256 unavailable");
	}
	out[0] = 'h';
	out[1] = '-';
	for(unsigned int i = 0; i < mdlen; i++){
		out[2 + 2 * i] = hex[md[i] >> 4];
		out[3 + 2 * i] = hex[md[i] & 0x0f];
	}
	out[2 + 2 * mdlen] = '\0';
	return ONB_OK;
}

/* The failure counter and lockout keys of tenant at source (rl_name of the
 * source's text). Neither a tenant id nor a source name holds '/' or a glob
 * character, so the pair reads back unambiguously and onb_claim_unlock can
 * match every source of a tenant, or every tenant at a source. */
static int tsrc_keys(const char *tenant, const char *source, char fail[RL_KEY_MAX], char lock[RL_KEY_MAX],
		struct onb_err *err)
{
	char sname[ONB_ID_MAX + 1];
	int ret = rl_name(source, sname, err);

	if(ret != ONB_OK) return ret;
	snprintf(fail, RL_KEY_MAX, ONB_KEY_CCFAIL_SRC_FMT, tenant, sname);
	snprintf(lock, RL_KEY_MAX, ONB_KEY_CCLOCK_SRC_FMT, tenant, sname);
	return ONB_OK;
}

/* Reads one field of a hash into dst ("" when absent). */
static int hget(redisContext *rc, const char *key, const char *field, char *dst, size_t cap,
		const char *what, struct onb_err *err)
{
	redisReply *r;
	int ret;

	r = onb_reg_commandv(rc, what, &ret, err, "HGET", key, field, NULL);
	if(!r) return ret;
	ret = onb_reg_reply_str(r, dst, cap) ? ONB_OK : onb_fail(err, ONB_EUNAVAIL, "%s: unexpected reply", what);
	freeReplyObject(r);
	return ret;
}

/* The device's code pointer: a hash or "". A corrupt value is an error. */
static int read_pointer(redisContext *rc, const char *devkey, char hash[ONB_CC_HASH_HEXLEN + 1],
		const char *what, struct onb_err *err)
{
	int ret = hget(rc, devkey, "claimcode", hash, ONB_CC_HASH_HEXLEN + 1, what, err);

	if(ret != ONB_OK) return ret;
	if(hash[0] && !onb_reg_fp_valid(hash)) return onb_fail(err, ONB_EINTERNAL, "%s: corrupt claim code pointer", what);
	return ONB_OK;
}

static int unexpected(redisReply *r, const char *what, struct onb_err *err)
{
	freeReplyObject(r);
	return onb_fail(err, ONB_EUNAVAIL, "%s: unexpected reply from the script", what);
}

/* A script reply {status, ...}: true when its first element is s and it has n elements. */
static bool reply_is(const redisReply *r, const char *s, size_t n)
{
	return r->type == REDIS_REPLY_ARRAY && r->elements == n && onb_reg_reply_is(r->element[0], s);
}

/* ---------------------------------------------------------------- issuing */

int onb_claimcode_issue(redisContext *rc, const char *id, int64_t ttl_ms,
		const struct onb_actor *actor, struct onb_claimcode_issued *out, struct onb_err *err)
{
	static const char what[] = "issuing claim code";
	struct onb_claimcode_issued got;
	char devkey[DEV_KEY_MAX], cckey[CC_KEY_MAX], oldkey[CC_KEY_MAX], old[ONB_CC_HASH_HEXLEN + 1];
	int ret;

	ret = onb_reg_id_check(id, "device", err);
	if(ret != ONB_OK) return ret;
	if(ttl_ms < 1000 || ttl_ms > ONB_CC_TTL_MAX_MS){
		return onb_fail(err, ONB_EINVAL, "claim code lifetime must be 1 s .. %lld days",
				(long long)(ONB_CC_TTL_MAX_MS / 86400000));
	}
	if(!out) return onb_fail(err, ONB_EINVAL, "no output for the claim code");
	ret = onb_reg_actor_check(actor, err);
	if(ret != ONB_OK) return ret;
	dev_key(id, devkey);
	memset(&got, 0, sizeof(got));

	ret = ONB_EUNAVAIL;
	for(int attempt = 0; attempt < RETRIES; attempt++){
		struct onb_args a;
		redisReply *r;
		int64_t now = onb_now_ms();

		ret = read_pointer(rc, devkey, old, what, err);
		if(ret != ONB_OK) goto cleanup;
		ret = onb_claimcode_generate(got.code, err);
		if(ret == ONB_OK) ret = onb_claimcode_hash(got.code, got.hash, err);
		if(ret != ONB_OK) goto cleanup;
		got.expires_ms = now + ttl_ms;
		cc_key(got.hash, cckey);
		cc_key(old, oldkey);

		onb_args_script(&a);
		onb_args_pushv(&a, devkey, cckey, ONB_KEY_AUDIT, NULL);
		if(old[0]) onb_args_push(&a, oldkey);
		onb_args_pushv(&a, id, got.hash, old, NULL);
		onb_args_push_i64(&a, got.expires_ms);
		onb_args_push_i64(&a, ONB_CC_GRACE_MS);
		onb_args_push(&a, ISSUE_STATES);
		onb_args_push_common(&a, now, actor, false);
		r = onb_reg_script(rc, ONB_SCRIPT_CLAIMCODE_ISSUE, &a, old[0] ? 4 : 3, what, &ret, err);
		if(!r) goto cleanup;
		if(reply_is(r, "ok", 1)){
			freeReplyObject(r);
			*out = got;
			ret = ONB_OK;
			goto cleanup;
		}
		if(reply_is(r, "retry", 1) || reply_is(r, "exists", 1)){
			freeReplyObject(r);
			ret = onb_fail(err, ONB_EUNAVAIL, "%s: the device's code changed %d times meanwhile", what, RETRIES);
			continue;
		}
		if(reply_is(r, "notfound", 1)){
			freeReplyObject(r);
			ret = onb_fail(err, ONB_ENOTFOUND, "unknown device %s", id);
		}else if(reply_is(r, "refused", 3)){
			const char *state = onb_state_name(onb_reg_reply_state(r->element[1]));
			char tenant[ONB_ID_MAX + 1];
			if(!onb_reg_reply_str(r->element[2], tenant, sizeof(tenant))) tenant[0] = '\0';
			freeReplyObject(r);
			if(tenant[0]){
				ret = onb_fail(err, ONB_EREFUSED, "device %s is %s for tenant %s: release it first",
						id, state, tenant);
			}else{
				ret = onb_fail(err, ONB_EREFUSED, "device %s is %s: no claim code can be issued for it",
						id, state);
			}
		}else{
			ret = unexpected(r, what, err);
		}
		goto cleanup;
	}
cleanup:
	OPENSSL_cleanse(&got, sizeof(got));
	return ret;
}

int onb_claimcode_revoke(redisContext *rc, const char *id, const struct onb_actor *actor,
		struct onb_err *err)
{
	static const char what[] = "revoking claim code";
	char devkey[DEV_KEY_MAX], cckey[CC_KEY_MAX], hash[ONB_CC_HASH_HEXLEN + 1], state[32];
	int ret;

	ret = onb_reg_id_check(id, "device", err);
	if(ret != ONB_OK) return ret;
	ret = onb_reg_actor_check(actor, err);
	if(ret != ONB_OK) return ret;
	dev_key(id, devkey);
	for(int attempt = 0; attempt < RETRIES; attempt++){
		struct onb_args a;
		redisReply *r;

		ret = hget(rc, devkey, "state", state, sizeof(state), what, err);
		if(ret != ONB_OK) return ret;
		if(!state[0]) return onb_fail(err, ONB_ENOTFOUND, "unknown device %s", id);
		ret = read_pointer(rc, devkey, hash, what, err);
		if(ret != ONB_OK) return ret;
		if(!hash[0]) return onb_fail(err, ONB_ENOTFOUND, "device %s has no claim code", id);
		cc_key(hash, cckey);
		onb_args_script(&a);
		onb_args_pushv(&a, devkey, cckey, ONB_KEY_AUDIT, id, hash, NULL);
		onb_args_push_common(&a, onb_now_ms(), actor, false);
		r = onb_reg_script(rc, ONB_SCRIPT_CLAIMCODE_REVOKE, &a, 3, what, &ret, err);
		if(!r) return ret;
		if(reply_is(r, "retry", 1)){
			freeReplyObject(r);
			continue;
		}
		if(reply_is(r, "ok", 1)){
			ret = ONB_OK;
		}else if(reply_is(r, "notissued", 2)){
			char status[16];
			if(!onb_reg_reply_str(r->element[1], status, sizeof(status))) status[0] = '\0';
			ret = onb_fail(err, ONB_EREFUSED, "device %s: its claim code is %s already", id,
					!strcmp(status, "gone") ? "expired" : status[0] ? status : "invalid");
		}else{
			return unexpected(r, what, err);
		}
		freeReplyObject(r);
		return ret;
	}
	return onb_fail(err, ONB_EUNAVAIL, "%s: the device's code changed %d times meanwhile", what, RETRIES);
}

static const char *const cc_fields[] = {
	"device", "status", "expires", "created", "used", "tenant", "reason", "revoked",
};
#define CC_NFIELDS (sizeof(cc_fields) / sizeof(cc_fields[0]))

int onb_claimcode_show(redisContext *rc, const char *id, struct onb_claimcode_info *out,
		struct onb_err *err)
{
	static const char what[] = "reading claim code";
	struct onb_claimcode_info info;
	char devkey[DEV_KEY_MAX], cckey[CC_KEY_MAX], hash[ONB_CC_HASH_HEXLEN + 1], state[32];
	struct onb_args a;
	redisReply *r;
	int ret;

	ret = onb_reg_id_check(id, "device", err);
	if(ret != ONB_OK) return ret;
	if(!out) return onb_fail(err, ONB_EINVAL, "no output");
	dev_key(id, devkey);
	memset(&info, 0, sizeof(info));
	ret = hget(rc, devkey, "state", state, sizeof(state), what, err);
	if(ret != ONB_OK) return ret;
	if(!state[0]) return onb_fail(err, ONB_ENOTFOUND, "unknown device %s", id);
	ret = read_pointer(rc, devkey, hash, what, err);
	if(ret != ONB_OK) return ret;
	if(!hash[0]){
		snprintf(info.status, sizeof(info.status), "none");
		*out = info;
		return ONB_OK;
	}
	memcpy(info.id, hash, ONB_CC_ID_LEN);
	info.id[ONB_CC_ID_LEN] = '\0';
	cc_key(hash, cckey);
	onb_args_hmget(&a, cckey, cc_fields, CC_NFIELDS);
	r = onb_reg_command(rc, &a, what, false, &ret, err);
	if(!r) return ret;
	if(r->type != REDIS_REPLY_ARRAY || r->elements != CC_NFIELDS) return unexpected(r, what, err);
	if(r->element[0]->type == REDIS_REPLY_NIL){
		/* only expiry removes a record (PEXPIREAT, after the grace period) */
		snprintf(info.status, sizeof(info.status), "expired");
	}else if(!onb_reg_reply_str(r->element[1], info.status, sizeof(info.status))
			|| !onb_reg_reply_i64(r->element[2], &info.expires_ms)
			|| !onb_reg_reply_i64(r->element[3], &info.created_ms)
			|| !onb_reg_reply_i64(r->element[4], &info.used_ms)
			|| !onb_reg_reply_str(r->element[5], info.tenant, sizeof(info.tenant))
			|| !onb_reg_reply_str(r->element[6], info.reason, sizeof(info.reason))
			|| !onb_reg_reply_i64(r->element[7], &info.revoked_ms)){
		freeReplyObject(r);
		return onb_fail(err, ONB_EINTERNAL, "%s: corrupt claim code record", what);
	}else if(!strcmp(info.status, "issued") && info.expires_ms <= onb_now_ms()){
		snprintf(info.status, sizeof(info.status), "expired");
	}
	freeReplyObject(r);
	*out = info;
	return ONB_OK;
}

/* -------------------------------------------------------------- redeeming */

static int limits_check(const struct onb_claim_limits *l, struct onb_err *err)
{
	if(l->max_failures < 1 || l->max_failures > 1000) return onb_fail(err, ONB_EINVAL, "claim limits: failures must be 1..1000");
	if(l->window_ms < 1 || l->window_ms > 86400000LL) return onb_fail(err, ONB_EINVAL, "claim limits: window must be 1 ms .. 1 day");
	if(l->lockout_ms < 1 || l->lockout_ms > 7 * 86400000LL) return onb_fail(err, ONB_EINVAL, "claim limits: lockout must be 1 ms .. 7 days");
	return ONB_OK;
}

static int redeem_check(const struct onb_claim_req *req, const struct onb_actor *actor,
		struct onb_claim_result *out, struct onb_err *err)
{
	if(!req || !out) return onb_fail(err, ONB_EINVAL, "no claim request");
	if(!onb_claimcode_valid(req->code)) return onb_fail(err, ONB_EINVAL, "claim: the code is not in canonical form");
	if(req->device && *req->device && !onb_id_valid(req->device)) return onb_fail(err, ONB_EINVAL, "claim: invalid device id");
	if(!onb_id_valid(req->tenant)){
		return onb_fail(err, ONB_EINVAL, "claim: invalid tenant id (expected [A-Za-z0-9._:-]{1,%d})", ONB_ID_MAX);
	}
	if(req->source && *req->source && !onb_reg_text_valid(req->source, ONB_REASON_MAX)){
		return onb_fail(err, ONB_EINVAL, "claim: source must be one line of at most %d printable bytes", ONB_REASON_MAX);
	}
	if(limits_check(req->limits ? req->limits : &onb_claim_limits_default, err) != ONB_OK) return ONB_EINVAL;
	return onb_reg_actor_check(actor, err);
}

/* Turns the script's reply into *out and the return code. */
static int redeem_reply(const redisReply *r, const struct onb_claim_req *req,
		const struct onb_claim_limits *lim, struct onb_claim_result *out, struct onb_err *err)
{
	struct onb_claim_result res;
	char state[32];

	memset(&res, 0, sizeof(res));
	res.state = ONB_STATE_INVALID;
	if(reply_is(r, "ok", 2)){
		if(!onb_reg_reply_str(r->element[1], res.device, sizeof(res.device)) || !onb_id_valid(res.device)){
			return onb_fail(err, ONB_EUNAVAIL, "claim: unexpected reply from the script");
		}
		memcpy(res.tenant, req->tenant, strlen(req->tenant) + 1);
		res.state = ONB_STATE_ACTIVE;
		*out = res;
		return ONB_OK;
	}
	if(reply_is(r, "invalid", 3)){
		res.reason = ONB_CLAIM_INVALID;
		if(!onb_reg_reply_str(r->element[1], res.detail, sizeof(res.detail))) res.detail[0] = '\0';
		res.locked_now = onb_reg_reply_is(r->element[2], "1");
		*out = res;
		if(res.locked_now){
			return onb_fail(err, ONB_EREFUSED, "invalid or expired claim code; too many failed attempts: "
					"claiming is locked for %lld s", (long long)((lim->lockout_ms + 999) / 1000));
		}
		return onb_fail(err, ONB_EREFUSED, "invalid or expired claim code");
	}
	if(reply_is(r, "locked", 3) && r->element[2]->type == REDIS_REPLY_INTEGER){
		res.reason = ONB_CLAIM_LOCKED;
		if(!onb_reg_reply_str(r->element[1], res.detail, sizeof(res.detail))) res.detail[0] = '\0';
		res.retry_after_ms = r->element[2]->integer;
		*out = res;
		return onb_fail(err, ONB_EREFUSED, "too many failed claim attempts: try again in %lld s",
				(long long)((res.retry_after_ms + 999) / 1000));
	}
	if(reply_is(r, "notclaimable", 3)){
		res.reason = ONB_CLAIM_NOT_CLAIMABLE;
		if(!onb_reg_reply_str(r->element[1], res.device, sizeof(res.device)) || !onb_id_valid(res.device)
				|| !onb_reg_reply_str(r->element[2], state, sizeof(state))){
			return onb_fail(err, ONB_EUNAVAIL, "claim: unexpected reply from the script");
		}
		res.state = onb_state_parse(state);
		snprintf(res.detail, sizeof(res.detail), "device-%s", onb_state_name(res.state));
		*out = res;
		return onb_fail(err, ONB_EREFUSED, "device %s cannot be claimed now (it is %s)", res.device,
				onb_state_name(res.state));
	}
	return onb_fail(err, ONB_EUNAVAIL, "claim: unexpected reply from the script");
}

int onb_claim_redeem(redisContext *rc, const struct onb_claim_req *req, const struct onb_actor *actor,
		struct onb_claim_result *out, struct onb_err *err)
{
	static const char what[] = "claiming";
	const struct onb_claim_limits *lim;
	char hash[ONB_CC_HASH_HEXLEN + 1], cckey[CC_KEY_MAX], devkey[DEV_KEY_MAX], dev[ONB_ID_MAX + 1];
	char tfail[RL_KEY_MAX], tlock[RL_KEY_MAX], sfail[RL_KEY_MAX], slock[RL_KEY_MAX];
	char sources[128];
	bool has_source, has_dev;
	struct onb_args a;
	redisReply *r;
	int ret;

	ret = redeem_check(req, actor, out, err);
	if(ret != ONB_OK) return ret;
	lim = req->limits ? req->limits : &onb_claim_limits_default;
	has_source = req->source && *req->source;
	ret = onb_claimcode_hash(req->code, hash, err);
	if(ret != ONB_OK) return ret;
	cc_key(hash, cckey);
	snprintf(tfail, sizeof(tfail), ONB_KEY_CCFAIL_FMT, req->tenant);
	snprintf(tlock, sizeof(tlock), ONB_KEY_CCLOCK_FMT, req->tenant);
	/* the source is counted for this tenant only: a source shared by
	 * several tenants' back-ends (one host, a NAT, a load balancer) must not
	 * let one tenant's failures lock the others out */
	if(has_source){
		ret = tsrc_keys(req->tenant, req->source, sfail, slock, err);
		if(ret != ONB_OK) return ret;
	}
	/* the device key is named by the record: read it first, the script
	 * checks it is still the record's */
	ret = hget(rc, cckey, "device", dev, sizeof(dev), what, err);
	if(ret != ONB_OK) return ret;
	has_dev = onb_id_valid(dev);
	if(has_dev) dev_key(dev, devkey);
	onb_state_sources(ONB_STATE_ACTIVE, sources, sizeof(sources));

	onb_args_script(&a);
	onb_args_pushv(&a, cckey, ONB_KEY_EVENTS, ONB_KEY_AUDIT, tfail, tlock, NULL);
	if(has_source){
		onb_args_push(&a, sfail);
		onb_args_push(&a, slock);
	}
	if(has_dev) onb_args_push(&a, devkey);
	onb_args_pushv(&a, hash, req->tenant, req->device ? req->device : "", NULL);
	onb_args_push_common(&a, onb_now_ms(), actor, true);
	onb_args_push_i64(&a, lim->max_failures);
	onb_args_push_i64(&a, lim->window_ms);
	onb_args_push_i64(&a, lim->lockout_ms);
	onb_args_pushv(&a, has_source ? "1" : "0", has_dev ? "1" : "0", sources, NULL);
	r = onb_reg_script(rc, ONB_SCRIPT_CLAIM_REDEEM, &a, 5 + (has_source ? 2 : 0) + (has_dev ? 1 : 0),
			what, &ret, err);
	if(!r) return ret;
	ret = redeem_reply(r, req, lim, out, err);
	freeReplyObject(r);
	return ret;
}

#define UNLOCK_WHAT "lifting claim lockout"

/* Sends DEL with the keys a holds after its first slot; adds the number
 * removed to *n and empties a for the next batch. */
static int del_batch(redisContext *rc, struct onb_args *a, int *n, struct onb_err *err)
{
	redisReply *r;
	int ret;

	if(a->n <= 1) return ONB_OK;
	r = onb_reg_command(rc, a, UNLOCK_WHAT, false, &ret, err);
	if(!r) return ret;
	if(r->type != REDIS_REPLY_INTEGER){
		freeReplyObject(r);
		return onb_fail(err, ONB_EUNAVAIL, UNLOCK_WHAT ": unexpected reply");
	}
	*n += (int)r->integer;
	freeReplyObject(r);
	memset(a, 0, sizeof(*a));
	onb_args_push(a, "DEL");
	return ONB_OK;
}

/* Deletes every key matching pattern (SCAN, then DEL in batches), adding the
 * number removed to *n. Not one step: a lockout that starts meanwhile may
 * stay, as if it had started just after the unlock. */
static int del_matching(redisContext *rc, const char *pattern, int *n, struct onb_err *err)
{
	char cursor[ONB_SCAN_CURSOR_MAX] = "0";
	struct onb_args scan, del;
	redisReply *r;
	int ret = ONB_OK;

	memset(&del, 0, sizeof(del));
	onb_args_push(&del, "DEL");
	do{
		const redisReply *keys;

		onb_args_scan(&scan, cursor, pattern, "1000");
		r = onb_reg_command(rc, &scan, UNLOCK_WHAT, false, &ret, err);
		if(!r) return ret;
		if(!onb_reg_scan_reply(r, cursor, &keys)){
			freeReplyObject(r);
			return onb_fail(err, ONB_EUNAVAIL, UNLOCK_WHAT ": unexpected SCAN reply");
		}
		for(size_t i = 0; i < keys->elements && ret == ONB_OK; i++){
			const redisReply *k = keys->element[i];
			if(k->type != REDIS_REPLY_STRING) continue;
			onb_args_push_len(&del, k->str, k->len);
			/* the keys are borrowed from r: send them before it is freed */
			if(del.n == ONB_ARGS_MAX) ret = del_batch(rc, &del, n, err);
		}
		if(ret == ONB_OK) ret = del_batch(rc, &del, n, err);
		freeReplyObject(r);
	}while(ret == ONB_OK && strcmp(cursor, "0") != 0);
	return ret;
}

int onb_claim_unlock(redisContext *rc, const char *tenant, const char *source,
		const struct onb_actor *actor, int *cleared_out, struct onb_err *err)
{
	char key[RL_KEY_MAX], sname[ONB_ID_MAX + 1], reason[ONB_ID_MAX * 2 + 32];
	bool has_tenant = tenant && *tenant, has_source = source && *source;
	struct onb_audit_entry e;
	struct onb_args a;
	int n = 0, ret;

	if(has_tenant && !onb_id_valid(tenant)) return onb_fail(err, ONB_EINVAL, "invalid tenant id");
	if(has_source && !onb_reg_text_valid(source, ONB_REASON_MAX)) return onb_fail(err, ONB_EINVAL, "invalid source");
	if(!has_tenant && !has_source) return onb_fail(err, ONB_EINVAL, "unlock needs a tenant or a source");
	ret = onb_reg_actor_check(actor, err);
	if(ret != ONB_OK) return ret;
	if(has_source){
		ret = rl_name(source, sname, err);
		if(ret != ONB_OK) return ret;
	}
	if(has_tenant){
		char tfail[RL_KEY_MAX], tlock[RL_KEY_MAX];

		snprintf(tfail, sizeof(tfail), ONB_KEY_CCFAIL_FMT, tenant);
		snprintf(tlock, sizeof(tlock), ONB_KEY_CCLOCK_FMT, tenant);
		memset(&a, 0, sizeof(a));
		onb_args_pushv(&a, "DEL", tfail, tlock, NULL);
		ret = del_batch(rc, &a, &n, err);
		/* the tenant at every source: "<tenant>/" ends the tenant's part */
		if(ret == ONB_OK){
			snprintf(key, sizeof(key), ONB_KEY_CCFAIL_SRC_FMT, tenant, "*");
			ret = del_matching(rc, key, &n, err);
		}
		if(ret == ONB_OK){
			snprintf(key, sizeof(key), ONB_KEY_CCLOCK_SRC_FMT, tenant, "*");
			ret = del_matching(rc, key, &n, err);
		}
		if(ret != ONB_OK) return ret;
	}
	if(has_source){
		/* every tenant at the source: "/<source>" is the whole source part */
		snprintf(key, sizeof(key), ONB_KEY_CCFAIL_SRC_FMT, "*", sname);
		ret = del_matching(rc, key, &n, err);
		if(ret == ONB_OK){
			snprintf(key, sizeof(key), ONB_KEY_CCLOCK_SRC_FMT, "*", sname);
			ret = del_matching(rc, key, &n, err);
		}
		if(ret != ONB_OK) return ret;
	}
	snprintf(reason, sizeof(reason), "%s%s%s%s", has_tenant ? "tenant " : "", has_tenant ? tenant : "",
			has_source ? (has_tenant ? ", source " : "source ") : "", has_source ? sname : "");
	memset(&e, 0, sizeof(e));
	e.actor = actor->who;
	e.source = actor->source;
	e.action = ONB_AA(CLAIM_UNLOCK);
	e.result = "ok";
	e.reason = reason;
	ret = onb_audit_append(rc, &e, err);
	if(ret != ONB_OK) return ret;
	if(cleared_out) *cleared_out = n;
	return ONB_OK;
}

/* ---------------------------------------------------------------- tenants */

/* Reads {'ok', former tenant}, {'notfound'}, {'refused', state}, {'same'}. */
static int tenant_reply(redisReply *r, const char *id, const char *what, const char *verb,
		char former_out[ONB_ID_MAX + 1], struct onb_err *err)
{
	char buf[ONB_ID_MAX + 1];
	int ret;

	if(reply_is(r, "ok", 2) && onb_reg_reply_str(r->element[1], buf, sizeof(buf))){
		if(former_out) memcpy(former_out, buf, strlen(buf) + 1);
		ret = ONB_OK;
	}else if(reply_is(r, "notfound", 1)){
		ret = onb_fail(err, ONB_ENOTFOUND, "unknown device %s", id);
	}else if(reply_is(r, "refused", 2) && onb_reg_reply_str(r->element[1], buf, sizeof(buf))){
		ret = onb_fail(err, ONB_EREFUSED, "cannot %s %s: it is %s, not active", verb, id,
				onb_state_name(onb_state_parse(buf)));
	}else if(reply_is(r, "same", 1)){
		ret = onb_fail(err, ONB_EREFUSED, "cannot %s %s: it already belongs to that tenant", verb, id);
	}else{
		return unexpected(r, what, err);
	}
	freeReplyObject(r);
	return ret;
}

int onb_device_release(redisContext *rc, const char *id, const char *reason,
		const struct onb_actor *actor, char former_tenant_out[ONB_ID_MAX + 1], struct onb_err *err)
{
	static const char what[] = "releasing device";
	char devkey[DEV_KEY_MAX], cckey[CC_KEY_MAX], ptr[ONB_CC_HASH_HEXLEN + 1];
	int ret;

	ret = onb_reg_change_check(id, reason, actor, err);
	if(ret != ONB_OK) return ret;
	dev_key(id, devkey);
	for(int attempt = 0; attempt < RETRIES; attempt++){
		struct onb_args a;
		redisReply *r;

		ret = read_pointer(rc, devkey, ptr, what, err);
		if(ret != ONB_OK) return ret;
		cc_key(ptr, cckey);
		onb_args_device_script(&a, devkey, id);
		if(ptr[0]) onb_args_push(&a, cckey);
		onb_args_push(&a, id);
		onb_args_push(&a, ptr);
		onb_args_push_common(&a, onb_now_ms(), actor, true);
		onb_args_push(&a, reason ? reason : "");
		r = onb_reg_script(rc, ONB_SCRIPT_DEVICE_RELEASE, &a, ptr[0] ? 4 : 3, what, &ret, err);
		if(!r) return ret;
		if(reply_is(r, "retry", 1)){
			freeReplyObject(r);
			continue;
		}
		return tenant_reply(r, id, what, "release", former_tenant_out, err);
	}
	return onb_fail(err, ONB_EUNAVAIL, "%s: the device's code changed %d times meanwhile", what, RETRIES);
}

int onb_device_transfer(redisContext *rc, const char *id, const char *to, const char *reason,
		const struct onb_actor *actor, char former_tenant_out[ONB_ID_MAX + 1], struct onb_err *err)
{
	static const char what[] = "transferring device";
	char devkey[DEV_KEY_MAX];
	struct onb_args a;
	redisReply *r;
	int ret;

	ret = onb_reg_change_check(id, reason, actor, err);
	if(ret == ONB_OK) ret = onb_reg_id_check(to, "tenant", err);
	if(ret != ONB_OK) return ret;
	onb_args_device_script(&a, devkey, id);
	onb_args_push(&a, id);
	onb_args_push(&a, to);
	onb_args_push_common(&a, onb_now_ms(), actor, true);
	onb_args_push(&a, reason ? reason : "");
	r = onb_reg_script(rc, ONB_SCRIPT_DEVICE_TRANSFER, &a, 3, what, &ret, err);
	if(!r) return ret;
	return tenant_reply(r, id, what, "transfer", former_tenant_out, err);
}

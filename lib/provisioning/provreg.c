/* Fleet provisioning in the registry: ownership tokens, RegisterThing and
 * the allowlist (contract: provisioning/provreg.h; schema: docs/registry.md).
 *
 * Secrets: the ownership token exists in clear only in this process and in
 * the reply to the device. Redis sees sha256(token) (the name of its record),
 * never the token; no error message, log line or audit entry carries it.
 * A token is looked up by its hash, so the comparison is one of hashes done
 * by Redis; nothing secret is compared in C.
 *
 * Error conventions as in registry.c: ONB_EUNAVAIL for any Redis failure,
 * ONB_EINVAL for bad arguments (nothing sent), out-parameters written only on
 * success (reason_out only on ONB_EREFUSED). */
#include "provisioning/provreg.h"
#include "registry/registry_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "identity/authority.h"
#include "pki/crl.h"
#include "policy/policystore.h"
#include "core/ids.h"
#include "provisioning/provision.h"
#include "registry/state.h"
#include "core/vocab.h"

#define TOKEN_BYTES (ONB_TOKEN_HEXLEN / 2)
#define TOK_KEY_MAX (ONB_FP_HEXLEN + 16)
#define DEV_KEY_MAX (ONB_ID_MAX + 16) /* also holds onb:fp:/onb:cc: keys (64 hex) */
#define REPROV_ATTEMPTS 3             /* reads of a device record that keeps changing */

/* ---------------------------------------------------------------- helpers */

static void to_hex(const unsigned char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for(size_t i = 0; i < n; i++){
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

/* SHA-256 of s as lower-case hex. */
static int sha256_hex(const char *s, size_t len, char out[ONB_FP_HEXLEN + 1], struct onb_err *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if(EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != ONB_FP_HEXLEN / 2){
		return onb_fail(err, ONB_EINTERNAL, "SHA-256 unavailable");
	}
	to_hex(md, mdlen, out);
	return ONB_OK;
}

/* A token as issued: ONB_TOKEN_HEXLEN lower-case hex digits. */
static bool token_format_valid(const char *t)
{
	return onb_reg_fp_valid(t); /* same shape: 64 lower-case hex */
}

static int requester_check(const struct onb_requester *r, struct onb_err *err)
{
	if(!r) return onb_fail(err, ONB_EINVAL, "no requester");
	if(!onb_id_valid(r->client_id)){
		return onb_fail(err, ONB_EINVAL, "invalid requester client id (expected [A-Za-z0-9._:-]{1,%d})",
				ONB_ID_MAX);
	}
	if(!onb_idclass_may_request(onb_idclass_parse(r->idclass))){
		return onb_fail(err, ONB_EINVAL, "invalid requester class (expected claim, birth or device)");
	}
	if(!onb_reg_fp_valid(r->fp)){
		return onb_fail(err, ONB_EINVAL, "invalid requester fingerprint (expected %d lower-case hex digits)",
				ONB_FP_HEXLEN);
	}
	return ONB_OK;
}

/* ---------------------------------------------------------- reprovision */

#define REPROV_NAME(e, name) [e] = name,
static const char *const reprov_names[] = { ONB_REPROVISION_LIST(REPROV_NAME) };
#undef REPROV_NAME

const char *onb_reprovision_name(enum onb_reprovision p)
{
	if((size_t)p >= sizeof(reprov_names) / sizeof(reprov_names[0])) return "";
	return reprov_names[p];
}

bool onb_reprovision_parse(const char *s, enum onb_reprovision *out)
{
	if(!s) return false;
	for(size_t i = 0; i < sizeof(reprov_names) / sizeof(reprov_names[0]); i++){
		if(!strcmp(s, reprov_names[i])){
			if(out) *out = (enum onb_reprovision)i;
			return true;
		}
	}
	return false;
}

/* ----------------------------------------------------------- token issue */

int onb_token_issue(redisContext *rc, const char *cert_fp, const char *cert_serial,
		int64_t not_after, const struct onb_requester *requester, int ttl_s,
		char token_out[ONB_TOKEN_HEXLEN + 1], struct onb_err *err)
{
	return onb_token_issue_audited(rc, cert_fp, cert_serial, not_after, requester, ttl_s, NULL,
			token_out, err);
}

int onb_token_issue_audited(redisContext *rc, const char *cert_fp, const char *cert_serial,
		int64_t not_after, const struct onb_requester *requester, int ttl_s,
		const struct onb_audit_entry *audit, char token_out[ONB_TOKEN_HEXLEN + 1], struct onb_err *err)
{
	unsigned char raw[TOKEN_BYTES];
	char token[ONB_TOKEN_HEXLEN + 1], hash[ONB_FP_HEXLEN + 1];
	char tokkey[TOK_KEY_MAX], pendkey[TOK_KEY_MAX], fpkey[TOK_KEY_MAX];
	struct onb_args a;
	redisReply *r = NULL;
	int ret;

	if(!onb_reg_fp_valid(cert_fp)){
		return onb_fail(err, ONB_EINVAL, "invalid certificate fingerprint (expected %d lower-case hex digits)",
				ONB_FP_HEXLEN);
	}
	if(!cert_serial || !*cert_serial || !onb_reg_serial_valid(cert_serial)){
		return onb_fail(err, ONB_EINVAL, "invalid certificate serial (expected up to %d lower-case hex digits)",
				ONB_FP_HEXLEN);
	}
	if(not_after < 0) return onb_fail(err, ONB_EINVAL, "invalid certificate expiry");
	ret = requester_check(requester, err);
	if(ret != ONB_OK) return ret;
	if(ttl_s < 1 || ttl_s > ONB_TOKEN_TTL_MAX){
		return onb_fail(err, ONB_EINVAL, "token lifetime must be 1..%d s", ONB_TOKEN_TTL_MAX);
	}
	if(!token_out) return onb_fail(err, ONB_EINVAL, "no token buffer");
	if(audit && (!audit->actor || !audit->action || !audit->result)){
		return onb_fail(err, ONB_EINVAL, "audit entry needs actor, action and result");
	}

	if(RAND_bytes(raw, sizeof(raw)) != 1){
		ret = onb_fail(err, ONB_EINTERNAL, "no random bytes for the ownership token");
		goto cleanup;
	}
	to_hex(raw, sizeof(raw), token);
	ret = sha256_hex(token, ONB_TOKEN_HEXLEN, hash, err);
	if(ret != ONB_OK) goto cleanup;

	snprintf(tokkey, sizeof(tokkey), ONB_KEY_TOKEN_FMT, hash);
	snprintf(pendkey, sizeof(pendkey), ONB_KEY_PENDING_FMT, cert_fp);
	snprintf(fpkey, sizeof(fpkey), ONB_KEY_FP_FMT, cert_fp);
	onb_args_script(&a);
	onb_args_pushv(&a, tokkey, pendkey, fpkey, NULL);
	if(audit) onb_args_push(&a, ONB_KEY_AUDIT);
	onb_args_push(&a, cert_fp);
	onb_args_push(&a, cert_serial);
	onb_args_push_i64(&a, not_after);
	onb_args_pushv(&a, requester->client_id, requester->idclass, requester->fp, NULL);
	onb_args_push_i64(&a, onb_now_ms());
	onb_args_push_i64(&a, (int64_t)ttl_s * 1000);
	onb_args_push(&a, hash);
	if(audit){
		onb_args_push_i64(&a, onb_audit_minid());
		onb_args_push_audit_fields(&a, audit);
	}

	r = onb_reg_script(rc, ONB_SCRIPT_TOKEN_ISSUE, &a, audit ? 4 : 3, "recording ownership token", &ret, err);
	if(!r) goto cleanup;
	if(r->type != REDIS_REPLY_ARRAY || r->elements < 1){
		ret = onb_fail(err, ONB_EUNAVAIL, "recording ownership token: unexpected reply from Redis");
	}else if(onb_reg_reply_is(r->element[0], "ok")){
		memcpy(token_out, token, sizeof(token));
		ret = ONB_OK;
	}else if(onb_reg_reply_is(r->element[0], "pending")){
		ret = onb_fail(err, ONB_EEXIST, "certificate already has an ownership token");
	}else if(onb_reg_reply_is(r->element[0], "bound")){
		ret = onb_fail(err, ONB_EEXIST, "certificate is already bound to a device");
	}else if(onb_reg_reply_is(r->element[0], "exists")){
		ret = onb_fail(err, ONB_EINTERNAL, "ownership token collision (broken random generator?)");
	}else{
		ret = onb_fail(err, ONB_EUNAVAIL, "recording ownership token: unexpected reply from the script");
	}

cleanup:
	if(r) freeReplyObject(r);
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(token, sizeof(token));
	return ret;
}

int onb_token_ref(const char *token, char ref[ONB_FP_HEXLEN + 1], struct onb_err *err)
{
	if(!token || !token_format_valid(token)) return onb_fail(err, ONB_EINVAL, "not an ownership token");
	return sha256_hex(token, ONB_TOKEN_HEXLEN, ref, err);
}

/* --------------------------------------------------------- RegisterThing */

static const struct {
	const char *reason;
	const char *text;
} refusals[] = {
	{ ONB_RT_TOKEN_INVALID, "ownership token is unknown, expired or already used" },
	{ ONB_RT_TOKEN_USED, "ownership token is unknown, expired or already used" },
	{ ONB_RT_TOKEN_FOREIGN, "ownership token was issued to another connection" },
	{ ONB_RT_NOT_ALLOWLISTED, "not on the allowlist" },
	{ ONB_RT_PROVISIONED, "already provisioned" },
	{ ONB_RT_BIRTH_MISMATCH, "allowlisted for another birth certificate" },
	{ ONB_RT_CERT_BOUND, "certificate is already bound to a device" },
	{ ONB_RT_REPROV_STATE, "already provisioned, and a quarantined or revoked device is not re-provisioned" },
	{ ONB_RT_REPROV_IDENTITY, "already provisioned; this template re-provisions a device only with its "
		"own birth certificate" },
	{ ONB_RT_REPROV_TEMPLATE, "already provisioned, not through this template; it re-provisions only "
		"the devices it provisioned" },
};

/* ONB_EREFUSED with the message of reason (one of ONB_RT_*; *reason_out
 * receives the static constant). */
static int refused(const char *reason, const char *id, const char **reason_out, struct onb_err *err)
{
	for(size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++){
		if(!strcmp(reason, refusals[i].reason)){
			if(reason_out) *reason_out = refusals[i].reason;
			return onb_fail(err, ONB_EREFUSED, "device %s: %s", id, refusals[i].text);
		}
	}
	return onb_fail(err, ONB_EUNAVAIL, "RegisterThing: unexpected refusal from the script");
}

/* The audit entry of a refusal decided before the script runs (the token is
 * malformed or unknown): the same fields register_thing.lua writes. */
static int audit_refusal(redisContext *rc, const struct onb_register_thing *req,
		const struct onb_actor *actor, const char *reason, struct onb_err *err)
{
	struct onb_args a;

	memset(&a, 0, sizeof(a));
	onb_args_push_audit_xadd(&a);
	onb_args_push_field(&a, "actor", actor->who);
	if(actor->source && *actor->source) onb_args_push_field(&a, "source", actor->source);
	onb_args_push_field(&a, "action", ONB_AA(REGISTER_THING));
	onb_args_push_field(&a, "device", req->device_id);
	onb_args_push_field(&a, "result", "refused");
	onb_args_push_field(&a, "reason", reason);
	onb_args_push_field(&a, "client_id", req->requester->client_id);
	onb_args_push_field(&a, "class", req->requester->idclass);
	onb_args_push_field(&a, "requester_fp", req->requester->fp);
	if(req->serial && *req->serial) onb_args_push_field(&a, "serial", req->serial);
	onb_args_push_audit_ts(&a);
	return onb_reg_audit_send(rc, &a, "auditing RegisterThing", err);
}

static int register_thing_check(const struct onb_register_thing *req, struct onb_err *err)
{
	int ret;

	if(!req) return onb_fail(err, ONB_EINVAL, "no RegisterThing request");
	ret = requester_check(req->requester, err);
	if(ret != ONB_OK) return ret;
	if(!onb_id_valid(req->device_id)){
		return onb_fail(err, ONB_EINVAL, "invalid device id (expected [A-Za-z0-9._:-]{1,%d})", ONB_ID_MAX);
	}
	if(req->serial && !onb_reg_text_valid(req->serial, ONB_ID_MAX)){
		return onb_fail(err, ONB_EINVAL, "serial must be one line of at most %d printable bytes", ONB_ID_MAX);
	}
	if(req->state != ONB_STATE_UNCLAIMED && req->state != ONB_STATE_ACTIVE){
		return onb_fail(err, ONB_EINVAL, "a device is provisioned as unclaimed or active, not %s",
				onb_state_name(req->state));
	}
	if(req->tenant && *req->tenant){
		if(!onb_id_valid(req->tenant)){
			return onb_fail(err, ONB_EINVAL, "invalid tenant id (expected [A-Za-z0-9._:-]{1,%d})", ONB_ID_MAX);
		}
		if(req->state != ONB_STATE_ACTIVE){
			return onb_fail(err, ONB_EINVAL, "a tenant can only be given to an active device");
		}
	}
	if(req->policy && *req->policy && !onb_policy_name_valid(req->policy)){
		return onb_fail(err, ONB_EINVAL, "invalid policy name (expected [A-Za-z0-9._-]{1,%d})", ONB_NAME_MAX);
	}
	if(!req->request) return onb_fail(err, ONB_EINVAL, "no canonical request");
	if(!*onb_reprovision_name(req->reprovision)) return onb_fail(err, ONB_EINVAL, "invalid reprovision policy");
	if(req->template_name && *req->template_name && !onb_prov_template_name_valid(req->template_name)){
		return onb_fail(err, ONB_EINVAL, "invalid template name");
	}
	return ONB_OK;
}

/* Reads the certificate fingerprint of the token record named by hash into
 * fp; ONB_ENOTFOUND when there is no such (unexpired, unused) token. */
static int token_cert_fp(redisContext *rc, const char *tokkey, char fp[ONB_FP_HEXLEN + 1],
		struct onb_err *err)
{
	redisReply *r;
	int ret;

	r = onb_reg_commandv(rc, "looking up ownership token", &ret, err, "HGET", tokkey, "cert_fp", NULL);
	if(!r) return ret;
	if(r->type == REDIS_REPLY_NIL){
		ret = ONB_ENOTFOUND;
	}else if(!onb_reg_reply_str(r, fp, ONB_FP_HEXLEN + 1) || !onb_reg_fp_valid(fp)){
		ret = onb_fail(err, ONB_EINTERNAL, "corrupt ownership token record");
	}else{
		ret = ONB_OK;
	}
	freeReplyObject(r);
	return ret;
}

int onb_register_thing(redisContext *rc, const struct onb_register_thing *req,
		const struct onb_actor *actor, bool *replay_out, const char **reason_out, struct onb_err *err)
{
	char hash[ONB_FP_HEXLEN + 1], fp[ONB_FP_HEXLEN + 1], sources[128], request[ONB_FP_HEXLEN + 1];
	char tokkey[TOK_KEY_MAX], pendkey[TOK_KEY_MAX], fpkey[TOK_KEY_MAX], devkey[DEV_KEY_MAX];
	struct onb_args a;
	redisReply *r = NULL;
	int ret;

	ret = register_thing_check(req, err);
	if(ret != ONB_OK) return ret;
	ret = onb_reg_actor_check(actor, err);
	if(ret != ONB_OK) return ret;

	/* A token that cannot have been issued is not looked up. */
	if(!req->token || !token_format_valid(req->token)) goto refuse_invalid;
	ret = sha256_hex(req->token, ONB_TOKEN_HEXLEN, hash, err);
	if(ret != ONB_OK) return ret;
	snprintf(tokkey, sizeof(tokkey), ONB_KEY_TOKEN_FMT, hash);
	ret = sha256_hex(req->request, strlen(req->request), request, err);
	if(ret != ONB_OK) return ret;

	/* The certificate's keys are named by data in the token record: read it
	 * first (unless the caller, who issued the token, remembers it), then
	 * the script checks the record still names that certificate (so every
	 * key the script touches is in KEYS, and a wrong hint is refused as
	 * an unknown token would be). */
	if(req->cert_fp_hint && onb_reg_fp_valid(req->cert_fp_hint)){
		memcpy(fp, req->cert_fp_hint, ONB_FP_HEXLEN + 1);
	}else{
		ret = token_cert_fp(rc, tokkey, fp, err);
		if(ret == ONB_ENOTFOUND) goto refuse_invalid;
		if(ret != ONB_OK) return ret;
	}

	onb_state_sources(req->state, sources, sizeof(sources));
	snprintf(pendkey, sizeof(pendkey), ONB_KEY_PENDING_FMT, fp);
	snprintf(fpkey, sizeof(fpkey), ONB_KEY_FP_FMT, fp);
	snprintf(devkey, sizeof(devkey), ONB_KEY_DEVICE_FMT, req->device_id);
	for(int attempt = 0; attempt < REPROV_ATTEMPTS; attempt++){
		struct onb_reg_pointers p;
		struct onb_reg_pointer_keys k;

		/* Re-provisioning touches the keys the device record names (its
		 * certificates, its claim code): read them first; the script
		 * answers retry if they moved. Under never nothing is replaced,
		 * and the script refuses before it looks at them. */
		memset(&p, 0, sizeof(p));
		if(req->reprovision != ONB_REPROV_NEVER){
			ret = onb_reg_read_pointers(rc, devkey, req->device_id, &p, err);
			if(ret != ONB_OK) return ret;
		}
		onb_reg_pointer_keys(&p, devkey, &k);
		onb_args_script(&a);
		onb_args_pushv(&a, tokkey, pendkey, devkey, fpkey, ONB_KEY_EVENTS, ONB_KEY_AUDIT, k.fp, k.next, k.code,
				ONB_KEY_CRL_REVOKED, NULL);
		onb_args_pushv(&a, req->device_id, fp, req->requester->client_id, req->requester->idclass,
				req->requester->fp, req->serial ? req->serial : "", req->allowlist_required ? "1" : "0",
				onb_state_name(req->state), req->tenant ? req->tenant : "", req->policy ? req->policy : "",
				sources, NULL);
		onb_args_push_common(&a, onb_now_ms(), actor, true);
		onb_args_pushv(&a, request, onb_reprovision_name(req->reprovision), p.fp, p.next, p.code,
				req->template_name ? req->template_name : "", NULL);

		r = onb_reg_script(rc, ONB_SCRIPT_REGISTER_THING, &a, 10, "RegisterThing", &ret, err);
		if(!r) return ret;
		if(r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && onb_reg_reply_is(r->element[0], "retry")){
			freeReplyObject(r);
			r = NULL;
			continue;
		}
		if(r->type != REDIS_REPLY_ARRAY || r->elements < 1){
			ret = onb_fail(err, ONB_EUNAVAIL, "RegisterThing: unexpected reply from Redis");
		}else if(onb_reg_reply_is(r->element[0], "ok") || onb_reg_reply_is(r->element[0], "replay")){
			if(replay_out) *replay_out = onb_reg_reply_is(r->element[0], "replay");
			ret = ONB_OK;
		}else if(onb_reg_reply_is(r->element[0], "refused") && r->elements == 2){
			char reason[32];
			if(!onb_reg_reply_str(r->element[1], reason, sizeof(reason))) reason[0] = '\0';
			ret = refused(reason, req->device_id, reason_out, err);
		}else{
			ret = onb_fail(err, ONB_EUNAVAIL, "RegisterThing: unexpected reply from the script");
		}
		freeReplyObject(r);
		return ret;
	}
	return onb_fail(err, ONB_EUNAVAIL, "RegisterThing: device %s keeps changing", req->device_id);

refuse_invalid:
	ret = audit_refusal(rc, req, actor, ONB_RT_TOKEN_INVALID, err);
	if(ret != ONB_OK) return ret;
	return refused(ONB_RT_TOKEN_INVALID, req->device_id, reason_out, err);
}

/* ------------------------------------------------------------- allowlist */

static int allow_entry_check(const struct onb_allow_entry *e, size_t i, struct onb_err *err)
{
	if(!onb_id_valid(e->device_id)){
		return onb_fail(err, ONB_EINVAL, "entry %zu: invalid device id (expected [A-Za-z0-9._:-]{1,%d})",
				i, ONB_ID_MAX);
	}
	if(e->serial && !onb_reg_text_valid(e->serial, ONB_ID_MAX)){
		return onb_fail(err, ONB_EINVAL, "entry %zu (%s): serial must be one line of at most %d printable bytes",
				i, e->device_id, ONB_ID_MAX);
	}
	if(e->birth_fp && *e->birth_fp && !onb_reg_fp_valid(e->birth_fp)){
		return onb_fail(err, ONB_EINVAL, "entry %zu (%s): birth fingerprint must be %d lower-case hex digits",
				i, e->device_id, ONB_FP_HEXLEN);
	}
	if(e->batch && !onb_reg_text_valid(e->batch, ONB_BATCH_MAX)){
		return onb_fail(err, ONB_EINVAL, "entry %zu (%s): batch must be one line of at most %d printable bytes",
				i, e->device_id, ONB_BATCH_MAX);
	}
	return ONB_OK;
}

/* One pipelined pass: sends allow_add for the entries idx[0..*m) and reads
 * every reply that was sent. Outcomes go to out[]; the indexes answered
 * NOSCRIPT are left in idx[0..*m) for another pass. */
static int allow_pass(redisContext *rc, const struct onb_allow_entry *entries, size_t *idx, size_t *m,
		const char *now, enum onb_allow_result *out, struct onb_err *err)
{
	const char *sha = onb_reg_script_sha(ONB_SCRIPT_ALLOW_ADD);
	const char *body = onb_reg_script_body(ONB_SCRIPT_ALLOW_ADD);
	size_t sent = 0, got = 0, left = 0;
	int ret = ONB_OK;

	for(; sent < *m; sent++){
		const struct onb_allow_entry *e = &entries[idx[sent]];
		char key[DEV_KEY_MAX];
		struct onb_args a;

		snprintf(key, sizeof(key), ONB_KEY_DEVICE_FMT, e->device_id);
		memset(&a, 0, sizeof(a));
		if(sha[0]){
			onb_args_push(&a, "EVALSHA");
			onb_args_push(&a, sha);
		}else{
			onb_args_push(&a, "EVAL");
			onb_args_push(&a, body);
		}
		onb_args_pushv(&a, "1", key, e->serial ? e->serial : "", e->birth_fp ? e->birth_fp : "",
				e->batch ? e->batch : "", now, NULL);
		/* hiredis copies the command into its output buffer here */
		if(redisAppendCommandArgv(rc, a.n, a.v, a.len) != REDIS_OK){
			ret = onb_fail(err, ONB_EUNAVAIL, "adding to the allowlist: %s", rc->errstr);
			break;
		}
	}
	/* Read every reply that was queued, even after an error above, unless
	 * the connection itself failed (then the context is dead anyway). */
	for(; got < sent; got++){
		void *rep = NULL;
		redisReply *r;

		if(redisGetReply(rc, &rep) != REDIS_OK || !rep){
			ret = onb_fail(err, ONB_EUNAVAIL, "adding to the allowlist: %s",
					rc->err ? rc->errstr : "no reply from Redis");
			break;
		}
		r = rep;
		if(r->type == REDIS_REPLY_INTEGER && (r->integer == 0 || r->integer == 1)){
			out[idx[got]] = r->integer == 1 ? ONB_ALLOW_ADDED : ONB_ALLOW_PRESENT;
		}else if(r->type == REDIS_REPLY_ERROR && r->len >= 8 && !memcmp(r->str, "NOSCRIPT", 8)){
			idx[left++] = idx[got]; /* not run: safe to send again */
		}else if(ret == ONB_OK){
			if(r->type == REDIS_REPLY_ERROR){
				ret = onb_fail(err, ONB_EUNAVAIL, "adding to the allowlist: Redis error: %.*s",
						(int)r->len, r->str);
			}else{
				ret = onb_fail(err, ONB_EUNAVAIL, "adding to the allowlist: unexpected reply from the script");
			}
		}
		freeReplyObject(r);
	}
	*m = left;
	return ret;
}

/* Loads allow_add.lua into the server's script cache. */
static int allow_load(redisContext *rc, struct onb_err *err)
{
	redisReply *r;
	int ret;

	r = onb_reg_commandv(rc, "loading the allowlist script", &ret, err, "SCRIPT", "LOAD",
			onb_reg_script_body(ONB_SCRIPT_ALLOW_ADD), NULL);
	if(!r) return ret;
	ret = onb_reg_reply_is(r, onb_reg_script_sha(ONB_SCRIPT_ALLOW_ADD)) ? ONB_OK
		: onb_fail(err, ONB_EUNAVAIL, "loading the allowlist script: unexpected reply");
	freeReplyObject(r);
	return ret;
}

/* The one audit entry of a batch. */
static int audit_batch(redisContext *rc, const struct onb_allow_entry *entries, size_t n,
		size_t added, const struct onb_actor *actor, struct onb_err *err)
{
	char reason[96];
	const char *batch = entries[0].batch;
	struct onb_args a;

	for(size_t i = 1; batch && i < n; i++){
		if(!entries[i].batch || strcmp(entries[i].batch, batch) != 0) batch = NULL;
	}
	snprintf(reason, sizeof(reason), "added %zu, already present %zu", added, n - added);
	memset(&a, 0, sizeof(a));
	onb_args_push_audit_xadd(&a);
	onb_args_push_field(&a, "actor", actor->who);
	if(actor->source && *actor->source) onb_args_push_field(&a, "source", actor->source);
	onb_args_push_field(&a, "action", ONB_AA(ALLOWLIST_ADD));
	onb_args_push_field(&a, "result", "ok");
	onb_args_push_field(&a, "reason", reason);
	onb_args_push(&a, "added");
	onb_args_push_i64(&a, (int64_t)added);
	onb_args_push(&a, "present");
	onb_args_push_i64(&a, (int64_t)(n - added));
	onb_args_push_field(&a, "first", entries[0].device_id);
	onb_args_push_field(&a, "last", entries[n - 1].device_id);
	if(batch && *batch) onb_args_push_field(&a, "batch", batch);
	onb_args_push_audit_ts(&a);
	return onb_reg_audit_send(rc, &a, "auditing the allowlist import", err);
}

int onb_allowlist_add(redisContext *rc, const struct onb_allow_entry *entries, size_t n,
		enum onb_allow_result *results, const struct onb_actor *actor, struct onb_err *err)
{
	enum onb_allow_result *out = NULL;
	size_t *idx = NULL, m = n, added = 0;
	char now[24];
	int ret;

	if(n == 0) return ONB_OK;
	if(!entries || !results) return onb_fail(err, ONB_EINVAL, "no allowlist entries");
	if(n > ONB_ALLOW_BATCH_MAX){
		return onb_fail(err, ONB_EINVAL, "at most %d allowlist entries per call", ONB_ALLOW_BATCH_MAX);
	}
	ret = onb_reg_actor_check(actor, err);
	if(ret != ONB_OK) return ret;
	for(size_t i = 0; i < n; i++){
		ret = allow_entry_check(&entries[i], i, err);
		if(ret != ONB_OK) return ret;
	}
	if(!rc) return onb_fail(err, ONB_EUNAVAIL, "adding to the allowlist: no Redis connection");
	if(rc->err){
		return onb_fail(err, ONB_EUNAVAIL, "adding to the allowlist: Redis connection unusable (%s)",
				rc->errstr);
	}

	out = calloc(n, sizeof(*out));
	idx = calloc(n, sizeof(*idx));
	if(!out || !idx){
		ret = onb_fail(err, ONB_EINTERNAL, "out of memory");
		goto cleanup;
	}
	for(size_t i = 0; i < n; i++) idx[i] = i;
	snprintf(now, sizeof(now), "%lld", (long long)onb_now_ms());

	ret = allow_pass(rc, entries, idx, &m, now, out, err);
	if(ret == ONB_OK && m > 0){
		/* the server had not cached the script (restart, SCRIPT FLUSH):
		 * load it once and send what was not run */
		ret = allow_load(rc, err);
		if(ret == ONB_OK) ret = allow_pass(rc, entries, idx, &m, now, out, err);
		if(ret == ONB_OK && m > 0){
			ret = onb_fail(err, ONB_EUNAVAIL, "adding to the allowlist: the script cache keeps being flushed");
		}
	}
	if(ret != ONB_OK) goto cleanup;

	for(size_t i = 0; i < n; i++){
		if(out[i] == ONB_ALLOW_ADDED) added++;
	}
	ret = audit_batch(rc, entries, n, added, actor, err);
	if(ret != ONB_OK) goto cleanup;
	memcpy(results, out, n * sizeof(*out));

cleanup:
	free(out);
	free(idx);
	return ret;
}

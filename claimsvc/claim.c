/* Claim-code redemption for tenant back-ends (docs/claiming.md, section 8):
 * one request envelope from onb/internal/claim/request in, one reply
 * envelope out. The tenant is the one the broker verified, never the
 * payload's; lib/claimreg.c does the atomic redemption and its audit. */
#include "claimsvc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "onb/claimcode.h"
#include "onb/claimreg.h"
#include "onb/envelope.h"
#include "onb/provision.h"

#define CLIENT_TOKEN_MAX 64

struct claim_reply {
	int status;                /* 0: accepted */
	const char *code;
	char msg[ONB_ERRLEN];
	struct onb_claim_result res;
	char client_token[CLIENT_TOKEN_MAX + 1];
	bool audited;              /* onb_claim_redeem wrote the refusal's audit entry */
};

static void refuse(struct claim_reply *r, int status, const char *code, const char *msg)
{
	r->status = status;
	r->code = code;
	snprintf(r->msg, sizeof(r->msg), "%s", msg);
}

/* {"claimCode": "...", "clientToken": "..."}; anything else is refused. */
static bool parse_request(const char *payload, char *code, size_t codelen, struct claim_reply *r)
{
	cJSON *root = payload ? cJSON_Parse(payload) : NULL;
	bool ok = false;

	if(!cJSON_IsObject(root)){
		refuse(r, 400, "InvalidRequest", "the request is not a JSON object");
		goto cleanup;
	}
	for(const cJSON *c = root->child; c; c = c->next){
		if(!c->string || (strcmp(c->string, "claimCode") && strcmp(c->string, "clientToken"))){
			refuse(r, 400, "InvalidRequest", "unknown field in the request (the tenant comes from the certificate)");
			goto cleanup;
		}
	}
	const char *tok = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "clientToken"));
	if(tok){
		if(strlen(tok) > CLIENT_TOKEN_MAX){
			refuse(r, 400, "InvalidRequest", "clientToken is longer than 64 bytes");
			goto cleanup;
		}
		snprintf(r->client_token, sizeof(r->client_token), "%s", tok);
	}
	const char *cc = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "claimCode"));
	if(!cc || strlen(cc) >= codelen){
		refuse(r, 400, "InvalidRequest", "claimCode is missing or too long");
		goto cleanup;
	}
	memcpy(code, cc, strlen(cc) + 1);
	ok = true;
cleanup:
	cJSON_Delete(root);
	return ok;
}

/* ------------------------------------------------ refusals and lockouts */

static void write_refusal(const struct onb_audit_entry *e, void *arg)
{
	struct csvc *s = arg;
	redisContext *rc = csvc_redis(s);
	struct onb_err err;

	if(!rc || onb_audit_append(rc, e, &err) != ONB_OK){
		csvc_log(CSVC_WARNING, "not audited (registry unavailable): claim refused: %s", e->reason);
	}
}

int csvc_claim_init(struct csvc *s)
{
	onb_audit_set_retention_days(s->cfg.audit_retention_days);
	s->claim_refusals = onb_audit_agg_new(1024, (int64_t)s->cfg.audit_window_s * 1000, write_refusal, s);
	return s->claim_refusals ? ONB_OK : ONB_EINTERNAL;
}

void csvc_claim_free(struct csvc *s)
{
	onb_audit_agg_free(s->claim_refusals);
	s->claim_refusals = NULL;
}

void csvc_claim_tick(struct csvc *s)
{
	if(s->claim_refusals) onb_audit_agg_tick(s->claim_refusals, onb_now_ms());
}

/* A lockout the registry reported, remembered until it ends: the claims a
 * locked-out back-end keeps sending are refused here, without a Redis round
 * trip or a write each (they are audited aggregated). The registry stays the
 * authority: a lockout lifted early by an operator (claim unlock) is seen
 * at the latest when the remembered one ends. */
static struct csvc_lockout *lockout_slot(struct csvc *s, const char *key)
{
	return &s->lockouts[onb_hash_str(key) % (sizeof(s->lockouts) / sizeof(s->lockouts[0]))];
}

static void lockout_key(char *key, size_t size, const char *tenant, const char *scope, const char *source)
{
	snprintf(key, size, "%.128s|%.120s", tenant, !strcmp(scope, "tenant") ? "" : source);
}

static int64_t locked_for_ms(struct csvc *s, const char *tenant, const char *source)
{
	char key[sizeof(s->lockouts[0].key)];
	int64_t now = onb_mono_ms();

	for(int i = 0; i < 2; i++){
		struct csvc_lockout *l;
		lockout_key(key, sizeof(key), tenant, i == 0 ? "tenant" : "source", source);
		l = lockout_slot(s, key);
		if(!strcmp(l->key, key) && l->until_ms > now) return l->until_ms - now;
	}
	return 0;
}

static void remember_lockout(struct csvc *s, const char *tenant, const char *scope, const char *source,
		int64_t left_ms)
{
	char key[sizeof(s->lockouts[0].key)];
	struct csvc_lockout *l;

	lockout_key(key, sizeof(key), tenant, scope, source);
	l = lockout_slot(s, key);
	snprintf(l->key, sizeof(l->key), "%s", key);
	l->until_ms = onb_mono_ms() + left_ms;
}

static void redeem(struct csvc *s, const struct onb_prov_envelope *env, struct claim_reply *r)
{
	char text[512], canon[ONB_CC_SYMBOLS + 1], device[ONB_ID_MAX + 1], source[ONB_PROV_ADDRESS_MAX + ONB_ID_MAX + 8];
	struct onb_actor actor = { .who = s->actor, .source = env->address[0] ? env->address : NULL };
	struct onb_claim_req req;
	struct onb_err err;
	redisContext *rc;
	int64_t left;
	int ret;

	if(strcmp(env->idclass, "service") != 0 || !env->tenant[0]){
		refuse(r, 403, "AccessDenied", "only a tenant's back-end may claim devices");
		return;
	}
	if(!parse_request(env->payload, text, sizeof(text), r)) return;
	if(onb_claimcode_input(text, device, canon, &err) != ONB_OK){
		refuse(r, 400, "InvalidRequest", err.msg); /* a typo, caught by the check symbol */
		return;
	}
	snprintf(source, sizeof(source), "mqtt:%s", env->address[0] ? env->address : env->client_id);
	if((left = locked_for_ms(s, env->tenant, source)) > 0){
		snprintf(text, sizeof(text), "too many failed claim attempts: try again in %lld s",
				(long long)((left + 999) / 1000));
		refuse(r, 429, "TooManyAttempts", text);
		return;
	}
	req = (struct onb_claim_req){
		.code = canon, .device = device, .tenant = env->tenant, .source = source, .limits = &s->claim_limits,
	};
	if(!(rc = csvc_redis(s))){
		refuse(r, 503, "ServiceUnavailable", "the registry is unavailable; retry later");
		return;
	}
	ret = onb_claim_redeem(rc, &req, &actor, &r->res, &err);
	if(ret == ONB_OK) return;
	if(ret != ONB_EREFUSED){
		/* csvc_redis replaces a connection that failed on its next use */
		csvc_log(CSVC_WARNING, "claim for %s: %s", env->tenant, err.msg);
		refuse(r, 503, "ServiceUnavailable", "the registry is unavailable; retry later");
		return;
	}
	r->audited = true;
	if(!strcmp(r->res.reason, ONB_CLAIM_LOCKED)){
		remember_lockout(s, env->tenant, r->res.detail, source, r->res.retry_after_ms);
		refuse(r, 429, "TooManyAttempts", err.msg);
	}
	else if(!strcmp(r->res.reason, ONB_CLAIM_NOT_CLAIMABLE)) refuse(r, 409, "NotClaimable", err.msg);
	else refuse(r, 403, "InvalidCode", err.msg);
}

static char *document(const struct claim_reply *r)
{
	cJSON *doc = cJSON_CreateObject();
	char *text = NULL;

	if(!doc) return NULL;
	if(r->status == 0){
		cJSON_AddStringToObject(doc, "deviceId", r->res.device);
		cJSON_AddStringToObject(doc, "tenantId", r->res.tenant);
		cJSON_AddStringToObject(doc, "state", onb_state_name(r->res.state));
	}else{
		cJSON_AddNumberToObject(doc, "statusCode", r->status);
		cJSON_AddStringToObject(doc, "errorCode", r->code);
		cJSON_AddStringToObject(doc, "errorMessage", r->msg);
	}
	if(r->client_token[0]) cJSON_AddStringToObject(doc, "clientToken", r->client_token);
	text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	return text;
}

char *csvc_handle_claim(struct csvc *s, const void *buf, size_t len)
{
	struct onb_prov_envelope env;
	struct claim_reply r;
	struct onb_err err;
	char *doc, *reply = NULL;

	memset(&r, 0, sizeof(r));
	if(onb_prov_envelope_decode(buf, len, &env, &err) != ONB_OK){
		csvc_log(CSVC_WARNING, "dropping a claim envelope: %s", err.msg);
		csvc_metrics_count(s, CSVC_ACT_CLAIM, CSVC_RES_DROPPED);
		return NULL;
	}
	if(strcmp(env.topic, ONB_TOPIC_CLAIM) != 0){
		csvc_log(CSVC_WARNING, "dropping a claim envelope for topic %s", env.topic);
		csvc_metrics_count(s, CSVC_ACT_CLAIM, CSVC_RES_DROPPED);
		onb_prov_envelope_clear(&env);
		return NULL;
	}
	if(env.refused != ONB_REFUSAL_NONE){
		/* the broker refused the payload and sent only its size */
		char msg[ONB_ERRLEN];
		bool large = !strcmp(onb_prov_refusal_error(&env, msg, sizeof(msg)), ONB_PE_PAYLOAD_TOO_LARGE);
		refuse(&r, large ? 413 : 400, large ? "PayloadTooLarge" : "InvalidRequest", msg);
	}else{
		redeem(s, &env, &r);
	}
	if(r.status && !r.audited){
		/* Refused before the registry looked at the code: audit it here. */
		char reason[ONB_ERRLEN + 600];
		struct onb_audit_entry e = {
			.actor = s->actor, .source = env.address[0] ? env.address : NULL, .action = ONB_AA(CLAIM),
			.result = r.status >= 500 ? "error" : "refused", .reason = reason,
		};
		char kind[ONB_AUDITAGG_KEY_MAX];
		snprintf(reason, sizeof(reason), "%s: %.200s (requester %s %s tenant %s)", r.code, r.msg,
				env.idclass, env.client_id, env.tenant[0] ? env.tenant : "-");
		/* a flood of bad claims costs its sender, not the audit trail */
		snprintf(kind, sizeof(kind), "%.80s|%.80s|%.60s|%.24s", env.tenant, env.client_id, env.address, r.code);
		e.client = env.client_id;
		e.idclass = env.idclass;
		e.fp = env.fp[0] ? env.fp : NULL;
		onb_audit_agg_note(s->claim_refusals, kind, &e, onb_now_ms());
	}
	if(r.status){
		csvc_metrics_count(s, CSVC_ACT_CLAIM, CSVC_RES_REJECTED);
		csvc_metrics_reject(s, r.code);
		csvc_log(CSVC_INFO, "claim from %s (tenant %s) rejected: %d %s: %s", env.client_id,
				env.tenant[0] ? env.tenant : "-", r.status, r.code, r.msg);
	}else{
		csvc_metrics_count(s, CSVC_ACT_CLAIM, CSVC_RES_ACCEPTED);
		csvc_log(CSVC_INFO, "claim from %s: %s is now active for tenant %s", env.client_id,
				r.res.device, r.res.tenant);
	}
	doc = document(&r);
	if(doc){
		reply = onb_prov_reply_encode(env.client_id, r.status ? ONB_TOPIC_CLAIM "/rejected"
				: ONB_TOPIC_CLAIM "/accepted", doc, &err);
		if(!reply) csvc_log(CSVC_ERROR, "cannot build the claim reply: %s", err.msg);
		cJSON_free(doc);
	}
	onb_prov_envelope_clear(&env);
	return reply;
}

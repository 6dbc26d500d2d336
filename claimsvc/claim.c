/* Claim-code redemption for tenant back-ends (docs/claiming.md, section 8):
 * one request envelope from onb/internal/claim/request in, one reply
 * envelope out. The tenant is the one the broker verified, never the
 * payload's; lib/claim/claimreg.c does the atomic redemption and its audit. */
#include "claimsvc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "identity/authority.h"
#include "claim/claimcode.h"
#include "provisioning/claimwire.h"
#include "claim/claimreg.h"
#include "provisioning/envelope.h"
#include "provisioning/provision.h"

struct claim_reply {
	enum onb_claim_error error; /* ONB_CLE_NONE: accepted */
	char msg[ONB_ERRLEN];
	struct onb_claim_result res;
	struct onb_claim_request req;
	bool audited;               /* onb_claim_redeem wrote the refusal's audit entry */
};

static void refuse(struct claim_reply *r, enum onb_claim_error e, const char *msg)
{
	r->error = e;
	snprintf(r->msg, sizeof(r->msg), "%s", msg);
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
	char text[96], canon[ONB_CC_SYMBOLS + 1], device[ONB_ID_MAX + 1], source[ONB_PROV_ADDRESS_MAX + ONB_ID_MAX + 8];
	struct onb_actor actor = { .who = s->actor, .source = env->address[0] ? env->address : NULL };
	struct onb_claim_req req;
	struct onb_rule rule;
	struct onb_err err;
	redisContext *rc;
	int64_t left;
	int ret;

	rule = onb_authority(onb_role_of(onb_idclass_parse(env->idclass), env->tenant), ONB_DO_SERVE, ONB_TK_CLAIM);
	if(rule.verdict != ONB_V_TAKE){
		refuse(r, ONB_CLE_ACCESS_DENIED, rule.why ? rule.why : "access denied");
		return;
	}
	if(onb_claim_request_parse(env->payload, env->payload ? strlen(env->payload) : 0, &r->req, &err) != ONB_OK){
		refuse(r, ONB_CLE_INVALID_REQUEST, err.msg);
		return;
	}
	if(onb_claimcode_input(r->req.code, device, canon, &err) != ONB_OK){
		refuse(r, ONB_CLE_INVALID_REQUEST, err.msg); /* a typo, caught by the check symbol */
		return;
	}
	snprintf(source, sizeof(source), "mqtt:%s", env->address[0] ? env->address : env->client_id);
	if((left = locked_for_ms(s, env->tenant, source)) > 0){
		snprintf(text, sizeof(text), "too many failed claim attempts: try again in %lld s",
				(long long)((left + 999) / 1000));
		refuse(r, ONB_CLE_TOO_MANY_ATTEMPTS, text);
		return;
	}
	req = (struct onb_claim_req){
		.code = canon, .device = device, .tenant = env->tenant, .source = source, .limits = &s->claim_limits,
	};
	if(!(rc = csvc_redis(s))){
		refuse(r, ONB_CLE_UNAVAILABLE, "the registry is unavailable; retry later");
		return;
	}
	ret = onb_claim_redeem(rc, &req, &actor, &r->res, &err);
	if(ret == ONB_OK) return;
	if(ret != ONB_EREFUSED){
		/* csvc_redis replaces a connection that failed on its next use */
		csvc_log(CSVC_WARNING, "claim for %s: %s", env->tenant, err.msg);
		refuse(r, ONB_CLE_UNAVAILABLE, "the registry is unavailable; retry later");
		return;
	}
	r->audited = true;
	refuse(r, onb_claim_reason_error(r->res.reason), err.msg);
	if(r->error == ONB_CLE_TOO_MANY_ATTEMPTS) remember_lockout(s, env->tenant, r->res.detail, source, r->res.retry_after_ms);
}

char *csvc_handle_claim(struct csvc *s, const void *buf, size_t len)
{
	struct onb_prov_envelope env;
	struct claim_reply r;
	struct onb_err err;
	char *doc, *reply = NULL;
	const char *code;
	int status;

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
		onb_prov_refusal_error(&env, msg, sizeof(msg));
		refuse(&r, env.refused == ONB_REFUSAL_TOO_LARGE ? ONB_CLE_PAYLOAD_TOO_LARGE : ONB_CLE_INVALID_REQUEST, msg);
	}else{
		redeem(s, &env, &r);
	}
	code = onb_claim_error_code(r.error);
	status = onb_claim_error_status(r.error);
	if(r.error && !r.audited){
		/* Refused before the registry looked at the code: audit it here. */
		char reason[ONB_ERRLEN + 600];
		struct onb_audit_entry e = {
			.actor = s->actor, .source = env.address[0] ? env.address : NULL, .action = ONB_AA(CLAIM),
			.result = status >= 500 ? "error" : "refused", .reason = reason,
		};
		char kind[ONB_AUDITAGG_KEY_MAX];
		snprintf(reason, sizeof(reason), "%s: %.200s (requester %s %s tenant %s)", code, r.msg,
				env.idclass, env.client_id, env.tenant[0] ? env.tenant : "-");
		/* a flood of bad claims costs its sender, not the audit trail */
		snprintf(kind, sizeof(kind), "%.80s|%.80s|%.60s|%.24s", env.tenant, env.client_id, env.address, code);
		e.client = env.client_id;
		e.idclass = env.idclass;
		e.fp = env.fp[0] ? env.fp : NULL;
		onb_audit_agg_note(s->claim_refusals, kind, &e, onb_now_ms());
	}
	if(r.error){
		csvc_metrics_count(s, CSVC_ACT_CLAIM, CSVC_RES_REJECTED);
		csvc_metrics_reject(s, code);
		csvc_log(CSVC_INFO, "claim from %s (tenant %s) rejected: %d %s: %s", env.client_id,
				env.tenant[0] ? env.tenant : "-", status, code, r.msg);
	}else{
		csvc_metrics_count(s, CSVC_ACT_CLAIM, CSVC_RES_ACCEPTED);
		csvc_log(CSVC_INFO, "claim from %s: %s is now active for tenant %s", env.client_id,
				r.res.device, r.res.tenant);
	}
	doc = r.error ? onb_claim_rejected(r.error, r.msg, r.req.client_token)
		: onb_claim_accepted(r.res.device, r.res.tenant, r.res.state, r.req.client_token);
	if(doc){
		reply = onb_prov_reply_encode(env.client_id, r.error ? ONB_TOPIC_CLAIM "/rejected"
				: ONB_TOPIC_CLAIM "/accepted", doc, &err);
		if(!reply) csvc_log(CSVC_ERROR, "cannot build the claim reply: %s", err.msg);
		cJSON_free(doc);
	}
	onb_prov_envelope_clear(&env);
	return reply;
}

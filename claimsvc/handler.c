/* claimsvc request handling: one request envelope in, one reply envelope out
 * (docs/provisioning.md, docs/internal-topics.md). Every rejection gets a
 * stable errorCode and is audited; nothing is written to the registry for a
 * request that is refused before its registry step. */
#include "claimsvc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "identity/authority.h"
#include "pki/csr.h"
#include "registry/lifecycle.h"
#include "pki/pkcs11.h"
#include "provisioning/provcodec.h"
#include "provisioning/provision.h"
#include "provisioning/provreg.h"
#include "tokencache.h"
#include "registry/registry.h"


/* One request on its way through the handler. */
struct request {
	struct csvc *s;
	struct onb_prov_envelope env;
	struct onb_prov_topic topic;
	const struct onb_prov_codec *codec; /* the format of the request topic, and of the reply */
	const char *action;            /* audit action */
	char device[ONB_ID_MAX + 1];   /* thing name, once known */
	const char *code;              /* errorCode when rejected */
	char msg[ONB_ERRLEN];          /* errorMessage when rejected */
	bool audited;                  /* the rejection is already in the audit stream */
	struct onb_prov_doc doc;       /* the accepted document (owned), then the reply */
};

_Static_assert((int)CSVC_ACT_CREATE_FROM_CSR == (int)ONB_PROV_CREATE_FROM_CSR
		&& (int)CSVC_ACT_CREATE_KEYS == (int)ONB_PROV_CREATE_KEYS
		&& (int)CSVC_ACT_REGISTER_THING == (int)ONB_PROV_REGISTER_THING
		&& (int)CSVC_ACT_RENEW == (int)ONB_PROV_RENEW, "enum csvc_action starts with onb_prov_kind");

static void reject(struct request *rq, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reject(struct request *rq, const char *code, const char *fmt, ...)
{
	va_list ap;

	rq->code = code;
	va_start(ap, fmt);
	vsnprintf(rq->msg, sizeof(rq->msg), fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ audit */

#define AUDIT_REASON_MAX 768

/* The audit entry of rq with result and what; e borrows reason (of
 * AUDIT_REASON_MAX bytes) and rq's strings. */
static void audit_entry(const struct request *rq, const char *result, const char *what,
		char *reason, struct onb_audit_entry *e)
{
	snprintf(reason, AUDIT_REASON_MAX, "%s (requester %s %s %s)", what, rq->env.idclass,
			rq->env.client_id, rq->env.fp);
	*e = (struct onb_audit_entry){
		.actor = rq->s->actor,
		.source = rq->env.address[0] ? rq->env.address : NULL,
		.action = rq->action,
		.device = rq->device[0] ? rq->device : NULL,
		.result = result,
		.reason = reason,
	};
}

static void audit(struct request *rq, const char *result, const char *what)
{
	struct csvc *s = rq->s;
	char reason[AUDIT_REASON_MAX];
	struct onb_audit_entry e;
	struct onb_err err;
	redisContext *rc;

	audit_entry(rq, result, what, reason, &e);
	rc = csvc_redis(s);
	if(!rc || onb_audit_append(rc, &e, &err) != ONB_OK){
		csvc_log(CSVC_WARNING, "not audited (registry unavailable): %s %s %s", rq->action, result, reason);
	}
	csvc_redis_settle(s, false);
}

/* ---------------------------------------------------------------- issuing */

/* False (with the rejection set and audited) when the certificate just
 * issued would not pass the broker's TLS: checked strictly, under the CAs
 * claimsvc trusts, before anything about it is written to the registry. A
 * device whose certificate the broker refuses, once registered, could never
 * connect nor register again (DeviceAlreadyProvisioned). */
static bool issued_usable(struct request *rq, const struct onb_issued *iss)
{
	struct onb_err err;
	char what[ONB_ERRLEN + 128];
	int verr = 0, depth = -1, ret = onb_issued_verify(iss, rq->s->trust, &verr, &depth, &err);

	if(ret == ONB_OK) return true;
	csvc_log(CSVC_ERROR, "%s from %s %s: certificate %s not handed out: %s", rq->action, rq->env.idclass,
			rq->env.client_id, iss->cert_id, err.msg);
	if(ret == ONB_EREFUSED && verr == X509_V_ERR_EC_KEY_EXPLICIT_PARAMS && depth == 0){
		/* the key's fault (onb_csr_parse refuses these already) */
		reject(rq, ONB_CSR_E_KEY_TYPE, "EC key with explicit curve parameters is not supported: "
				"the key must name its curve (P-256 or P-384)");
		return false;
	}
	/* ours: the device CA or the trusted CAs; the details stay in the log
	 * and the audit stream */
	reject(rq, ONB_PE_INTERNAL, "the certificate could not be issued");
	snprintf(what, sizeof(what), "%s: certificate %s not handed out: %s", rq->code, iss->cert_id, err.msg);
	audit(rq, "error", what);
	rq->audited = true;
	return false;
}

/* certificatePem as configured (a new string to free()): the certificate
 * alone, so that the whole answer fits a constrained device's 2 KiB buffer
 * (the broker's cafile holds the device CA), or with reply_chain the
 * certificate and the device CA, as iss->chain_pem holds them. */
static char *reply_pem(const struct csvc *s, const struct onb_issued *iss)
{
	static const char end[] = "-----END CERTIFICATE-----";
	const char *e = s->cfg.reply_chain ? NULL : strstr(iss->chain_pem, end);
	size_t n = e ? (size_t)(e - iss->chain_pem) + sizeof(end) - 1 : strlen(iss->chain_pem);
	char *pem = malloc(n + 2);

	if(!pem) return NULL;
	memcpy(pem, iss->chain_pem, n);
	/* the certificate's own line break, when cut from the chain */
	if(e && iss->chain_pem[n] == '\n') pem[n++] = '\n';
	pem[n] = '\0';
	return pem;
}

/* Rejects rq after a registry call failed other than by a refusal: retry
 * later when the registry is unreachable, else an internal error (internal
 * is the requester's message; what names the call in the log). */
static void reject_registry(struct request *rq, int ret, const char *what, const struct onb_err *err,
		const char *internal)
{
	if(ret == ONB_EUNAVAIL){
		csvc_log(CSVC_WARNING, "%s: %s", what, err->msg);
		reject(rq, ONB_PE_UNAVAILABLE, "the registry is unavailable; retry later");
	}else{
		csvc_log(CSVC_ERROR, "%s: %s", what, err->msg);
		reject(rq, ONB_PE_INTERNAL, "%s", internal);
	}
}

/* Signs a certificate for key with subject CN=cn into *iss and checks it:
 * the registry connection to record it on, or NULL when rq was rejected. */
static redisContext *sign(struct request *rq, EVP_PKEY *key, const char *cn, struct onb_issued *iss)
{
	struct csvc *s = rq->s;
	struct onb_err err;
	redisContext *rc;

	if(onb_csr_issue(key, cn, s->cfg.cert_validity_days, s->ca, s->ca_key, iss, &err) != ONB_OK){
		csvc_log(CSVC_ERROR, "signing failed: %s", err.msg);
		reject(rq, ONB_PE_INTERNAL, "the certificate could not be issued");
		return NULL;
	}
	if(!issued_usable(rq, iss)) return NULL;
	if(!(rc = csvc_redis(s))) reject(rq, ONB_PE_UNAVAILABLE, "the registry is unavailable; retry later");
	return rc;
}

/* Signs a certificate for subject_key with subject CN=cn (the SHA-256 of
 * the public key: never the CSR's subject), records its ownership token,
 * and builds the accepted document (with the private key when with_key). */
static void issue(struct request *rq, EVP_PKEY *subject_key, const char *cn, bool with_key)
{
	struct csvc *s = rq->s;
	struct onb_requester who = { rq->env.client_id, rq->env.idclass, rq->env.fp };
	struct onb_issued iss;
	struct onb_err err;
	char token[ONB_TOKEN_HEXLEN + 1] = "", what[256], reason[AUDIT_REASON_MAX];
	char *key_pem = NULL, *pem = NULL;
	struct onb_audit_entry issued;
	redisContext *rc;
	int ret;

	memset(&iss, 0, sizeof(iss));
	if(!(rc = sign(rq, subject_key, cn, &iss))) goto cleanup;
	/* "issued" is audited by the script that records the token, in the same
	 * round trip: the entry says the certificate was issued and recorded,
	 * which stays true if building the reply fails below (that failure is
	 * audited too, as an error). */
	snprintf(what, sizeof(what), "certificate %s serial %s issued", iss.cert_id, iss.serial);
	audit_entry(rq, "ok", what, reason, &issued);
	ret = onb_token_issue_audited(rc, iss.cert_id, iss.serial, iss.not_after, &who, s->cfg.token_ttl,
			&issued, token, &err);
	csvc_redis_settle(s, false);
	if(ret == ONB_OK){
		char ref[ONB_FP_HEXLEN + 1];
		if(onb_token_ref(token, ref, &err) == ONB_OK){
			csvc_token_cache_put(ref, iss.cert_id, onb_now_ms() + (int64_t)s->cfg.token_ttl * 1000);
		}
	}
	if(ret != ONB_OK){
		reject_registry(rq, ret, "recording the ownership token", &err, "the certificate could not be recorded");
		goto cleanup;
	}
	if(with_key && !(key_pem = onb_key_pem(subject_key, &err))){
		csvc_log(CSVC_ERROR, "%s", err.msg);
		reject(rq, ONB_PE_INTERNAL, "the private key could not be encoded");
		goto cleanup;
	}
	if(!(pem = reply_pem(rq->s, &iss))){
		reject(rq, ONB_PE_INTERNAL, "out of memory");
		goto cleanup;
	}
	if(rq->codec->cert_accepted(iss.cert_id, pem, key_pem, token, &rq->doc, &err) != ONB_OK){
		csvc_log(CSVC_ERROR, "%s", err.msg);
		reject(rq, ONB_PE_INTERNAL, "the reply could not be built");
		goto cleanup;
	}
cleanup:
	OPENSSL_cleanse(token, sizeof(token));
	onb_key_pem_free(key_pem);
	free(pem);
	onb_issued_clear(&iss);
}

static void handle_csr(struct request *rq)
{
	struct onb_err err;
	const char *code = ONB_PE_INVALID_PAYLOAD;
	char *pem = NULL, cn[ONB_FP_HEXLEN + 1];
	size_t pem_len = 0;
	X509_REQ *req = NULL;

	if(rq->codec->csr_request(rq->env.payload, rq->env.payload_len, &pem, &pem_len, &code, &err) != ONB_OK){
		reject(rq, code, "%s", err.msg);
		return;
	}
	if(onb_csr_parse(pem, pem_len, &req, &code, &err) != ONB_OK){
		reject(rq, code, "%s", err.msg);
	}else if(onb_csr_key_fingerprint(req, cn, &err) != ONB_OK){
		csvc_log(CSVC_ERROR, "%s", err.msg);
		reject(rq, ONB_PE_INTERNAL, "the certificate could not be issued");
	}else{
		issue(rq, X509_REQ_get0_pubkey(req), cn, false);
	}
	X509_REQ_free(req);
	free(pem);
}

static void handle_keys(struct request *rq)
{
	struct onb_err err;
	const char *code = ONB_PE_INVALID_PAYLOAD;
	char cn[ONB_FP_HEXLEN + 1];
	EVP_PKEY *key;

	if(!rq->s->cfg.create_keys_enabled){
		reject(rq, ONB_PE_CREATE_DISABLED, "CreateKeysAndCertificate is disabled on this service; "
				"generate a key on the device and use create-from-csr");
		return;
	}
	if(rq->codec->keys_request(rq->env.payload, rq->env.payload_len, &code, &err) != ONB_OK){
		reject(rq, code, "%s", err.msg);
		return;
	}
	key = onb_key_generate(&err);
	if(!key || onb_pubkey_fingerprint(key, cn, &err) != ONB_OK){
		csvc_log(CSVC_ERROR, "%s", err.msg);
		reject(rq, ONB_PE_INTERNAL, "the key could not be generated");
		EVP_PKEY_free(key);
		return;
	}
	issue(rq, key, cn, true);
	EVP_PKEY_free(key);
}

/* devices/<id>/certificates/renew: a registered device with its current
 * operational certificate asks for a new one (docs/provisioning.md,
 * "Certificate rotation"). No token: the device is already registered; the
 * new certificate becomes its cert_fp_next in one script. */
static void handle_renew(struct request *rq)
{
	struct csvc *s = rq->s;
	struct onb_actor actor = { s->actor, rq->env.address[0] ? rq->env.address : NULL };
	const char *code = ONB_PE_INVALID_PAYLOAD, *reason = NULL, *cn;
	char *pem = NULL, *new_pem = NULL, *doc, keyfp[ONB_FP_HEXLEN + 1];
	struct onb_renewal ren;
	struct onb_issued iss;
	struct onb_err err;
	X509_REQ *req = NULL;
	int64_t deadline = 0;
	size_t pem_len = 0;
	redisContext *rc;
	int ret;

	memset(&iss, 0, sizeof(iss));
	memcpy(rq->device, rq->topic.device_id, sizeof(rq->device));
	if(onb_prov_csr_request_parse(rq->env.payload, rq->env.payload_len, &pem, &pem_len, &code, &err) != ONB_OK
			|| onb_csr_parse(pem, pem_len, &req, &code, &err) != ONB_OK){
		reject(rq, code, "%s", err.msg);
		goto cleanup;
	}
	/* The device is known now: CN = its id (a key hash when the id is longer
	 * than an X.509 CN may be). Identity still comes from the binding. */
	cn = rq->device;
	if(!onb_cert_cn_valid(cn)){
		if(onb_csr_key_fingerprint(req, keyfp, &err) != ONB_OK){
			csvc_log(CSVC_ERROR, "%s", err.msg);
			reject(rq, ONB_PE_INTERNAL, "the certificate could not be issued");
			goto cleanup;
		}
		cn = keyfp;
	}
	if(!(rc = sign(rq, X509_REQ_get0_pubkey(req), cn, &iss))) goto cleanup;
	ren = (struct onb_renewal){
		.device_id = rq->device, .requester_fp = rq->env.fp, .cert_fp = iss.cert_id,
		.cert_serial = iss.serial, .not_after = iss.not_after,
		.grace_ms = (int64_t)s->cfg.rotation_grace * 1000,
	};
	ret = onb_rotation_record(rc, &ren, &actor, &deadline, &reason, &err);
	csvc_redis_settle(s, false);
	if(ret == ONB_OK){
		/* renewals are JSON only (the topic is ours, not AWS's) */
		if(!(new_pem = reply_pem(s, &iss)) || !(doc = onb_prov_renew_accepted(iss.cert_id, new_pem, deadline, &err))){
			csvc_log(CSVC_ERROR, "%s", new_pem ? err.msg : "out of memory");
			reject(rq, ONB_PE_INTERNAL, "the reply could not be built");
		}else{
			rq->doc = (struct onb_prov_doc){ .data = (unsigned char *)doc, .len = strlen(doc), .format = ONB_PROV_JSON };
			s->metrics.renewed++;
		}
	}else if(ret == ONB_ENOTFOUND || ret == ONB_EREFUSED){
		reject(rq, onb_prov_reason_error(reason, ONB_PE_NOT_RENEWABLE), "%s", err.msg);
		rq->audited = true; /* the script audits its refusals */
	}else{
		reject_registry(rq, ret, "renewal", &err, "the renewal could not be recorded");
	}
cleanup:
	free(new_pem);
	onb_issued_clear(&iss);
	X509_REQ_free(req);
	free(pem);
}

static void handle_register(struct request *rq)
{
	struct csvc *s = rq->s;
	const char *name = rq->topic.template_name, *code = ONB_PE_INVALID_PAYLOAD, *reason = NULL;
	const struct onb_template *t;
	struct onb_prov_register_req *req = NULL;
	struct onb_template_result res;
	struct onb_requester who = { rq->env.client_id, rq->env.idclass, rq->env.fp };
	struct onb_actor actor = { s->actor, rq->env.address[0] ? rq->env.address : NULL };
	struct onb_register_thing rt;
	struct onb_err err;
	char *canonical = NULL, ref[ONB_FP_HEXLEN + 1], fp_hint[ONB_FP_HEXLEN + 1];
	bool replay = false;
	redisContext *rc;
	int ret;

	if(!onb_prov_template_name_valid(name)){
		reject(rq, ONB_PE_INVALID_TEMPLATE, "template names match [0-9A-Za-z_-]{1,%d}",
				ONB_PROV_TEMPLATE_NAME_MAX);
		return;
	}
	t = onb_template_find(s->templates, name);
	if(!t){
		reject(rq, ONB_PE_NOT_FOUND, "no provisioning template named %s", name);
		return;
	}
	req = calloc(1, sizeof(*req));
	if(!req){
		reject(rq, ONB_PE_INTERNAL, "out of memory");
		return;
	}
	if(rq->codec->register_request(rq->env.payload, rq->env.payload_len, req, &code, &err) != ONB_OK){
		reject(rq, code, "%s", err.msg);
		goto cleanup;
	}
	if(onb_template_apply(t, req, &res, &err) != ONB_OK){
		reject(rq, ONB_PE_INVALID_PARAMS, "%s", err.msg);
		goto cleanup;
	}
	memcpy(rq->device, res.thing_name, sizeof(rq->device));
	if(!(canonical = onb_prov_register_canonical(name, req, &err))){
		reject(rq, ONB_PE_INTERNAL, "out of memory");
		goto cleanup;
	}
	rt = (struct onb_register_thing){
		.token = req->token,
		.requester = &who,
		.device_id = res.thing_name,
		.serial = res.serial[0] ? res.serial : NULL,
		.allowlist_required = t->allowlist_required,
		.policy = t->policy[0] ? t->policy : NULL,
		.state = t->state,
		.tenant = t->tenant[0] ? t->tenant : NULL,
		.request = canonical,
		.reprovision = t->reprovision,
		.template_name = name,
	};
	/* the certificate of a token this instance issued: no lookup round trip */
	if(onb_token_ref(req->token, ref, &err) == ONB_OK && csvc_token_cache_get(ref, onb_now_ms(), fp_hint)){
		rt.cert_fp_hint = fp_hint;
	}
	if(!(rc = csvc_redis(s))){
		reject(rq, ONB_PE_UNAVAILABLE, "the registry is unavailable; retry later");
		goto cleanup;
	}
	ret = onb_register_thing(rc, &rt, &actor, &replay, &reason, &err);
	csvc_redis_settle(s, false);
	if(ret == ONB_OK){
		/* A replay (the first answer was lost) gets the same answer: the
		 * thing name of the same request and the template's configuration. */
		if(replay){
			csvc_log(CSVC_INFO, "register-thing from %s %s: %s was already registered by this request; "
					"answered again", rq->env.idclass, rq->env.client_id, res.thing_name);
			s->metrics.register_replays++;
		}
		if(rq->codec->register_accepted(t->device_config, res.thing_name, &rq->doc, &err) != ONB_OK){
			csvc_log(CSVC_ERROR, "%s", err.msg);
			reject(rq, ONB_PE_INTERNAL, "the reply could not be built");
		}
	}else if(ret == ONB_EREFUSED){
		reject(rq, onb_prov_reason_error(reason, ONB_PE_INTERNAL), "%s", err.msg);
		rq->audited = true; /* onb_register_thing audits its refusals */
	}else if(ret == ONB_EINVAL){
		reject(rq, ONB_PE_INVALID_PARAMS, "%s", err.msg);
	}else{
		reject_registry(rq, ret, "RegisterThing", &err, "the thing could not be registered");
	}
cleanup:
	OPENSSL_cleanse(req->token, sizeof(req->token));
	free(req);
	cJSON_free(canonical);
}

/* ------------------------------------------------------------ admission */

/* False (with the rejection set) when the request may not proceed. */
static bool admit(struct request *rq)
{
	struct csvc *s = rq->s;
	struct onb_rule rule;
	struct onb_err err;
	enum csvc_rl verdict;
	bool first = false;
	redisContext *rc;

	/* The broker routes only what identity/authority.h lets it; checked again
	 * here, by the rules for claimsvc. */
	rule = onb_authority(onb_role_of(onb_idclass_parse(rq->env.idclass), rq->env.tenant), ONB_DO_SERVE,
			rq->topic.kind != ONB_PROV_RENEW ? ONB_TK_PROVISION
			: !strcmp(rq->env.client_id, rq->topic.device_id) ? ONB_TK_RENEW_OWN : ONB_TK_RENEW);
	if(rule.verdict != ONB_V_TAKE){
		reject(rq, ONB_PE_ACCESS_DENIED, "%s", rule.why ? rule.why : "access denied");
		return false;
	}
	/* The rate limit is each request's first Redis command: a connection
	 * that went stale while idle (Redis restarted) is replaced once here. */
	for(int attempt = 0; ; attempt++){
		if(!(rc = csvc_redis(s))){
			reject(rq, ONB_PE_UNAVAILABLE, "the registry is unavailable; retry later");
			return false;
		}
		if(csvc_ratelimit(rc, &s->cfg, rq->env.fp, rq->env.client_id, &verdict, &first, &err) == ONB_OK){
			break;
		}
		csvc_log(CSVC_WARNING, "%s", err.msg);
		csvc_redis_settle(s, true);
		if(attempt == 1){
			reject(rq, ONB_PE_UNAVAILABLE, "the registry is unavailable; retry later");
			return false;
		}
	}
	if(verdict != CSVC_RL_OK){
		reject(rq, ONB_PE_THROTTLED, "%s; retry later", verdict == CSVC_RL_CLIENT
				? "too many requests from this client" : verdict == CSVC_RL_REQUESTER
				? "too many requests with this certificate" : "the service is busy");
		rq->audited = !first; /* a flood is audited once per window */
		return false;
	}
	if(rq->env.refused != ONB_REFUSAL_NONE){
		/* The broker refused the payload and sent only its size: answered
		 * and audited here, after the rate limit, like any bad request. */
		char msg[ONB_ERRLEN];
		const char *code = onb_prov_refusal_error(&rq->env, msg, sizeof(msg));
		reject(rq, code, "%s", msg);
		return false;
	}
	return true;
}

/* --------------------------------------------------------------- entry */

char *csvc_handle(struct csvc *s, const void *buf, size_t len)
{
	struct request rq;
	struct onb_err err;
	char topic[ONB_PROV_TOPIC_MAX + 16];
	char *reply = NULL;
	bool accepted;

	memset(&rq, 0, sizeof(rq));
	rq.s = s;
	if(onb_prov_envelope_decode(buf, len, &rq.env, &err) != ONB_OK){
		csvc_log(CSVC_WARNING, "dropping a request envelope: %s", err.msg);
		csvc_metrics_count(s, CSVC_ACT_UNKNOWN, CSVC_RES_DROPPED);
		return NULL;
	}
	if(onb_prov_topic_parse(rq.env.topic, &rq.topic, &err) != ONB_OK){
		csvc_log(CSVC_WARNING, "dropping a request from %s: %s", rq.env.client_id, err.msg);
		csvc_metrics_count(s, CSVC_ACT_UNKNOWN, CSVC_RES_DROPPED);
		goto cleanup;
	}
	rq.action = csvc_action_name((enum csvc_action)rq.topic.kind);
	rq.codec = onb_prov_codec(rq.topic.format);
	if(admit(&rq)){
		switch(rq.topic.kind){
		case ONB_PROV_CREATE_FROM_CSR: handle_csr(&rq); break;
		case ONB_PROV_CREATE_KEYS: handle_keys(&rq); break;
		case ONB_PROV_REGISTER_THING: handle_register(&rq); break;
		case ONB_PROV_RENEW: handle_renew(&rq); break;
		}
	}
	accepted = rq.doc.data != NULL;
	if(!accepted){
		char what[ONB_ERRLEN + 64];
		int status;

		if(!rq.code) reject(&rq, ONB_PE_INTERNAL, "internal error");
		status = onb_prov_status(rq.code);
		csvc_log(!strcmp(rq.code, ONB_PE_THROTTLED) ? CSVC_DEBUG : CSVC_INFO, "%s from %s %s rejected: %d %s: %s",
				rq.action, rq.env.idclass, rq.env.client_id, status, rq.code, rq.msg);
		if(!rq.audited){
			snprintf(what, sizeof(what), "%s: %s", rq.code, rq.msg);
			audit(&rq, status >= 500 ? "error" : "refused", what);
		}
		rq.codec->rejected(rq.code, rq.msg, &rq.doc, &err);
		csvc_metrics_count(s, (enum csvc_action)rq.topic.kind, CSVC_RES_REJECTED);
		csvc_metrics_reject(s, rq.code);
	}else{
		csvc_log(CSVC_DEBUG, "%s from %s %s accepted%s%s", rq.action, rq.env.idclass, rq.env.client_id,
				rq.device[0] ? ": " : "", rq.device);
		csvc_metrics_count(s, (enum csvc_action)rq.topic.kind, CSVC_RES_ACCEPTED);
	}
	if(!rq.doc.data || onb_prov_reply_topic(rq.env.topic, accepted, topic, sizeof(topic), &err) != ONB_OK
			|| !(reply = onb_prov_doc_envelope(rq.env.client_id, topic, &rq.doc, &err))){
		csvc_log(CSVC_ERROR, "cannot build the reply to %s: %s", rq.env.client_id,
				rq.doc.data ? err.msg : "out of memory");
	}
cleanup:
	onb_prov_doc_clear(&rq.doc);
	onb_prov_envelope_clear(&rq.env);
	return reply;
}

/* ------------------------------------------------------------ lifecycle */

/* Issues one throwaway certificate (never recorded, never handed out) and
 * checks it as issued_usable checks each one: a device CA whose certificates
 * fail that check stops claimsvc at start instead of failing every device. */
static int self_test(struct csvc *s, struct onb_err *err)
{
	struct onb_issued iss;
	EVP_PKEY *key = onb_key_generate(err);
	int ret;

	memset(&iss, 0, sizeof(iss));
	if(!key) return ONB_EINTERNAL;
	ret = onb_csr_issue(key, "claimsvc self-test", 1, s->ca, s->ca_key, &iss, err);
	if(ret == ONB_OK) ret = onb_issued_verify(&iss, s->trust, NULL, NULL, err);
	onb_issued_clear(&iss);
	EVP_PKEY_free(key);
	return ret;
}

int csvc_init(struct csvc *s, const struct csvc_config *cfg, struct onb_err *err)
{
	int ret = ONB_EINVAL;
	X509 *own = NULL;
	EVP_PKEY *own_key = NULL;
	struct onb_err e2;

	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->metrics.started_ms = onb_now_ms();
	s->claim_limits = (struct onb_claim_limits){
		.max_failures = cfg->claim_max_failures,
		.window_ms = cfg->claim_window_ms,
		.lockout_ms = cfg->claim_lockout_ms,
	};
	/* The MQTT identity: readable now, so that a bad file fails --check. */
	if(!(own = onb_cert_load(cfg->certfile, &e2)) || !(own_key = onb_key_load(cfg->keyfile, &e2))){
		ret = onb_fail(err, ONB_EINVAL, "service certificate: %s", e2.msg);
		goto cleanup;
	}
	if(X509_check_private_key(own, own_key) != 1){
		ret = onb_fail(err, ONB_EINVAL, "keyfile %s does not match certfile %s", cfg->keyfile, cfg->certfile);
		goto cleanup;
	}
	if(!s->cfg.client_id[0]){
		if(onb_cert_subject_cn(own, s->cfg.client_id, sizeof(s->cfg.client_id), &e2) != ONB_OK
				|| !onb_id_valid(s->cfg.client_id)){
			s->cfg.client_id[0] = '\0';
			ret = onb_fail(err, ONB_EINVAL, "client_id is not set and the CN of %s is not a valid "
					"client id", cfg->certfile);
			goto cleanup;
		}
	}
	X509_free(own);
	own = onb_cert_load(cfg->cafile, &e2);
	if(!own){
		ret = onb_fail(err, ONB_EINVAL, "cafile: %s", e2.msg);
		goto cleanup;
	}
	snprintf(s->actor, sizeof(s->actor), "claimsvc:%s", s->cfg.client_id);
	/* The device CA: the key never leaves this process (or, given as a
	 * pkcs11: URI, never leaves its token). */
	s->ca_key_pkcs11 = onb_key_is_pkcs11(cfg->device_ca_key);
	if(!(s->ca = onb_cert_load(cfg->device_ca_cert, &e2))
			|| !(s->ca_key = onb_signing_key_load(cfg->device_ca_key, cfg->pkcs11_module, &e2))){
		ret = onb_fail(err, ONB_EINVAL, "device CA: %s", e2.msg);
		goto cleanup;
	}
	if(X509_check_private_key(s->ca, s->ca_key) != 1){
		ret = onb_fail(err, ONB_EINVAL, "device_ca_key does not match device_ca_cert%s",
				s->ca_key_pkcs11 ? " (the token must hold the public key object too)" : "");
		goto cleanup;
	}
	if(X509_check_ca(s->ca) == 0 || X509_cmp_time(X509_get0_notAfter(s->ca), NULL) <= 0){
		ret = onb_fail(err, ONB_EINVAL, "device_ca_cert is not a valid, unexpired CA certificate");
		goto cleanup;
	}
	/* What every issued certificate must verify under (issued_usable): the
	 * CAs of cafile (the shipped configuration names the broker's bundle)
	 * and the device CA, which anchors the chain if its root is not there. */
	if(!(s->trust = onb_trust_store_load(cfg->cafile, s->ca, &e2))){
		ret = onb_fail(err, ONB_EINVAL, "cafile: %s", e2.msg);
		goto cleanup;
	}
	if(self_test(s, &e2) != ONB_OK){
		ret = onb_fail(err, ONB_EINVAL, "device CA: %s", e2.msg);
		goto cleanup;
	}
	ret = onb_template_set_load(cfg->templates_dir, &s->templates, &e2);
	if(ret != ONB_OK){
		ret = onb_fail(err, ret, "templates: %s", e2.msg);
		goto cleanup;
	}
	ret = onb_redis_parse_url(cfg->redis_url, &s->redis_cfg, &e2);
	if(ret != ONB_OK){
		ret = onb_fail(err, ret, "redis_url: %s", e2.msg);
		goto cleanup;
	}
	s->redis_cfg.timeout_ms = cfg->redis_timeout_ms;
	ret = ONB_OK;
cleanup:
	ERR_clear_error();
	X509_free(own);
	EVP_PKEY_free(own_key);
	if(ret != ONB_OK) csvc_free(s);
	return ret;
}

int csvc_reload_templates(struct csvc *s, struct onb_err *err)
{
	struct onb_template_set *fresh = NULL;
	int ret = onb_template_set_load(s->cfg.templates_dir, &fresh, err);

	if(ret != ONB_OK) return ret;
	onb_template_set_free(s->templates);
	s->templates = fresh;
	return ONB_OK;
}

void csvc_free(struct csvc *s)
{
	X509_free(s->ca);
	EVP_PKEY_free(s->ca_key);
	X509_STORE_free(s->trust);
	if(s->ca_key_pkcs11) onb_pkcs11_shutdown();
	s->ca_key_pkcs11 = false;
	onb_template_set_free(s->templates);
	if(s->rc) redisFree(s->rc);
	s->ca = NULL;
	s->ca_key = NULL;
	s->trust = NULL;
	s->templates = NULL;
	s->rc = NULL;
}

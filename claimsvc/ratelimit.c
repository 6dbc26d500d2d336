/* Rate limits shared by every claimsvc instance: fixed-window counters in
 * Redis. Key onb:rl:<scope>:<id>:<window>, window = wall-clock ms / window
 * length (instances need roughly synchronised clocks). Each request does
 * INCR + PEXPIRE (two windows) per enabled scope, all pipelined. */
#include "claimsvc.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "pki/x509.h"

#define KEY_MAX 160

struct scope {
	enum csvc_rl which;
	long limit;
	char key[KEY_MAX];
};

/* SHA-256 of "fp/client_id" as hex: a client id never becomes part of a key. */
static int client_key_id(const char *fp, const char *client_id, char out[ONB_FP_HEXLEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1
		&& EVP_DigestUpdate(ctx, fp, strlen(fp)) == 1 && EVP_DigestUpdate(ctx, "/", 1) == 1
		&& EVP_DigestUpdate(ctx, client_id, strlen(client_id)) == 1
		&& EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen * 2 == ONB_FP_HEXLEN;

	EVP_MD_CTX_free(ctx);
	if(!ok) return ONB_EINTERNAL;
	for(unsigned int i = 0; i < mdlen; i++){
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0x0f];
	}
	out[ONB_FP_HEXLEN] = '\0';
	return ONB_OK;
}

int csvc_ratelimit(redisContext *rc, const struct csvc_config *cfg, const char *fp,
		const char *client_id, enum csvc_rl *out, bool *first, struct onb_err *err)
{
	struct scope scopes[3];
	int nscopes = 0, ret = ONB_OK;
	long long window = onb_now_ms() / cfg->rate_window_ms;
	char ttl[24], cid[ONB_FP_HEXLEN + 1];
	enum csvc_rl verdict = CSVC_RL_OK;
	bool is_first = false;

	if(!rc || rc->err) return onb_fail(err, ONB_EUNAVAIL, "rate limit: no Redis connection");
	snprintf(ttl, sizeof(ttl), "%lld", 2LL * cfg->rate_window_ms);
	if(cfg->rate_per_client > 0){
		if(client_key_id(fp, client_id, cid) != ONB_OK) return onb_fail(err, ONB_EINTERNAL, "SHA-256 failed");
		scopes[nscopes].which = CSVC_RL_CLIENT;
		scopes[nscopes].limit = cfg->rate_per_client;
		snprintf(scopes[nscopes++].key, KEY_MAX, "onb:rl:c:%s:%lld", cid, window);
	}
	if(cfg->rate_per_requester > 0){
		scopes[nscopes].which = CSVC_RL_REQUESTER;
		scopes[nscopes].limit = cfg->rate_per_requester;
		snprintf(scopes[nscopes++].key, KEY_MAX, "onb:rl:r:%s:%lld", fp, window);
	}
	if(cfg->rate_global > 0){
		scopes[nscopes].which = CSVC_RL_GLOBAL;
		scopes[nscopes].limit = cfg->rate_global;
		snprintf(scopes[nscopes++].key, KEY_MAX, "onb:rl:g:%lld", window);
	}
	for(int i = 0; i < nscopes; i++){
		const char *incr[2] = { "INCR", scopes[i].key };
		const char *pexp[3] = { "PEXPIRE", scopes[i].key, ttl };
		if(redisAppendCommandArgv(rc, 2, incr, NULL) != REDIS_OK
				|| redisAppendCommandArgv(rc, 3, pexp, NULL) != REDIS_OK){
			return onb_fail(err, ONB_EUNAVAIL, "rate limit: %s", rc->errstr);
		}
	}
	/* Read every reply, even after an error, so the connection stays in step. */
	for(int i = 0; i < 2 * nscopes; i++){
		redisReply *r = NULL;

		if(redisGetReply(rc, (void **)&r) != REDIS_OK || !r){
			return onb_fail(err, ONB_EUNAVAIL, "rate limit: %s", rc->errstr[0] ? rc->errstr : "no reply");
		}
		if(i % 2 == 0){
			const struct scope *sc = &scopes[i / 2];
			if(r->type != REDIS_REPLY_INTEGER){
				ret = onb_fail(err, ONB_EUNAVAIL, "rate limit: unexpected reply to INCR");
			}else if(r->integer > sc->limit && verdict == CSVC_RL_OK){
				verdict = sc->which;
				is_first = r->integer == (long long)sc->limit + 1;
			}
		}else if(r->type == REDIS_REPLY_ERROR){
			ret = onb_fail(err, ONB_EUNAVAIL, "rate limit: %s", r->str);
		}
		freeReplyObject(r);
	}
	if(ret != ONB_OK) return ret;
	*out = verdict;
	if(first) *first = is_first;
	return ONB_OK;
}

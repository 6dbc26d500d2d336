/* claimsvc's one Redis connection: made on first use, replaced when it
 * failed (with a short back-off, logged once per outage), and its health
 * for /healthz. Every part of claimsvc reaches Redis through here. */
#include "claimsvc.h"

#include <string.h>

#define REDIS_RETRY_MS 250

redisContext *csvc_redis(struct csvc *s)
{
	struct onb_err err;
	int64_t now;

	if(s->rc && !s->rc->err) return s->rc;
	if(s->rc){
		redisFree(s->rc);
		s->rc = NULL;
	}
	now = onb_mono_ms();
	if(now < s->redis_retry_at) return NULL;
	s->rc = onb_redis_connect(&s->redis_cfg, &err);
	if(!s->rc){
		s->metrics.redis_errors++;
		s->redis_retry_at = now + REDIS_RETRY_MS;
		if(!s->redis_down_logged) csvc_log(CSVC_ERROR, "registry unavailable: %s", err.msg);
		s->redis_down_logged = true;
		return NULL;
	}
	if(s->redis_down_logged) csvc_log(CSVC_INFO, "registry connection restored");
	s->redis_down_logged = false;
	return s->rc;
}

void csvc_redis_settle(struct csvc *s, bool force)
{
	if(s->rc && (force || s->rc->err)){
		csvc_log(CSVC_WARNING, "dropping the registry connection%s%s", s->rc->err ? ": " : "",
				s->rc->err ? s->rc->errstr : "");
		s->metrics.redis_errors++;
		redisFree(s->rc);
		s->rc = NULL;
	}
}

/* One PING per second at most, however many probes arrive: a probe flood
 * must not become a Redis load, and on a hung Redis each PING costs the
 * main loop up to redis_timeout_ms. */
#define PING_EVERY_MS 1000

/* PING on the current connection; a connection that died while idle (Redis
 * restarted) is replaced once and asked again, as admit() does. */
static bool ping(struct csvc *s, const char **why)
{
	for(int attempt = 0; attempt < 2; attempt++){
		redisContext *rc = csvc_redis(s);
		redisReply *r;
		bool ok;

		if(!rc){
			*why = "no connection (reconnecting)";
			return false;
		}
		r = redisCommand(rc, "PING");
		ok = r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "PONG");
		*why = ok ? NULL : !r ? "no answer to PING" : "unexpected answer to PING";
		if(r) freeReplyObject(r);
		if(ok) return true;
		csvc_redis_settle(s, true);
	}
	return false;
}

bool csvc_redis_healthy(struct csvc *s, const char **why)
{
	int64_t now = onb_mono_ms();

	if(s->redis_health.at == 0 || now - s->redis_health.at >= PING_EVERY_MS){
		s->redis_health.ok = ping(s, &s->redis_health.why);
		s->redis_health.at = onb_mono_ms();
	}
	*why = s->redis_health.why;
	return s->redis_health.ok;
}


/* The main thread's Redis connection. Fail closed, never wait long: every
 * command is bounded by redis_timeout_ms, and after a failure no new attempt
 * is made for redis_retry_ms, so a dead Redis costs a refused connect, not a
 * stalled broker. */
#include "onboard.h"

static const struct onboard_config *config;
static redisContext *link_rc;
static int64_t retry_at_ms;
static bool reported_down;

void registry_link_init(const struct onboard_config *cfg)
{
	config = cfg;
	link_rc = NULL;
	retry_at_ms = 0;
	reported_down = false;
}

redisContext *registry_link_get(void)
{
	struct onb_err err;

	if(link_rc) return link_rc;
	if(onb_mono_ms() < retry_at_ms) return NULL;
	link_rc = onb_redis_connect(&config->redis, &err);
	if(!link_rc){
		metrics.redis_errors++;
		retry_at_ms = onb_mono_ms() + config->redis_retry_ms;
		if(!reported_down){
			mosquitto_log_printf(MOSQ_LOG_ERR, ONB_LOG_PREFIX
					"registry unreachable, refusing new connects: %s", err.msg);
			reported_down = true;
		}
		return NULL;
	}
	if(reported_down){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, ONB_LOG_PREFIX "registry reachable again");
		reported_down = false;
	}
	return link_rc;
}

void registry_link_drop(void)
{
	if(!link_rc) return;
	metrics.redis_errors++;
	redisFree(link_rc);
	link_rc = NULL;
	retry_at_ms = onb_mono_ms() + config->redis_retry_ms;
	if(!reported_down){
		mosquitto_log_printf(MOSQ_LOG_ERR, ONB_LOG_PREFIX "registry connection lost, refusing new connects");
		reported_down = true;
	}
}

void registry_link_audit(const struct onb_audit_entry *e)
{
	struct onb_err err;
	redisContext *rc = registry_link_get();

	if(!rc) return;
	if(onb_audit_append(rc, e, config->audit_maxlen, &err) != ONB_OK){
		mosquitto_log_printf(MOSQ_LOG_WARNING, ONB_LOG_PREFIX "audit append failed: %s", err.msg);
		registry_link_drop();
	}
}

void registry_link_close(void)
{
	if(link_rc) redisFree(link_rc);
	link_rc = NULL;
}

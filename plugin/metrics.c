/* The plugin's counters (docs/operations.md, "Metrics"). Incremented as plain
 * integers on the main thread; published from the tick at most every
 * metrics_interval_s as one retained JSON message on
 * $SYS/onboard/broker/<broker_id> (mosquitto_broker_publish, no client id),
 * which Mosquitto delivers only to subscribers whose policy allows receiving
 * it (the shipped policies: service identities only). The same document is
 * handed to the event watcher, which stores it in Redis on its own connection
 * for `onboardctl stats`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "onboard.h"
#include "onb/stats.h"

struct plugin_metrics metrics;
atomic_ulong metrics_watcher_redis_errors, metrics_watcher_audit_errors;

static const struct onboard_config *config;
static int64_t started_ms, next_publish_mono;

/* The reason tokens of onb_admit and auth.c; anything else counts as "other". */
static const char *const deny_reasons[] = {
	"no-certificate", "bad-certificate", "unknown-ca", "bad-client-id", "client-id-mismatch",
	"registry-unavailable", "not-registered", "device-state", "certificate-retired", "no-policy",
	"policy-denies-connect", "internal", "client-id-in-use", "client-id-reserved",
};
#define N_DENY_REASONS (sizeof(deny_reasons) / sizeof(deny_reasons[0]))
_Static_assert(N_DENY_REASONS < sizeof(metrics.connect_denied) / sizeof(metrics.connect_denied[0]),
		"connect_denied needs a slot per reason and one for other");

static const char *const acl_names[M_ACL_COUNT] = { "publish", "subscribe", "receive", "no-session", "will" };
static const char *const event_names[M_EV_COUNT] = { "state", "policy", "cert", "other" };

void metrics_init(const struct onboard_config *cfg)
{
	config = cfg;
	memset(&metrics, 0, sizeof(metrics));
	atomic_store(&metrics_watcher_redis_errors, 0);
	started_ms = onb_now_ms();
	next_publish_mono = onb_mono_ms() + (int64_t)cfg->metrics_interval_s * 1000;
}

void metrics_connect(bool allowed, const char *reason)
{
	size_t i;

	if(allowed){
		metrics.connect_allowed++;
		return;
	}
	for(i = 0; reason && i < N_DENY_REASONS; i++){
		if(!strcmp(reason, deny_reasons[i])) break;
	}
	metrics.connect_denied[reason ? i : N_DENY_REASONS]++;
}

void metrics_event(const struct onb_event *ev)
{
	long long ms;
	char *end;
	int64_t lag;

	if(!strcmp(ev->type, "state")) metrics.events_applied[M_EV_STATE]++;
	else if(!strcmp(ev->type, "policy")) metrics.events_applied[M_EV_POLICY]++;
	else if(!strcmp(ev->type, "cert")) metrics.events_applied[M_EV_CERT]++;
	else metrics.events_applied[M_EV_OTHER]++;
	/* A stream id is "<ms>-<seq>": the Redis server's clock when it was written. */
	ms = strtoll(ev->stream_id, &end, 10);
	if(end == ev->stream_id || ms <= 0) return;
	lag = onb_now_ms() - ms;
	if(lag < 0) lag = 0; /* clocks of two hosts */
	metrics.event_lag_last_ms = lag;
	if(lag > metrics.event_lag_max_ms) metrics.event_lag_max_ms = lag;
	metrics.event_lag_sum_ms += (uint64_t)lag;
	metrics.event_lag_n++;
}

static bool add_counts(cJSON *obj, const char *const *names, const uint64_t *v, size_t n)
{
	for(size_t i = 0; i < n; i++){
		if(!cJSON_AddNumberToObject(obj, names[i], (double)v[i])) return false;
	}
	return true;
}

/* The counters as one JSON document (cJSON_free), or NULL. */
static char *document(void)
{
	cJSON *root = cJSON_CreateObject(), *connects, *denied, *acl, *events, *applied, *lag, *prov, *rot;
	int64_t now = onb_now_ms();
	char *out = NULL;
	bool ok;

	ok = root && cJSON_AddStringToObject(root, "broker", config->broker_id)
		&& cJSON_AddNumberToObject(root, "ts", (double)now)
		&& cJSON_AddNumberToObject(root, "uptime_s", (double)((now - started_ms) / 1000))
		&& cJSON_AddNumberToObject(root, "sessions", (double)sessions_count())
		&& (connects = cJSON_AddObjectToObject(root, "connects"))
		&& cJSON_AddNumberToObject(connects, "allowed", (double)metrics.connect_allowed)
		&& (denied = cJSON_AddObjectToObject(connects, "denied"))
		&& add_counts(denied, deny_reasons, metrics.connect_denied, N_DENY_REASONS)
		&& cJSON_AddNumberToObject(denied, "other", (double)metrics.connect_denied[N_DENY_REASONS])
		&& cJSON_AddNumberToObject(connects, "view_hits", (double)metrics.admview_hits)
		&& cJSON_AddNumberToObject(connects, "view_misses", (double)metrics.admview_misses)
		&& cJSON_AddNumberToObject(connects, "view_devices", (double)metrics.admview_devices)
		&& cJSON_AddNumberToObject(connects, "delayed", (double)metrics.auth_delayed)
		&& (acl = cJSON_AddObjectToObject(root, "acl_denied"))
		&& add_counts(acl, acl_names, metrics.acl_denied, M_ACL_COUNT)
		&& cJSON_AddNumberToObject(root, "wills_published", (double)metrics.wills_published)
		&& (events = cJSON_AddObjectToObject(root, "events"))
		&& (applied = cJSON_AddObjectToObject(events, "applied"))
		&& add_counts(applied, event_names, metrics.events_applied, M_EV_COUNT)
		&& (lag = cJSON_AddObjectToObject(events, "lag_ms"))
		&& cJSON_AddNumberToObject(lag, "last", (double)metrics.event_lag_last_ms)
		&& cJSON_AddNumberToObject(lag, "max", (double)metrics.event_lag_max_ms)
		&& cJSON_AddNumberToObject(lag, "avg", metrics.event_lag_n
				? (double)metrics.event_lag_sum_ms / (double)metrics.event_lag_n : 0.0)
		&& cJSON_AddNumberToObject(root, "redis_errors",
				(double)(metrics.redis_errors + atomic_load(&metrics_watcher_redis_errors)))
		&& cJSON_AddNumberToObject(root, "audit_errors", (double)(metrics.audit_errors + atomic_load(&metrics_watcher_audit_errors)))
		&& cJSON_AddNumberToObject(root, "audit_dropped", (double)writer_dropped())
		&& cJSON_AddNumberToObject(root, "sessions_taken_over", (double)metrics.sessions_taken_over)
		&& cJSON_AddNumberToObject(root, "possible_clones", (double)metrics.possible_clones)
		&& (prov = cJSON_AddObjectToObject(root, "provisioning"))
		&& cJSON_AddNumberToObject(prov, "requests", (double)metrics.prov_requests)
		&& cJSON_AddNumberToObject(prov, "renewals", (double)metrics.renew_requests)
		&& cJSON_AddNumberToObject(prov, "replies", (double)metrics.prov_replies)
		&& cJSON_AddNumberToObject(prov, "dropped", (double)metrics.prov_dropped)
		&& cJSON_AddNumberToObject(prov, "refused", (double)metrics.prov_refused)
		&& cJSON_AddNumberToObject(prov, "shed", (double)metrics.prov_shed)
		&& cJSON_AddNumberToObject(prov, "unheard", (double)metrics.prov_unheard)
		&& (rot = cJSON_AddObjectToObject(root, "rotation"))
		&& cJSON_AddNumberToObject(rot, "promoted", (double)metrics.rotation_promoted)
		&& cJSON_AddNumberToObject(rot, "retired_sessions", (double)metrics.rotation_kicked)
		&& cJSON_AddNumberToObject(rot, "notices", (double)metrics.rotation_notices);
	if(ok) out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return out;
}

void metrics_tick(void)
{
	char topic[sizeof(ONB_SYS_TOPIC_PREFIX) + ONB_ID_MAX + 16];
	char *json, *copy;
	void *payload;
	size_t len;

	if(config->metrics_interval_s <= 0 || onb_mono_ms() < next_publish_mono) return;
	next_publish_mono = onb_mono_ms() + (int64_t)config->metrics_interval_s * 1000;
	json = document();
	if(!json) return;
	len = strlen(json);
	snprintf(topic, sizeof(topic), ONB_SYS_TOPIC_PREFIX "broker/%s", config->broker_id);
	payload = mosquitto_malloc(len);
	if(payload){
		memcpy(payload, json, len);
		/* no client id: a normal retained publish, subject to each reader's ACL */
		if(mosquitto_broker_publish(NULL, topic, (int)len, payload, 0, true, NULL) != MOSQ_ERR_SUCCESS){
			mosquitto_free(payload); /* not taken over on failure */
			mosquitto_log_printf(MOSQ_LOG_WARNING, ONB_LOG_PREFIX "cannot publish counters on %s", topic);
		}
	}
	/* plain malloc: the watcher thread frees it */
	copy = malloc(len + 1);
	if(copy){
		memcpy(copy, json, len + 1);
		events_post_stats(copy);
	}
	cJSON_free(json);
}

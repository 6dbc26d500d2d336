/* The plugin's counters (docs/operations.md, "Metrics"). Incremented as plain
 * integers on the main thread; published from the tick at most every
 * metrics_interval_s as one retained JSON message on
 * $SYS/onboard/broker/<broker_id> (mosquitto_broker_publish, no client id),
 * which Mosquitto delivers only to subscribers whose policy allows receiving
 * it (the shipped policies: service identities only). The same document is
 * taken by the event watcher (metrics_take_stats), which stores it in Redis
 * on its own connection for `onboardctl stats`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "onboard.h"
#include "registry/stats.h"

struct plugin_metrics metrics;
atomic_ulong metrics_watcher_redis_errors, metrics_watcher_audit_errors, metrics_events_dropped;

static const struct onboard_config *config;
static int64_t started_ms, next_publish_mono;

/* The latest document for the watcher (plain malloc: it frees it). */
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static char *pending_stats;

static const char *const acl_names[M_ACL_COUNT] = { "publish", "subscribe", "receive", "no-session", "will" };

void metrics_init(const struct onboard_config *cfg)
{
	config = cfg;
	memset(&metrics, 0, sizeof(metrics));
	atomic_store(&metrics_watcher_redis_errors, 0);
	atomic_store(&metrics_events_dropped, 0);
	started_ms = onb_now_ms();
	next_publish_mono = onb_mono_ms() + (int64_t)cfg->metrics_interval_s * 1000;
}

void metrics_connect(bool allowed, const char *reason)
{
	int r;

	if(allowed){
		metrics.connect_allowed++;
		return;
	}
	/* "ok" on a refusal cannot happen; its slot counts reasons not in the list */
	r = onb_admit_reason_parse(reason);
	metrics.connect_denied[r < 0 ? ONB_AR_OK : r]++;
}

void metrics_event(enum onb_event_type t, const char *stream_id)
{
	long long ms;
	char *end;
	int64_t lag;

	metrics.events_applied[(unsigned)t < ONB_EV_COUNT ? t : ONB_EV_OTHER]++;
	/* A stream id is "<ms>-<seq>": the Redis server's clock when it was written. */
	ms = strtoll(stream_id, &end, 10);
	if(end == stream_id || ms <= 0) return;
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

/* connects.denied: one key per refusal reason of the list, then "other". */
static bool add_denied(cJSON *obj)
{
	for(int r = 0; r < ONB_AR_COUNT; r++){
		if(r == ONB_AR_OK) continue;
		if(!cJSON_AddNumberToObject(obj, onb_admit_reason_name((enum onb_admit_reason)r),
				(double)metrics.connect_denied[r])) return false;
	}
	return cJSON_AddNumberToObject(obj, "other", (double)metrics.connect_denied[ONB_AR_OK]) != NULL;
}

/* events.applied: one key per event type, "other" included. */
static bool add_applied(cJSON *obj)
{
	for(int t = 0; t < ONB_EV_COUNT; t++){
		if(!cJSON_AddNumberToObject(obj, onb_event_type_name((enum onb_event_type)t),
				(double)metrics.events_applied[t])) return false;
	}
	return true;
}

struct named_counter {
	const char *name;
	const uint64_t *value;
};

static const struct named_counter prov_counters[] = {
	{ "requests", &metrics.prov_requests }, { "renewals", &metrics.renew_requests },
	{ "replies", &metrics.prov_replies }, { "dropped", &metrics.prov_dropped },
	{ "refused", &metrics.prov_refused }, { "shed", &metrics.prov_shed },
	{ "unheard", &metrics.prov_unheard },
};
static const struct named_counter rotation_counters[] = {
	{ "promoted", &metrics.rotation_promoted }, { "retired_sessions", &metrics.rotation_kicked },
	{ "notices", &metrics.rotation_notices },
};

/* root.name = { each counter by its name }. */
static bool add_group(cJSON *root, const char *name, const struct named_counter *c, size_t n)
{
	cJSON *o = cJSON_AddObjectToObject(root, name);

	for(size_t i = 0; o && i < n; i++){
		if(!cJSON_AddNumberToObject(o, c[i].name, (double)*c[i].value)) return false;
	}
	return o != NULL;
}

/* The counters as one JSON document (cJSON_free), or NULL. */
static char *document(void)
{
	cJSON *root = cJSON_CreateObject(), *connects, *denied, *acl, *events, *applied, *lag;
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
		&& add_denied(denied)
		&& cJSON_AddNumberToObject(connects, "view_hits", (double)metrics.admview_hits)
		&& cJSON_AddNumberToObject(connects, "view_misses", (double)metrics.admview_misses)
		&& cJSON_AddNumberToObject(connects, "view_devices", (double)metrics.admview_devices)
		&& cJSON_AddNumberToObject(connects, "delayed", (double)metrics.auth_delayed)
		&& (acl = cJSON_AddObjectToObject(root, "acl_denied"))
		&& add_counts(acl, acl_names, metrics.acl_denied, M_ACL_COUNT)
		&& cJSON_AddNumberToObject(root, "wills_published", (double)metrics.wills_published)
		&& (events = cJSON_AddObjectToObject(root, "events"))
		&& (applied = cJSON_AddObjectToObject(events, "applied"))
		&& add_applied(applied)
		&& cJSON_AddNumberToObject(events, "dropped", (double)atomic_load(&metrics_events_dropped))
		&& (lag = cJSON_AddObjectToObject(events, "lag_ms"))
		&& cJSON_AddNumberToObject(lag, "last", (double)metrics.event_lag_last_ms)
		&& cJSON_AddNumberToObject(lag, "max", (double)metrics.event_lag_max_ms)
		&& cJSON_AddNumberToObject(lag, "avg", metrics.event_lag_n
				? (double)metrics.event_lag_sum_ms / (double)metrics.event_lag_n : 0.0)
		&& cJSON_AddNumberToObject(root, "redis_errors",
				(double)(metrics.redis_errors + atomic_load(&metrics_watcher_redis_errors)))
		&& cJSON_AddNumberToObject(root, "audit_errors", (double)(metrics.audit_errors + atomic_load(&metrics_watcher_audit_errors)))
		&& cJSON_AddNumberToObject(root, "audit_dropped", (double)metrics.audit_dropped)
		&& cJSON_AddNumberToObject(root, "sessions_taken_over", (double)metrics.sessions_taken_over)
		&& cJSON_AddNumberToObject(root, "possible_clones", (double)metrics.possible_clones)
		&& add_group(root, "provisioning", prov_counters, sizeof(prov_counters) / sizeof(prov_counters[0]))
		&& add_group(root, "rotation", rotation_counters,
				sizeof(rotation_counters) / sizeof(rotation_counters[0]));
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
		pthread_mutex_lock(&stats_lock);
		free(pending_stats); /* an older one the watcher has not stored yet */
		pending_stats = copy;
		pthread_mutex_unlock(&stats_lock);
	}
	cJSON_free(json);
}

char *metrics_take_stats(void)
{
	char *json;

	pthread_mutex_lock(&stats_lock);
	json = pending_stats;
	pending_stats = NULL;
	pthread_mutex_unlock(&stats_lock);
	return json;
}

/* Every broker's counters on /metrics (docs/operations.md, "Prometheus").
 *
 * Each broker plugin stores its counters document in Redis as
 * onb:stats:broker:<broker id> every plugin_opt_metrics_interval_s, expiring
 * after three intervals (plugin/metrics.c, lib/registry/stats.c): the same documents
 * `onboardctl stats` prints. claimsvc reads them from there rather than
 * from $SYS/onboard/broker/+ on its MQTT connection because Redis has every
 * broker of the fleet, including brokers this instance is not connected
 * to, and it needs no subscription nor policy change.
 *
 * Reads happen on the main thread when /metrics is asked, at most once per
 * REFRESH_MS whatever the scrape rate; between reads, and while Redis is
 * away, the documents already read are served until they would have
 * expired in Redis, so a stopped broker disappears from /metrics as it
 * does from `onboardctl stats`. */
#include "claimsvc.h"
#include "prom.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "registry/stats.h"

#define REFRESH_MS 1000
#define BROKERS_MAX 1024       /* documents kept; more brokers are not served */
#define MEMBERS_MAX 64         /* series per labelled family and broker */

struct doc {
	char id[ONB_ID_MAX + 1];
	cJSON *json;               /* owned */
	int64_t expires_mono;      /* when Redis drops it, as far as we know */
};

struct csvc_brokerstats {
	struct doc *v;             /* owned, n used */
	size_t n;
	int64_t read_at;           /* monotonic ms of the last read attempt */
};

/* How a family is read from a document: one number at a path, one series
 * per member of the object at a path (member name in label), or the start
 * time computed from "ts" and "uptime_s". */
enum bkind { B_NUMBER, B_OBJECT, B_START };

static const struct bfam {
	const char *name;
	enum csvc_prom_type type;
	enum bkind kind;
	const char *path;          /* dotted, in the plugin's document */
	const char *label;         /* B_OBJECT */
	double scale;
	const char *help;
} families[] = {
	{ "onboard_broker_start_time_seconds", CSVC_PROM_GAUGE, B_START, NULL, NULL, 1,
		"When the broker plugin started, Unix time in seconds." },
	{ "onboard_broker_last_report_timestamp_seconds", CSVC_PROM_GAUGE, B_NUMBER, "ts", NULL, 0.001,
		"When the broker wrote these counters, Unix time in seconds (every plugin_opt_metrics_interval_s)." },
	{ "onboard_broker_sessions", CSVC_PROM_GAUGE, B_NUMBER, "sessions", NULL, 1,
		"Sessions the plugin holds (admitted connections)." },
	{ "onboard_broker_connects_allowed_total", CSVC_PROM_COUNTER, B_NUMBER, "connects.allowed", NULL, 1,
		"CONNECTs admitted." },
	{ "onboard_broker_connects_denied_total", CSVC_PROM_COUNTER, B_OBJECT, "connects.denied", "reason", 1,
		"CONNECTs refused, by reason." },
	{ "onboard_broker_acl_denied_total", CSVC_PROM_COUNTER, B_OBJECT, "acl_denied", "kind", 1,
		"ACL checks denied: publish, subscribe, receive, no-session, will." },
	{ "onboard_broker_wills_published_total", CSVC_PROM_COUNTER, B_NUMBER, "wills_published", NULL, 1,
		"Wills the plugin let through." },
	{ "onboard_broker_events_applied_total", CSVC_PROM_COUNTER, B_OBJECT, "events.applied", "type", 1,
		"Registry events this broker processed, by type." },
	{ "onboard_broker_event_lag_seconds", CSVC_PROM_GAUGE, B_NUMBER, "events.lag_ms.last", NULL, 0.001,
		"Lag of the last registry event, from its stream id (Redis clock) to its application." },
	{ "onboard_broker_event_lag_max_seconds", CSVC_PROM_GAUGE, B_NUMBER, "events.lag_ms.max", NULL, 0.001,
		"Largest registry event lag since the broker started." },
	{ "onboard_broker_event_lag_avg_seconds", CSVC_PROM_GAUGE, B_NUMBER, "events.lag_ms.avg", NULL, 0.001,
		"Mean registry event lag since the broker started." },
	{ "onboard_broker_events_dropped_total", CSVC_PROM_COUNTER, B_NUMBER, "events.dropped", NULL, 1,
		"Registry events and session announcements the watcher could not queue (out of memory)." },
	{ "onboard_broker_redis_errors_total", CSVC_PROM_COUNTER, B_NUMBER, "redis_errors", NULL, 1,
		"Failed Redis connects and dropped connections, main thread and event watcher." },
	{ "onboard_broker_audit_errors_total", CSVC_PROM_COUNTER, B_NUMBER, "audit_errors", NULL, 1,
		"Audit entries Redis refused or did not answer." },
	{ "onboard_broker_provisioning_requests_total", CSVC_PROM_COUNTER, B_NUMBER, "provisioning.requests", NULL, 1,
		"Provisioning requests routed to claimsvc (renewals and shed requests among them)." },
	{ "onboard_broker_provisioning_renewals_total", CSVC_PROM_COUNTER, B_NUMBER, "provisioning.renewals", NULL, 1,
		"Renewal requests among the provisioning requests." },
	{ "onboard_broker_provisioning_replies_total", CSVC_PROM_COUNTER, B_NUMBER, "provisioning.replies", NULL, 1,
		"claimsvc replies delivered to devices." },
	{ "onboard_broker_provisioning_dropped_total", CSVC_PROM_COUNTER, B_NUMBER, "provisioning.dropped", NULL, 1,
		"Provisioning requests dropped (wrong identity for the topic)." },
	{ "onboard_broker_provisioning_refused_total", CSVC_PROM_COUNTER, B_NUMBER, "provisioning.refused", NULL, 1,
		"Provisioning requests whose payload the broker refused (too large, NUL byte)." },
	{ "onboard_broker_provisioning_shed_total", CSVC_PROM_COUNTER, B_NUMBER, "provisioning.shed", NULL, 1,
		"Provisioning requests over a connection's or a claim certificate's budget, never handed to claimsvc." },
	{ "onboard_broker_provisioning_unheard_total", CSVC_PROM_COUNTER, B_NUMBER, "provisioning.unheard", NULL, 1,
		"claimsvc replies that no subscription of the asking connection received in time." },
	{ "onboard_broker_rotation_promoted_total", CSVC_PROM_COUNTER, B_NUMBER, "rotation.promoted", NULL, 1,
		"Renewed certificates promoted at CONNECT." },
	{ "onboard_broker_rotation_retired_sessions_total", CSVC_PROM_COUNTER, B_NUMBER, "rotation.retired_sessions",
		NULL, 1, "Sessions closed because a rotation retired their certificate." },
	{ "onboard_broker_rotation_notices_total", CSVC_PROM_COUNTER, B_NUMBER, "rotation.notices", NULL, 1,
		"Renewal notices sent to devices." },
};

struct csvc_brokerstats *csvc_brokerstats_new(void)
{
	return calloc(1, sizeof(struct csvc_brokerstats));
}

static void docs_free(struct doc *v, size_t n)
{
	for(size_t i = 0; i < n; i++) cJSON_Delete(v[i].json);
	free(v);
}

void csvc_brokerstats_free(struct csvc_brokerstats *b)
{
	if(!b) return;
	docs_free(b->v, b->n);
	free(b);
}

/* A fresh read, collected here and swapped in only when complete. */
struct collect {
	struct doc *v;
	size_t n;
	int64_t now;
};

static int collect_one(const char *kind, const char *id, const char *json, int64_t ttl_ms, void *arg)
{
	struct collect *c = arg;
	struct doc *d;

	if(strcmp(kind, "broker") != 0 || c->n >= BROKERS_MAX) return 0;
	d = &c->v[c->n];
	d->json = cJSON_Parse(json);
	if(!cJSON_IsObject(d->json)){
		cJSON_Delete(d->json);
		d->json = NULL;
		return 0;
	}
	snprintf(d->id, sizeof(d->id), "%s", id);
	d->expires_mono = c->now + (ttl_ms > 0 ? ttl_ms : 0);
	c->n++;
	return 0;
}

static void refresh(struct csvc_brokerstats *b, struct csvc *s)
{
	struct collect c = { NULL, 0, onb_mono_ms() };
	struct onb_err err;
	redisContext *rc;
	size_t kept = 0;
	int ret;

	if(b->read_at && c.now - b->read_at < REFRESH_MS) goto expire;
	b->read_at = c.now;
	if(!(rc = csvc_redis(s))) goto expire;
	c.v = calloc(BROKERS_MAX, sizeof(*c.v));
	if(!c.v) goto expire;
	ret = onb_stats_list(rc, collect_one, &c, &err);
	csvc_redis_settle(s, false);
	if(ret != ONB_OK){
		csvc_log(CSVC_DEBUG, "broker counters not refreshed: %s", err.msg);
		docs_free(c.v, c.n);
		goto expire;
	}
	docs_free(b->v, b->n);
	/* keep what was read, not the BROKERS_MAX slots read into */
	b->v = c.n ? realloc(c.v, c.n * sizeof(*c.v)) : NULL;
	if(c.n && !b->v) b->v = c.v; /* shrinking failed: keep the larger block */
	if(!c.n) free(c.v);
	b->n = c.n;
	return;
expire:
	/* what Redis no longer holds is not served either */
	for(size_t i = 0; i < b->n; i++){
		if(b->v[i].expires_mono > c.now) b->v[kept++] = b->v[i];
		else cJSON_Delete(b->v[i].json);
	}
	b->n = kept;
}

static const cJSON *at_path(const cJSON *obj, const char *path)
{
	char part[64];

	while(obj && *path){
		size_t n = strcspn(path, ".");
		if(n >= sizeof(part)) return NULL;
		memcpy(part, path, n);
		part[n] = '\0';
		obj = cJSON_GetObjectItemCaseSensitive(obj, part);
		path += n + (path[n] == '.');
	}
	return obj;
}

/* The family's series of one broker; writes the family header first if
 * *header is still false (a family no broker reports is left out). */
static void render(struct csvc_text *t, const struct bfam *f, const struct doc *d, bool *header)
{
	const cJSON *v, *ts, *up;
	int members = 0;

	switch(f->kind){
	case B_START:
		ts = cJSON_GetObjectItemCaseSensitive(d->json, "ts");
		up = cJSON_GetObjectItemCaseSensitive(d->json, "uptime_s");
		if(!cJSON_IsNumber(ts) || !cJSON_IsNumber(up)) return;
		if(!*header) csvc_prom_family(t, f->name, f->type, f->help);
		*header = true;
		csvc_prom_sample(t, f->name, "broker", d->id, NULL, NULL, ts->valuedouble / 1000.0 - up->valuedouble);
		return;
	case B_NUMBER:
		v = at_path(d->json, f->path);
		if(!cJSON_IsNumber(v)) return;
		if(!*header) csvc_prom_family(t, f->name, f->type, f->help);
		*header = true;
		csvc_prom_sample(t, f->name, "broker", d->id, NULL, NULL, v->valuedouble * f->scale);
		return;
	case B_OBJECT:
		v = at_path(d->json, f->path);
		if(!cJSON_IsObject(v)) return;
		for(const cJSON *m = v->child; m && members < MEMBERS_MAX; m = m->next){
			if(!m->string || !cJSON_IsNumber(m)) continue;
			if(!*header) csvc_prom_family(t, f->name, f->type, f->help);
			*header = true;
			csvc_prom_sample(t, f->name, "broker", d->id, f->label, m->string, m->valuedouble * f->scale);
			members++;
		}
		return;
	}
}

void csvc_brokerstats_prom(struct csvc_brokerstats *b, struct csvc *s, struct csvc_text *t)
{
	refresh(b, s);
	/* Prometheus wants each family in one group: family outer, broker inner */
	for(size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++){
		bool header = false;
		for(size_t j = 0; j < b->n; j++) render(t, &families[i], &b->v[j], &header);
	}
}

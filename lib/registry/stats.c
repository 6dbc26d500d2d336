/* Operational counters in Redis (contract: registry/stats.h). */
#include "registry/stats.h"
#include "registry/registry_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"

static bool kind_valid(const char *k)
{
	size_t n = 0;

	if(!k) return false;
	for(; k[n]; n++){
		if(n >= ONB_STATS_KIND_MAX || k[n] < 'a' || k[n] > 'z') return false;
	}
	return n > 0;
}

int onb_stats_put(redisContext *rc, const char *kind, const char *id, const char *json,
		int64_t ttl_ms, struct onb_err *err)
{
	char key[sizeof(ONB_KEY_STATS_PREFIX) + ONB_STATS_KIND_MAX + ONB_ID_MAX + 2];
	struct onb_args a;
	redisReply *r;
	int ret;

	if(!kind_valid(kind) || !onb_id_valid(id)) return onb_fail(err, ONB_EINVAL, "stats: bad kind or id");
	if(!json || strlen(json) > ONB_STATS_DOC_MAX) return onb_fail(err, ONB_EINVAL, "stats: document too large");
	if(ttl_ms < 1000) return onb_fail(err, ONB_EINVAL, "stats: expiry under 1 s");
	snprintf(key, sizeof(key), "%s%s:%s", ONB_KEY_STATS_PREFIX, kind, id);
	memset(&a, 0, sizeof(a));
	onb_args_push(&a, "SET");
	onb_args_push(&a, key);
	onb_args_push(&a, json);
	onb_args_push(&a, "PX");
	onb_args_push_i64(&a, ttl_ms);
	r = onb_reg_command(rc, &a, "storing counters", false, &ret, err);
	if(!r) return ret;
	ret = onb_reg_reply_is(r, "OK") ? ONB_OK : onb_fail(err, ONB_EUNAVAIL, "storing counters: unexpected reply");
	freeReplyObject(r);
	return ret;
}

/* One key "onb:stats:<kind>:<id>": its document and expiry to cb. */
static int list_one(redisContext *rc, const redisReply *k,
		int (*cb)(const char *, const char *, const char *, int64_t, void *), void *arg,
		int *stop, struct onb_err *err)
{
	char key[sizeof(ONB_KEY_STATS_PREFIX) + ONB_STATS_KIND_MAX + ONB_ID_MAX + 2];
	char kind[ONB_STATS_KIND_MAX + 1], id[ONB_ID_MAX + 1];
	const char *rest, *colon;
	redisReply *doc, *ttl;
	int ret;

	if(!onb_reg_reply_str(k, key, sizeof(key))) return ONB_OK;
	rest = key + strlen(ONB_KEY_STATS_PREFIX);
	colon = strchr(rest, ':');
	if(!colon || (size_t)(colon - rest) > ONB_STATS_KIND_MAX) return ONB_OK;
	memcpy(kind, rest, (size_t)(colon - rest));
	kind[colon - rest] = '\0';
	if(!kind_valid(kind) || strlen(colon + 1) > ONB_ID_MAX) return ONB_OK;
	snprintf(id, sizeof(id), "%s", colon + 1);
	if(!onb_id_valid(id)) return ONB_OK;

	doc = onb_reg_commandv(rc, "reading counters", &ret, err, "GET", key, NULL);
	if(!doc) return ret;
	ttl = onb_reg_commandv(rc, "reading counters", &ret, err, "PTTL", key, NULL);
	if(!ttl){
		freeReplyObject(doc);
		return ret;
	}
	if(doc->type == REDIS_REPLY_STRING && doc->len <= ONB_STATS_DOC_MAX && !memchr(doc->str, '\0', doc->len)){
		*stop = cb(kind, id, doc->str, ttl->type == REDIS_REPLY_INTEGER ? (int64_t)ttl->integer : -1, arg);
	}
	freeReplyObject(doc);
	freeReplyObject(ttl);
	return ONB_OK;
}

int onb_stats_list(redisContext *rc,
		int (*cb)(const char *kind, const char *id, const char *json, int64_t ttl_ms, void *arg),
		void *arg, struct onb_err *err)
{
	char cursor[ONB_SCAN_CURSOR_MAX] = "0";
	int ret = ONB_OK, stop = 0;

	if(!cb) return onb_fail(err, ONB_EINVAL, "no callback");
	do{
		const redisReply *keys;
		struct onb_args a;
		redisReply *r;

		onb_args_scan(&a, cursor, ONB_KEY_STATS_PREFIX "*", "1000");
		r = onb_reg_command(rc, &a, "listing counters", false, &ret, err);
		if(!r) return ret;
		if(!onb_reg_scan_reply(r, cursor, &keys)){
			freeReplyObject(r);
			return onb_fail(err, ONB_EUNAVAIL, "listing counters: unexpected SCAN reply");
		}
		for(size_t i = 0; i < keys->elements && !stop && ret == ONB_OK; i++){
			ret = list_one(rc, keys->element[i], cb, arg, &stop, err);
		}
		freeReplyObject(r);
		if(ret != ONB_OK) return ret;
		if(stop) return stop;
	}while(strcmp(cursor, "0") != 0);
	return ONB_OK;
}

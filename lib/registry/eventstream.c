/* The event stream onb:events (read by every broker) and the one reader of
 * a single stream, shared with the audit stream's (audit.c) and, entry by
 * entry, the fleet feed's (sessionfeed.c). Schema: docs/registry.md. */
#include "registry/registry.h"
#include "registry/registry_int.h"

#include <stdio.h>
#include <string.h>

bool onb_reg_stream_id_valid(const char *s)
{
	size_t n = 0, digits = 0;
	bool dash = false;

	for(; s[n]; n++){
		if(n >= ONB_STREAM_ID_MAX - 1) return false;
		if(s[n] >= '0' && s[n] <= '9'){
			digits++;
		}else if(s[n] == '-' && !dash && digits > 0){
			dash = true;
			digits = 0;
		}else{
			return false;
		}
	}
	return digits > 0;
}

int onb_reg_stream_tail(redisContext *rc, const char *key, char last_id[ONB_STREAM_ID_MAX], struct onb_err *err)
{
	char id[ONB_STREAM_ID_MAX];
	struct onb_args a;
	redisReply *r;
	int ret;

	memset(&a, 0, sizeof(a));
	onb_args_push(&a, "XREVRANGE");
	onb_args_push(&a, key);
	onb_args_push(&a, "+");
	onb_args_push(&a, "-");
	onb_args_push(&a, "COUNT");
	onb_args_push(&a, "1");
	r = onb_reg_command(rc, &a, "reading the tail of a stream", false, &ret, err);
	if(!r) return ret;
	if(r->type != REDIS_REPLY_ARRAY){
		ret = onb_fail(err, ONB_EUNAVAIL, "reading the tail of %s: unexpected reply", key);
	}else if(r->elements == 0){
		snprintf(id, sizeof(id), "0-0");
		ret = ONB_OK;
	}else if(r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements < 1
			|| !onb_reg_reply_str(r->element[0]->element[0], id, sizeof(id)) || !onb_reg_stream_id_valid(id)){
		ret = onb_fail(err, ONB_EUNAVAIL, "reading the tail of %s: unexpected entry", key);
	}else{
		ret = ONB_OK;
	}
	freeReplyObject(r);
	if(ret == ONB_OK) memcpy(last_id, id, ONB_STREAM_ID_MAX);
	return ret;
}

bool onb_reg_entry_fields(const redisReply *fields, const struct onb_reg_str_field *t, size_t n,
		bool (*other)(const redisReply *k, const redisReply *v, void *arg), void *arg)
{
	if(fields->type != REDIS_REPLY_ARRAY || fields->elements % 2) return false;
	for(size_t i = 0; i + 1 < fields->elements; i += 2){
		const redisReply *k = fields->element[i], *v = fields->element[i + 1];
		size_t f = 0;

		if(v->type != REDIS_REPLY_STRING) return false;
		while(f < n && !onb_reg_reply_is(k, t[f].name)) f++;
		if(f < n){
			if(!onb_reg_reply_str(v, t[f].dst, t[f].cap)) return false;
		}else if(other && !other(k, v, arg)){
			return false;
		}
		/* a field no one reads: for newer readers */
	}
	return true;
}

/* The fields of an event that are not plain strings. */
static bool event_other(const redisReply *k, const redisReply *v, void *arg)
{
	struct onb_event *ev = arg;

	if(onb_reg_reply_is(k, "state")) ev->state = onb_reg_reply_state(v);
	else if(onb_reg_reply_is(k, "deadline")) return onb_reg_reply_i64(v, &ev->deadline_ms);
	else if(onb_reg_reply_is(k, "rotate")) ev->rotate_required = onb_reg_reply_is(v, "required");
	return true;
}

/* Parses the fields of one entry. False for a malformed entry (which is
 * skipped, but still advances the reader). */
static bool parse_event(const redisReply *fields, struct onb_event *ev)
{
	const struct onb_reg_str_field t[] = {
		{ "type", ev->type, sizeof(ev->type) },
		{ "device", ev->device, sizeof(ev->device) },
		{ "tenant", ev->tenant, sizeof(ev->tenant) },
		{ "policy", ev->policy, sizeof(ev->policy) },
		{ "cert_fp", ev->cert_fp, sizeof(ev->cert_fp) },
		{ "cert_fp_next", ev->cert_fp_next, sizeof(ev->cert_fp_next) },
	};

	ev->state = ONB_STATE_INVALID;
	if(!onb_reg_entry_fields(fields, t, sizeof(t) / sizeof(t[0]), event_other, ev)) return false;
	return ev->type[0] && (!ev->device[0] || onb_id_valid(ev->device));
}

int onb_reg_stream_entries(const redisReply *entries, char last_id[ONB_STREAM_ID_MAX], onb_reg_entry_cb cb,
		void *arg)
{
	int delivered = 0;

	for(size_t i = 0; i < entries->elements; i++){
		const redisReply *e = entries->element[i];
		char id[ONB_STREAM_ID_MAX];

		if(e->type != REDIS_REPLY_ARRAY || e->elements != 2 || !onb_reg_reply_str(e->element[0], id, sizeof(id))
				|| !onb_reg_stream_id_valid(id)){
			return -1;
		}
		/* advance first: a malformed entry is skipped, never re-read */
		memcpy(last_id, id, ONB_STREAM_ID_MAX);
		if(cb(id, e->element[1], arg)) delivered++;
	}
	return delivered;
}

int onb_reg_stream_read(redisContext *rc, const char *key, char last_id[ONB_STREAM_ID_MAX], int block_ms,
		int max, const char *what, onb_reg_entry_cb cb, void *arg, struct onb_err *err)
{
	char id[ONB_STREAM_ID_MAX];
	struct onb_args a;
	redisReply *r;
	int ret, delivered;

	if(!onb_reg_stream_id_valid(last_id)) return onb_fail(err, ONB_EINVAL, "invalid stream position");
	if(max <= 0 || block_ms < 0) return onb_fail(err, ONB_EINVAL, "%s: invalid arguments", what);
	if(!rc || rc->err) return onb_fail(err, ONB_EUNAVAIL, "%s: Redis connection unusable", what);
	memcpy(id, last_id, ONB_STREAM_ID_MAX);
	id[ONB_STREAM_ID_MAX - 1] = '\0';

	onb_args_xread(&a, block_ms, max);
	onb_args_push(&a, key);
	onb_args_push(&a, id);
	r = onb_reg_blocking_command(rc, &a, block_ms, what, &ret, err);
	if(!r) return ret;
	if(r->type == REDIS_REPLY_NIL){
		freeReplyObject(r);
		return 0;
	}
	if(r->type != REDIS_REPLY_ARRAY || r->elements != 1 || r->element[0]->type != REDIS_REPLY_ARRAY
			|| r->element[0]->elements != 2 || r->element[0]->element[1]->type != REDIS_REPLY_ARRAY){
		freeReplyObject(r);
		return onb_fail(err, ONB_EUNAVAIL, "%s: unexpected XREAD reply", what);
	}
	delivered = onb_reg_stream_entries(r->element[0]->element[1], last_id, cb, arg);
	freeReplyObject(r);
	if(delivered < 0) return onb_fail(err, ONB_EUNAVAIL, "%s: malformed stream entry", what);
	return delivered;
}

/* ----------------------------------------------------------------- events */

int onb_events_tail(redisContext *rc, char last_id[ONB_STREAM_ID_MAX], struct onb_err *err)
{
	return onb_reg_stream_tail(rc, ONB_KEY_EVENTS, last_id, err);
}

bool onb_reg_event_entry(const char *id, const redisReply *fields, void *arg)
{
	const struct onb_reg_event_sink *k = arg;
	struct onb_event ev;

	memset(&ev, 0, sizeof(ev));
	memcpy(ev.stream_id, id, sizeof(ev.stream_id));
	if(!parse_event(fields, &ev)) return false;
	k->cb(&ev, k->arg);
	return true;
}

int onb_events_read(redisContext *rc, char last_id[ONB_STREAM_ID_MAX], int block_ms,
		int max, void (*cb)(const struct onb_event *ev, void *arg), void *arg,
		struct onb_err *err)
{
	struct onb_reg_event_sink k = { cb, arg };

	if(!cb) return onb_fail(err, ONB_EINVAL, "invalid event read arguments");
	return onb_reg_stream_read(rc, ONB_KEY_EVENTS, last_id, block_ms, max, "reading events", onb_reg_event_entry,
			&k, err);
}

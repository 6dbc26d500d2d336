/* onb:sessions: announcements of admitted device sessions, and the one XREAD
 * that serves a broker's watcher both this stream and onb:events. */
#include "registry/sessionfeed.h"

#include <stdio.h>
#include <string.h>

#include "registry/registry_int.h"


static bool conn_valid(const char *s)
{
	size_t n = strlen(s), colon = strcspn(s, ":");

	if(n == 0 || n >= ONB_CONN_MAX || colon == 0 || colon == n || colon + 1 == n) return false;
	for(size_t i = 0; i < n; i++){
		if(i == colon) continue;
		if(!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
	}
	return true;
}

/* The XADD of announcement an in a; ONB_EINVAL for a malformed one. */
static int announce_args(struct onb_args *a, const struct onb_session_ann *an, struct onb_err *err)
{
	if(!onb_id_valid(an->device) || !onb_id_valid(an->broker) || !conn_valid(an->conn) || !onb_reg_fp_valid(an->fp)
			|| !onb_reg_text_valid(an->source, ONB_SOURCE_MAX - 1)){
		return onb_fail(err, ONB_EINVAL, "malformed session announcement");
	}
	memset(a, 0, sizeof(*a));
	onb_args_push(a, "XADD");
	onb_args_push(a, ONB_KEY_SESSIONS);
	onb_args_push(a, "MAXLEN");
	onb_args_push(a, "~");
	onb_args_push_i64(a, ONB_SESSIONS_MAXLEN);
	onb_args_push(a, "*");
	onb_args_push_field(a, "device", an->device);
	onb_args_push_field(a, "broker", an->broker);
	onb_args_push_field(a, "conn", an->conn);
	onb_args_push_field(a, "fp", an->fp);
	onb_args_push_field(a, "source", an->source);
	return ONB_OK;
}

int onb_session_announce(redisContext *rc, const struct onb_session_ann *an, struct onb_err *err)
{
	struct onb_args a;
	redisReply *r;
	int ret = announce_args(&a, an, err);

	if(ret != ONB_OK) return ret;
	r = onb_reg_command(rc, &a, "announcing a session", false, &ret, err);
	if(!r) return ret;
	freeReplyObject(r);
	return ONB_OK;
}

int onb_session_queue(redisContext *rc, const struct onb_session_ann *an, struct onb_err *err)
{
	struct onb_args a;
	int ret = announce_args(&a, an, err);

	if(ret != ONB_OK) return ret;
	return onb_reg_queue(rc, &a, "queueing a session announcement", err);
}

int onb_sessions_tail(redisContext *rc, char last_id[ONB_STREAM_ID_MAX], struct onb_err *err)
{
	return onb_reg_stream_tail(rc, ONB_KEY_SESSIONS, last_id, err);
}

static bool parse_announcement(const redisReply *fields, struct onb_session_ann *an)
{
	const struct onb_reg_str_field t[] = {
		{ "device", an->device, sizeof(an->device) },
		{ "broker", an->broker, sizeof(an->broker) },
		{ "conn", an->conn, sizeof(an->conn) },
		{ "fp", an->fp, sizeof(an->fp) },
		{ "source", an->source, sizeof(an->source) },
	};

	if(!onb_reg_entry_fields(fields, t, sizeof(t) / sizeof(t[0]), NULL, NULL)) return false;
	return onb_id_valid(an->device) && onb_id_valid(an->broker) && conn_valid(an->conn) && onb_reg_fp_valid(an->fp);
}

static redisReply *xread(redisContext *rc, const char *events_last, const char *sessions_last,
		int block_ms, int max, int *ret, struct onb_err *err)
{
	struct onb_args a;

	onb_args_xread(&a, block_ms, max);
	onb_args_push(&a, ONB_KEY_EVENTS);
	onb_args_push(&a, ONB_KEY_SESSIONS);
	onb_args_push(&a, events_last);
	onb_args_push(&a, sessions_last);
	return onb_reg_blocking_command(rc, &a, block_ms, "reading the feed", ret, err);
}

struct session_sink {
	void (*cb)(const struct onb_session_ann *a, void *arg);
	void *arg;
};

static bool deliver_session(const char *id, const redisReply *fields, void *arg)
{
	const struct session_sink *k = arg;
	struct onb_session_ann an;

	memset(&an, 0, sizeof(an));
	memcpy(an.stream_id, id, sizeof(an.stream_id));
	if(!parse_announcement(fields, &an)) return false;
	k->cb(&an, k->arg);
	return true;
}

int onb_feed_read(redisContext *rc, char events_last[ONB_STREAM_ID_MAX],
		char sessions_last[ONB_STREAM_ID_MAX], int block_ms, int max,
		void (*on_event)(const struct onb_event *ev, void *arg),
		void (*on_session)(const struct onb_session_ann *a, void *arg),
		void *arg, struct onb_err *err)
{
	struct onb_reg_event_sink events = { on_event, arg };
	struct session_sink sessions = { on_session, arg };
	redisReply *r;
	int ret, delivered = 0;

	if(!onb_reg_stream_id_valid(events_last) || !onb_reg_stream_id_valid(sessions_last)){
		return onb_fail(err, ONB_EINVAL, "invalid stream position");
	}
	if(max <= 0 || block_ms < 0 || !on_event || !on_session){
		return onb_fail(err, ONB_EINVAL, "invalid feed read arguments");
	}
	if(!rc || rc->err) return onb_fail(err, ONB_EUNAVAIL, "reading the feed: Redis connection unusable");
	r = xread(rc, events_last, sessions_last, block_ms, max, &ret, err);
	if(!r) return ret;
	if(r->type == REDIS_REPLY_NIL){
		freeReplyObject(r);
		return 0;
	}
	if(r->type != REDIS_REPLY_ARRAY) goto malformed;
	for(size_t s = 0; s < r->elements; s++){
		const redisReply *st = r->element[s];
		int n;
		if(st->type != REDIS_REPLY_ARRAY || st->elements != 2 || st->element[1]->type != REDIS_REPLY_ARRAY) goto malformed;
		if(onb_reg_reply_is(st->element[0], ONB_KEY_SESSIONS)){
			n = onb_reg_stream_entries(st->element[1], sessions_last, deliver_session, &sessions);
		}else if(onb_reg_reply_is(st->element[0], ONB_KEY_EVENTS)){
			n = onb_reg_stream_entries(st->element[1], events_last, onb_reg_event_entry, &events);
		}
		else goto malformed;
		if(n < 0) goto malformed;
		delivered += n;
	}
	freeReplyObject(r);
	return delivered;
malformed:
	freeReplyObject(r);
	return onb_fail(err, ONB_EUNAVAIL, "reading the feed: unexpected XREAD reply");
}

enum onb_rival_verdict onb_session_rival(const char *instance, const char *live_conn,
		enum onb_ann_state live_state, const struct onb_session_ann *a)
{
	size_t n = strlen(instance);

	if(!strcmp(a->conn, live_conn)) return ONB_RIVAL_OWN;
	if(!strncmp(a->conn, instance, n) && a->conn[n] == ':') return ONB_RIVAL_IGNORE;
	return live_state == ONB_ANN_PENDING ? ONB_RIVAL_IGNORE : ONB_RIVAL_CLOSE;
}

bool onb_session_possible_clone(const char *old_fp, const char *old_source,
		const char *new_fp, const char *new_source)
{
	if(strcmp(old_fp, new_fp) != 0) return true;
	/* an unknown address proves nothing either way */
	return old_source[0] && new_source[0] && strcmp(old_source, new_source) != 0;
}

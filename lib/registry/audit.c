/* The audit stream onb:audit: writing (retention, the fields of an entry,
 * shared with the scripts that write their own entry) and reading. Every
 * part writes it; docs/registry.md lists its fields. */
#include "registry/audit.h"
#include "registry/registry_int.h"

#include <string.h>

/* ---------------------------------------------------------------- writing */

/* Retention by time, not by count: a count is something any client able to
 * cause entries could exhaust, evicting the evidence of what it did. Every
 * writer trims what is older than this (approximately, whole stream nodes at
 * a time), so all writers should share one value. */
static _Atomic int64_t audit_retention_ms = (int64_t)ONB_AUDIT_RETENTION_DAYS * 86400000;

int onb_audit_set_retention_days(int days)
{
	if(days < 1 || days > 3650) return ONB_EINVAL;
	audit_retention_ms = (int64_t)days * 86400000;
	return ONB_OK;
}

int64_t onb_audit_minid(void)
{
	int64_t t = onb_now_ms() - audit_retention_ms;
	return t > 0 ? t : 0;
}

/* Every audited script takes these (audit.c: the last one trims onb:audit). */
void onb_args_push_common(struct onb_args *a, int64_t now, const struct onb_actor *actor, bool with_events)
{
	onb_args_push_i64(a, now);
	onb_args_push(a, actor->who);
	onb_args_push(a, actor->source ? actor->source : "");
	if(with_events) onb_args_push_i64(a, ONB_EVENTS_MAXLEN);
	onb_args_push_i64(a, onb_audit_minid());
}

void onb_args_push_audit_xadd(struct onb_args *a)
{
	onb_args_push(a, "XADD");
	onb_args_push(a, ONB_KEY_AUDIT);
	onb_args_push(a, "MINID");
	onb_args_push(a, "~");
	onb_args_push_i64(a, onb_audit_minid());
	onb_args_push(a, "*");
}

void onb_args_push_audit_fields(struct onb_args *a, const struct onb_audit_entry *e)
{
	onb_args_push_field(a, "actor", e->actor);
	onb_args_push_field(a, "source", e->source);
	onb_args_push_field(a, "action", e->action);
	onb_args_push_field(a, "device", e->device);
	onb_args_push_field(a, "result", e->result);
	onb_args_push_field(a, "reason", e->reason);
	onb_args_push_field(a, "client_id", e->client);
	onb_args_push_field(a, "class", e->idclass);
	onb_args_push_field(a, "fp", e->fp);
	if(e->count > 0){
		onb_args_push(a, "count");
		onb_args_push_i64(a, e->count);
		onb_args_push(a, "first_seen");
		onb_args_push_i64(a, e->first_ms);
		onb_args_push(a, "last_seen");
		onb_args_push_i64(a, e->last_ms);
	}
	if(e->ts_ms > 0){
		onb_args_push(a, "ts");
		onb_args_push_i64(a, e->ts_ms);
	}else{
		onb_args_push_audit_ts(a);
	}
}

void onb_args_push_audit_ts(struct onb_args *a)
{
	onb_args_push(a, "ts");
	onb_args_push_i64(a, onb_now_ms());
}

int onb_reg_audit_send(redisContext *rc, struct onb_args *a, const char *what, struct onb_err *err)
{
	redisReply *r;
	int ret;

	r = onb_reg_command(rc, a, what, false, &ret, err);
	if(!r) return ret;
	ret = r->type == REDIS_REPLY_STRING ? ONB_OK : onb_fail(err, ONB_EUNAVAIL, "%s: unexpected reply", what);
	freeReplyObject(r);
	return ret;
}

/* The XADD of entry e in a; ONB_EINVAL for an incomplete entry. */
static int audit_args(struct onb_args *a, const struct onb_audit_entry *e, struct onb_err *err)
{
	if(!e || !e->actor || !e->action || !e->result){
		return onb_fail(err, ONB_EINVAL, "audit entry needs actor, action and result");
	}
	memset(a, 0, sizeof(*a));
	onb_args_push_audit_xadd(a);
	onb_args_push_audit_fields(a, e);
	return ONB_OK;
}

int onb_audit_append(redisContext *rc, const struct onb_audit_entry *e, struct onb_err *err)
{
	struct onb_args a;
	int ret = audit_args(&a, e, err);

	if(ret != ONB_OK) return ret;
	return onb_reg_audit_send(rc, &a, "appending to the audit stream", err);
}

int onb_audit_queue(redisContext *rc, const struct onb_audit_entry *e, struct onb_err *err)
{
	struct onb_args a;
	int ret = audit_args(&a, e, err);

	if(ret != ONB_OK) return ret;
	return onb_reg_queue(rc, &a, "queueing an audit entry", err);
}

/* ---------------------------------------------------------------- reading */

const char *onb_audit_field(const struct onb_audit_record *rec, const char *name)
{
	for(size_t i = 0; i < rec->nfields; i++){
		if(!strcmp(rec->name[i], name)) return rec->value[i];
	}
	return NULL;
}

struct record_sink {
	void (*cb)(const struct onb_audit_record *rec, void *arg);
	void *arg;
};

/* One entry as a record: its field/value pairs up to ONB_AUDIT_FIELDS_MAX
 * (a pair that is not two strings is left out). */
static bool deliver_record(const char *id, const redisReply *f, void *arg)
{
	const struct record_sink *k = arg;
	struct onb_audit_record rec;

	if(f->type != REDIS_REPLY_ARRAY) return false;
	rec.id = id;
	rec.nfields = 0;
	for(size_t i = 0; i + 1 < f->elements && rec.nfields < ONB_AUDIT_FIELDS_MAX; i += 2){
		if(f->element[i]->type != REDIS_REPLY_STRING || f->element[i + 1]->type != REDIS_REPLY_STRING) continue;
		rec.name[rec.nfields] = f->element[i]->str;
		rec.value[rec.nfields] = f->element[i + 1]->str;
		rec.nfields++;
	}
	k->cb(&rec, k->arg);
	return true;
}

int onb_audit_read(redisContext *rc, char last_id[ONB_STREAM_ID_MAX], int block_ms, int max,
		void (*cb)(const struct onb_audit_record *rec, void *arg), void *arg,
		struct onb_err *err)
{
	struct record_sink k = { cb, arg };

	if(!cb) return onb_fail(err, ONB_EINVAL, "invalid audit read arguments");
	return onb_reg_stream_read(rc, ONB_KEY_AUDIT, last_id, block_ms, max, "reading the audit stream",
			deliver_record, &k, err);
}

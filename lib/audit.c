#include "onb/audit.h"

#include <stdio.h>
#include <string.h>

#include "registry_int.h"

const char *onb_audit_field(const struct onb_audit_record *rec, const char *name)
{
	for(size_t i = 0; i < rec->nfields; i++){
		if(!strcmp(rec->name[i], name)) return rec->value[i];
	}
	return NULL;
}

static bool record_of(const redisReply *e, struct onb_audit_record *rec)
{
	const redisReply *f;

	if(e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING
			|| e->element[1]->type != REDIS_REPLY_ARRAY){
		return false;
	}
	f = e->element[1];
	rec->id = e->element[0]->str;
	rec->nfields = 0;
	for(size_t i = 0; i + 1 < f->elements && rec->nfields < ONB_AUDIT_FIELDS_MAX; i += 2){
		if(f->element[i]->type != REDIS_REPLY_STRING || f->element[i + 1]->type != REDIS_REPLY_STRING) continue;
		rec->name[rec->nfields] = f->element[i]->str;
		rec->value[rec->nfields] = f->element[i + 1]->str;
		rec->nfields++;
	}
	return true;
}

int onb_audit_read(redisContext *rc, char last_id[ONB_STREAM_ID_MAX], int block_ms, int max,
		void (*cb)(const struct onb_audit_record *rec, void *arg), void *arg,
		struct onb_err *err)
{
	struct onb_args a;
	redisReply *r;
	const redisReply *entries;
	int ret, n = 0;

	if(max <= 0 || block_ms < 0 || !cb) return onb_fail(err, ONB_EINVAL, "invalid audit read arguments");
	onb_args_xread(&a, block_ms, max);
	onb_args_push(&a, ONB_KEY_AUDIT);
	onb_args_push(&a, last_id);
	r = onb_reg_command(rc, &a, "reading the audit stream", false, &ret, err);
	if(!r) return ret;
	if(r->type == REDIS_REPLY_NIL){
		freeReplyObject(r);
		return 0;
	}
	if(r->type != REDIS_REPLY_ARRAY || r->elements != 1 || r->element[0]->type != REDIS_REPLY_ARRAY
			|| r->element[0]->elements != 2 || r->element[0]->element[1]->type != REDIS_REPLY_ARRAY){
		freeReplyObject(r);
		return onb_fail(err, ONB_EUNAVAIL, "reading the audit stream: unexpected reply");
	}
	entries = r->element[0]->element[1];
	for(size_t i = 0; i < entries->elements; i++){
		struct onb_audit_record rec;
		if(!record_of(entries->element[i], &rec) || strlen(rec.id) >= ONB_STREAM_ID_MAX) continue;
		snprintf(last_id, ONB_STREAM_ID_MAX, "%s", rec.id);
		cb(&rec, arg);
		n++;
	}
	freeReplyObject(r);
	return n;
}

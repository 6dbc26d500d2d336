/* Trimmed-past detection for onb:events readers (lib/registry/eventgap.h). */
#include "registry/eventgap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry_int.h"

static bool parse_id(const char *s, uint64_t *ms, uint64_t *seq)
{
	char *end;

	if(!s || s[0] < '0' || s[0] > '9') return false;
	errno = 0;
	*ms = strtoull(s, &end, 10);
	if(errno || *end != '-' || end[1] < '0' || end[1] > '9') return false;
	*seq = strtoull(end + 1, &end, 10);
	return !errno && *end == '\0';
}

bool onb_stream_id_cmp(const char *a, const char *b, int *out)
{
	uint64_t ams, aseq, bms, bseq;

	if(!parse_id(a, &ams, &aseq) || !parse_id(b, &bms, &bseq)) return false;
	*out = ams != bms ? (ams < bms ? -1 : 1) : (aseq != bseq ? (aseq < bseq ? -1 : 1) : 0);
	return true;
}

int onb_events_gap(redisContext *rc, const char *last_id, bool *gap, struct onb_err *err)
{
	char first[ONB_STREAM_ID_MAX] = "", newest[ONB_STREAM_ID_MAX] = "";
	long long length = -1, added = -1;
	struct onb_args a;
	redisReply *r;
	int ret, cmp;

	*gap = false;
	memset(&a, 0, sizeof(a));
	onb_args_push(&a, "XINFO");
	onb_args_push(&a, "STREAM");
	onb_args_push(&a, ONB_KEY_EVENTS);
	r = onb_reg_command(rc, &a, "checking the event stream", true, &ret, err);
	if(!r) return ret;
	if(r->type == REDIS_REPLY_ERROR){
		/* no stream yet: nothing was trimmed; any other refusal (NOPERM
		 * without +xinfo|stream) cannot tell: count it as a gap */
		*gap = !strstr(r->str, "no such key");
		freeReplyObject(r);
		return ONB_OK;
	}
	if(r->type != REDIS_REPLY_ARRAY || r->elements % 2){
		freeReplyObject(r);
		return onb_fail(err, ONB_EUNAVAIL, "checking the event stream: unexpected reply");
	}
	for(size_t i = 0; i + 1 < r->elements; i += 2){
		const redisReply *k = r->element[i], *v = r->element[i + 1];
		if(onb_reg_reply_is(k, "length") && v->type == REDIS_REPLY_INTEGER) length = v->integer;
		else if(onb_reg_reply_is(k, "entries-added") && v->type == REDIS_REPLY_INTEGER) added = v->integer;
		else if(onb_reg_reply_is(k, "last-generated-id")){
			if(!onb_reg_reply_str(v, newest, sizeof(newest))) newest[0] = '\0';
		}
		else if(onb_reg_reply_is(k, "first-entry") && v->type == REDIS_REPLY_ARRAY && v->elements >= 1){
			if(!onb_reg_reply_str(v->element[0], first, sizeof(first))) first[0] = '\0';
		}
	}
	freeReplyObject(r);
	if(!onb_stream_id_cmp(newest[0] ? newest : "0-0", last_id, &cmp)){
		return onb_fail(err, ONB_EUNAVAIL, "checking the event stream: malformed id");
	}
	if(cmp <= 0) return ONB_OK; /* nothing was added after our position */
	if(!first[0]){
		/* entries after our position were added, and none is left */
		*gap = true;
		return ONB_OK;
	}
	if(!onb_stream_id_cmp(first, last_id, &cmp)){
		return onb_fail(err, ONB_EUNAVAIL, "checking the event stream: malformed id");
	}
	if(cmp <= 0) return ONB_OK; /* our position is still in the stream */
	if(!strcmp(last_id, "0-0")){
		/* everything is newer than nothing: lost only if entries were dropped */
		*gap = added < 0 || length < 0 || added > length;
		return ONB_OK;
	}
	*gap = true;
	return ONB_OK;
}

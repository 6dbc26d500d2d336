/* Filling and refreshing the admission view from Redis (lib/identity/admview.h).
 * Only the fields admission reads travel: 8 of a device hash's fields. */
#include "identity/admview.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "registry/registry_int.h"

static const char *const view_fields[] = {
	"state", "tenant", "policy", "cert_fp", "cert_fp_next", "birth_fp",
	"rotate_deadline", "rotate_required",
};
#define NFIELDS (sizeof(view_fields) / sizeof(view_fields[0]))


/* From an HMGET reply over view_fields: ONB_OK, ONB_ENOTFOUND (no state:
 * the device does not exist), ONB_EINVAL (a field that does not fit). */
static int parse(const char *id, const redisReply *r, struct onb_device *out)
{
	char state[32], flag[8];

	if(r->type != REDIS_REPLY_ARRAY || r->elements != NFIELDS) return ONB_EUNAVAIL;
	if(r->element[0]->type == REDIS_REPLY_NIL) return ONB_ENOTFOUND;
	memset(out, 0, sizeof(*out));
	memcpy(out->id, id, strlen(id) + 1);
	if(!onb_reg_reply_str(r->element[0], state, sizeof(state))) state[0] = '\0';
	out->state = onb_state_parse(state); /* unknown: invalid, may not connect */
	if(!onb_reg_reply_str(r->element[1], out->tenant, sizeof(out->tenant))
			|| !onb_reg_reply_str(r->element[2], out->policy, sizeof(out->policy))
			|| !onb_reg_reply_str(r->element[3], out->cert_fp, sizeof(out->cert_fp))
			|| !onb_reg_reply_str(r->element[4], out->cert_fp_next, sizeof(out->cert_fp_next))
			|| !onb_reg_reply_str(r->element[5], out->birth_fp, sizeof(out->birth_fp))
			|| !onb_reg_reply_i64(r->element[6], &out->rotate_deadline_ms)
			|| !onb_reg_reply_str(r->element[7], flag, sizeof(flag))){
		return ONB_EINVAL;
	}
	out->rotate_required = !strcmp(flag, "1");
	return ONB_OK;
}

int onb_admview_read_device(redisContext *rc, const char *id, struct onb_device *out,
		struct onb_err *err)
{
	redisReply *r;
	int ret;

	r = onb_reg_device_fields(rc, id, view_fields, NFIELDS, &ret, err);
	if(!r) return ret;
	ret = parse(id, r, out);
	freeReplyObject(r);
	if(ret == ONB_ENOTFOUND) return onb_fail(err, ret, "unknown device %s", id);
	if(ret == ONB_EINVAL) return onb_fail(err, ONB_EINTERNAL, "device %s: corrupt record", id);
	if(ret != ONB_OK) return onb_fail(err, ret, "device %s: unexpected reply from Redis", id);
	return ONB_OK;
}

static void scan_args(struct onb_args *a, const char *cursor, const char *count)
{
	onb_args_scan(a, cursor, "onb:dev:{*", count);
}

/* Reads a SCAN reply: the next cursor, and the page (owned by the caller). */
static int read_scan(redisContext *rc, char cursor[ONB_SCAN_CURSOR_MAX], redisReply **page,
		struct onb_err *err)
{
	const redisReply *keys;
	void *reply = NULL;
	redisReply *r;

	if(redisGetReply(rc, &reply) != REDIS_OK || !reply){
		return onb_fail(err, ONB_EUNAVAIL, "scanning devices: %s", rc->err ? rc->errstr : "no reply");
	}
	r = reply;
	if(!onb_reg_scan_reply(r, cursor, &keys)){
		freeReplyObject(r);
		return onb_fail(err, ONB_EUNAVAIL, "scanning devices: unexpected reply from Redis");
	}
	*page = r;
	return ONB_OK;
}

/* Sends one HMGET per device key of a SCAN page and, behind them, the next
 * SCAN (so that Redis works on it while the replies are parsed here); then
 * reads the HMGET replies in order and puts each device in v. The caller
 * reads the SCAN reply. */
static int load_page(redisContext *rc, struct onb_admview *v, const redisReply *keys,
		const char *next_cursor, const char *count, size_t *skipped, struct onb_err *err)
{
	char (*ids)[ONB_ID_MAX + 1] = malloc(keys->elements * sizeof(*ids) + 1);
	size_t n = 0, got = 0;
	int ret = ONB_OK;
	struct onb_args a;

	if(!ids) return onb_fail(err, ONB_EINTERNAL, "out of memory");
	for(size_t i = 0; i < keys->elements; i++){
		if(!onb_reg_device_id_of_key(keys->element[i], ids[n])) continue;
		onb_args_hmget(&a, keys->element[i]->str, view_fields, NFIELDS);
		if(redisAppendCommandArgv(rc, a.n, a.v, NULL) != REDIS_OK){
			ret = onb_fail(err, ONB_EUNAVAIL, "Redis: %s", rc->errstr);
			goto cleanup;
		}
		n++;
	}
	if(next_cursor){
		scan_args(&a, next_cursor, count);
		if(redisAppendCommandArgv(rc, a.n, a.v, NULL) != REDIS_OK){
			ret = onb_fail(err, ONB_EUNAVAIL, "Redis: %s", rc->errstr);
			goto cleanup;
		}
	}
	for(got = 0; got < n; got++){
		void *reply = NULL;
		struct onb_device d;
		int r;

		if(redisGetReply(rc, &reply) != REDIS_OK || !reply){
			ret = onb_fail(err, ONB_EUNAVAIL, "Redis: %s", rc->err ? rc->errstr : "no reply");
			goto cleanup;
		}
		r = parse(ids[got], reply, &d);
		freeReplyObject(reply);
		if(r == ONB_EUNAVAIL){
			/* an error reply: the rest of the pipeline is still to be read */
			ret = onb_fail(err, ONB_EUNAVAIL, "device %s: unexpected reply from Redis", ids[got]);
			continue;
		}
		if(r == ONB_ENOTFOUND) continue; /* deleted since SCAN named it */
		if(r == ONB_OK) r = onb_admview_put(v, &d);
		if(r == ONB_EINTERNAL && ret == ONB_OK) ret = onb_fail(err, ONB_EINTERNAL, "out of memory");
		else if(r != ONB_OK && skipped) (*skipped)++;
	}
cleanup:
	free(ids);
	return ret;
}

int onb_admview_load(redisContext *rc, struct onb_admview *v, int batch,
		const atomic_bool *stop, size_t *skipped, struct onb_err *err)
{
	char cursor[ONB_SCAN_CURSOR_MAX] = "0", count[16];
	struct onb_args a;
	int ret = ONB_OK;

	if(rc->err) return onb_fail(err, ONB_EUNAVAIL, "Redis connection unusable");
	snprintf(count, sizeof(count), "%d", batch > 0 ? batch : 1000);
	scan_args(&a, cursor, count);
	if(redisAppendCommandArgv(rc, a.n, a.v, NULL) != REDIS_OK){
		return onb_fail(err, ONB_EUNAVAIL, "Redis: %s", rc->errstr);
	}
	for(;;){
		redisReply *page = NULL;
		bool last;

		ret = read_scan(rc, cursor, &page, err);
		if(ret != ONB_OK) return ret;
		last = !strcmp(cursor, "0");
		if(stop && atomic_load(stop)){
			freeReplyObject(page);
			return onb_fail(err, ONB_EUNAVAIL, "stopped");
		}
		ret = load_page(rc, v, page->element[1], last ? NULL : cursor, count, skipped, err);
		freeReplyObject(page);
		/* a failure leaves replies unread: the caller drops rc */
		if(ret != ONB_OK || last) return ret;
	}
}

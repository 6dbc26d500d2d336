#include "onb/policystore.h"
#include "onb/vocab.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onb/policy.h"
#include "registry_int.h"

bool onb_policy_name_valid(const char *name)
{
	size_t n = 0;

	if(!name) return false;
	for(; name[n]; n++){
		unsigned char c = (unsigned char)name[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
			|| c == '.' || c == '_' || c == '-';
		if(!ok || n >= ONB_NAME_MAX) return false;
	}
	return n > 0;
}

int onb_policystore_get(redisContext *rc, const char *name, char **json_out, size_t *len_out,
		struct onb_err *err)
{
	char key[sizeof("onb:policy:") + ONB_NAME_MAX];
	const char *argv[2] = { "GET", key };
	redisReply *r;
	int ret;

	if(!onb_policy_name_valid(name)) return onb_fail(err, ONB_EINVAL, "bad policy name");
	if(!rc || rc->err) return onb_fail(err, ONB_EUNAVAIL, "no usable Redis connection");
	snprintf(key, sizeof(key), ONB_KEY_POLICY_FMT, name);
	errno = 0;
	r = redisCommandArgv(rc, 2, argv, NULL);
	if(!r) return onb_fail(err, ONB_EUNAVAIL, "reading policy %s: %s", name, rc->errstr);
	if(r->type == REDIS_REPLY_NIL){
		ret = onb_fail(err, ONB_ENOTFOUND, "no policy named %s", name);
	}else if(r->type != REDIS_REPLY_STRING || r->len > ONB_POLICY_MAX_BYTES){
		ret = onb_fail(err, ONB_EUNAVAIL, "reading policy %s: unexpected reply", name);
	}else{
		char *copy = malloc(r->len + 1);
		if(!copy){
			ret = onb_fail(err, ONB_EINTERNAL, "out of memory");
		}else{
			memcpy(copy, r->str, r->len);
			copy[r->len] = '\0';
			*json_out = copy;
			*len_out = r->len;
			ret = ONB_OK;
		}
	}
	freeReplyObject(r);
	return ret;
}

static int script_status(redisReply *r, const char *what, const char *name, struct onb_err *err)
{
	int ret;

	if(onb_reg_reply_is(r, "ok")) ret = ONB_OK;
	else if(onb_reg_reply_is(r, "notfound")) ret = onb_fail(err, ONB_ENOTFOUND, "unknown %s %s", what, name);
	else ret = onb_fail(err, ONB_EUNAVAIL, "%s %s: unexpected reply from the script", what, name);
	freeReplyObject(r);
	return ret;
}

static void push_tail(struct onb_args *a, const struct onb_actor *actor)
{
	onb_args_push_i64(a, onb_now_ms());
	onb_args_push(a, actor->who);
	onb_args_push(a, actor->source ? actor->source : "");
	onb_args_push_i64(a, ONB_EVENTS_MAXLEN);
	onb_args_push_i64(a, onb_audit_minid());
}

static int policy_write(redisContext *rc, const char *name, const char *op, const char *json,
		size_t len, const struct onb_actor *actor, struct onb_err *err)
{
	char key[sizeof("onb:policy:") + ONB_NAME_MAX];
	struct onb_args a;
	redisReply *r;
	int ret;

	snprintf(key, sizeof(key), ONB_KEY_POLICY_FMT, name);
	onb_args_script(&a);
	onb_args_push(&a, key);
	onb_args_push(&a, ONB_KEY_EVENTS);
	onb_args_push(&a, ONB_KEY_AUDIT);
	onb_args_push(&a, name);
	onb_args_push(&a, op);
	onb_args_push_len(&a, json, len);
	push_tail(&a, actor);
	r = onb_reg_script(rc, ONB_SCRIPT_POLICY_WRITE, &a, 3, "writing policy", &ret, err);
	if(!r) return ret;
	return script_status(r, "policy", name, err);
}

int onb_policystore_put(redisContext *rc, const char *name, const char *json, size_t len,
		const struct onb_actor *actor, struct onb_err *err)
{
	struct onb_policy *doc = NULL;
	int ret;

	if(!onb_policy_name_valid(name)) return onb_fail(err, ONB_EINVAL, "bad policy name (expected [A-Za-z0-9._-]{1,%d})", ONB_NAME_MAX);
	ret = onb_reg_actor_check(actor, err);
	if(ret != ONB_OK) return ret;
	/* An invalid document never reaches Redis; the refusal is audited. */
	ret = onb_policy_parse(json, len, &doc, err);
	onb_policy_free(doc);
	if(ret != ONB_OK){
		struct onb_audit_entry e = {
			.actor = actor->who, .source = actor->source, .action = ONB_AA(POLICY_PUT),
			.result = "refused", .reason = err->msg,
		};
		struct onb_err ignored;
		onb_audit_append(rc, &e, &ignored);
		return ONB_EINVAL;
	}
	return policy_write(rc, name, "put", json, len, actor, err);
}

int onb_policystore_delete(redisContext *rc, const char *name, const struct onb_actor *actor,
		struct onb_err *err)
{
	int ret;

	if(!onb_policy_name_valid(name)) return onb_fail(err, ONB_EINVAL, "bad policy name");
	ret = onb_reg_actor_check(actor, err);
	if(ret != ONB_OK) return ret;
	return policy_write(rc, name, "delete", "", 0, actor, err);
}

int onb_policystore_list(redisContext *rc, int (*cb)(const char *name, void *arg), void *arg,
		struct onb_err *err)
{
	char cursor[32] = "0";
	int ret = ONB_OK;

	do{
		const char *argv[6] = { "SCAN", cursor, "MATCH", "onb:policy:*", "COUNT", "1000" };
		redisReply *r;

		if(!rc || rc->err) return onb_fail(err, ONB_EUNAVAIL, "no usable Redis connection");
		r = redisCommandArgv(rc, 6, argv, NULL);
		if(!r) return onb_fail(err, ONB_EUNAVAIL, "listing policies: %s", rc->errstr);
		if(r->type != REDIS_REPLY_ARRAY || r->elements != 2
				|| r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY
				|| r->element[0]->len >= sizeof(cursor)){
			freeReplyObject(r);
			return onb_fail(err, ONB_EUNAVAIL, "listing policies: unexpected reply");
		}
		memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
		for(size_t i = 0; i < r->element[1]->elements && ret == ONB_OK; i++){
			const redisReply *k = r->element[1]->element[i];
			const char *name;
			if(k->type != REDIS_REPLY_STRING || k->len <= strlen("onb:policy:")) continue;
			name = k->str + strlen("onb:policy:");
			if(onb_policy_name_valid(name)) ret = cb(name, arg);
		}
		freeReplyObject(r);
	}while(ret == ONB_OK && strcmp(cursor, "0") != 0);
	return ret;
}

int onb_registry_set_policy(redisContext *rc, const char *id, const char *policy,
		const struct onb_actor *actor, struct onb_err *err)
{
	char devkey[ONB_ID_MAX + 16];
	struct onb_args a;
	redisReply *r;
	int ret;

	if(!onb_id_valid(id)) return onb_fail(err, ONB_EINVAL, "invalid device id");
	if(*policy && !onb_policy_name_valid(policy)) return onb_fail(err, ONB_EINVAL, "bad policy name");
	ret = onb_reg_actor_check(actor, err);
	if(ret != ONB_OK) return ret;
	snprintf(devkey, sizeof(devkey), ONB_KEY_DEVICE_FMT, id);
	onb_args_script(&a);
	onb_args_push(&a, devkey);
	onb_args_push(&a, ONB_KEY_EVENTS);
	onb_args_push(&a, ONB_KEY_AUDIT);
	onb_args_push(&a, id);
	onb_args_push(&a, policy);
	push_tail(&a, actor);
	r = onb_reg_script(rc, ONB_SCRIPT_SET_POLICY, &a, 3, "setting device policy", &ret, err);
	if(!r) return ret;
	return script_status(r, "device", id, err);
}

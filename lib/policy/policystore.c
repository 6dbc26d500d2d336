/* Policy documents in the registry (onb:policy:<name>) and a device's
 * explicit policy (contract: policy/policystore.h; schema: docs/registry.md). */
#include "policy/policystore.h"
#include "core/vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "policy/policy.h"
#include "registry/registry_int.h"

/* The one rule for policy names, for every part that stores, names or
 * reads one (this store, templates, RegisterThing, the plugin's
 * configuration and events), so that a name accepted anywhere is one the
 * store can hold: the documented [A-Za-z0-9._-]{1,64} (docs/policies.md).
 * No ':' (unlike device and tenant ids) and no glob character, so that
 * "onb:policy:*" lists exactly the documents. */
bool onb_policy_name_valid(const char *name)
{
	return onb_id_valid(name) && strlen(name) <= ONB_NAME_MAX && !strchr(name, ':');
}

int onb_policystore_get(redisContext *rc, const char *name, char **json_out, size_t *len_out,
		struct onb_err *err)
{
	char key[sizeof("onb:policy:") + ONB_NAME_MAX], what[sizeof("reading policy ") + ONB_NAME_MAX];
	redisReply *r;
	int ret;

	if(!onb_policy_name_valid(name)) return onb_fail(err, ONB_EINVAL, "bad policy name");
	snprintf(key, sizeof(key), ONB_KEY_POLICY_FMT, name);
	snprintf(what, sizeof(what), "reading policy %s", name);
	r = onb_reg_commandv(rc, what, &ret, err, "GET", key, NULL);
	if(!r) return ret;
	if(r->type == REDIS_REPLY_NIL){
		ret = onb_fail(err, ONB_ENOTFOUND, "no policy named %s", name);
	}else if(r->type != REDIS_REPLY_STRING || r->len > ONB_POLICY_MAX_BYTES){
		ret = onb_fail(err, ONB_EUNAVAIL, "%s: unexpected reply", what);
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

static int policy_write(redisContext *rc, const char *name, const char *op, const char *json,
		size_t len, const struct onb_actor *actor, struct onb_err *err)
{
	char key[sizeof("onb:policy:") + ONB_NAME_MAX];
	struct onb_args a;
	redisReply *r;
	int ret;

	snprintf(key, sizeof(key), ONB_KEY_POLICY_FMT, name);
	onb_args_script(&a);
	onb_args_pushv(&a, key, ONB_KEY_EVENTS, ONB_KEY_AUDIT, name, op, NULL);
	onb_args_push_len(&a, json, len);
	onb_args_push_common(&a, onb_now_ms(), actor, true);
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
	char cursor[ONB_SCAN_CURSOR_MAX] = "0";
	int ret = ONB_OK;

	do{
		const redisReply *keys;
		struct onb_args a;
		redisReply *r;

		onb_args_scan(&a, cursor, "onb:policy:*", "1000");
		r = onb_reg_command(rc, &a, "listing policies", false, &ret, err);
		if(!r) return ret;
		if(!onb_reg_scan_reply(r, cursor, &keys)){
			freeReplyObject(r);
			return onb_fail(err, ONB_EUNAVAIL, "listing policies: unexpected reply");
		}
		for(size_t i = 0; i < keys->elements && ret == ONB_OK; i++){
			const redisReply *k = keys->element[i];
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
	char devkey[ONB_REG_DEV_KEY_MAX];
	struct onb_args a;
	redisReply *r;
	int ret;

	ret = onb_reg_id_check(id, "device", err);
	if(ret != ONB_OK) return ret;
	if(*policy && !onb_policy_name_valid(policy)) return onb_fail(err, ONB_EINVAL, "bad policy name");
	ret = onb_reg_actor_check(actor, err);
	if(ret != ONB_OK) return ret;
	onb_args_device_script(&a, devkey, id);
	onb_args_push(&a, id);
	onb_args_push(&a, policy);
	onb_args_push_common(&a, onb_now_ms(), actor, true);
	r = onb_reg_script(rc, ONB_SCRIPT_SET_POLICY, &a, 3, "setting device policy", &ret, err);
	if(!r) return ret;
	return script_status(r, "device", id, err);
}

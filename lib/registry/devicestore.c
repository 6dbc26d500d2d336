/* The device store: device records, their certificate index, registration,
 * state changes and listing (contract: registry/registry.h; schema:
 * docs/registry.md), and the pointers a device record holds to other keys
 * (registry_int.h), read before the scripts that follow them. */
#include "registry/registry.h"
#include "registry/registry_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claim/claimcode.h"

_Static_assert(ONB_REG_HASH_HEXLEN == ONB_FP_HEXLEN && ONB_REG_HASH_HEXLEN == ONB_CC_HASH_HEXLEN,
		"struct onb_reg_pointers holds fingerprints and claim-code hashes");

/* ---------------------------------------------------------------- records */

static const char *const dev_fields[] = {
	"state", "tenant", "policy", "cert_fp", "cert_fp_next", "cert_serial", "not_after",
	"created", "updated", "birth_fp", "batch", "reason", "provisioned", "claimed",
	"cert_serial_next", "not_after_next", "rotate_deadline", "rotate_required", "serial",
};
#define DEV_NFIELDS (sizeof(dev_fields) / sizeof(dev_fields[0]))

/* Fills out from an HMGET reply over dev_fields. ONB_ENOTFOUND when the hash
 * has no state (absent); ONB_EINTERNAL for a record that does not fit. */
static int fill_device(const char *id, const redisReply *r, struct onb_device *out, struct onb_err *err)
{
	struct onb_device d;
	char state[32], flag[8];
	const char *bad = NULL;

	if(r->type != REDIS_REPLY_ARRAY || r->elements != DEV_NFIELDS){
		return onb_fail(err, ONB_EUNAVAIL, "device %s: unexpected reply from Redis", id);
	}
	if(r->element[0]->type == REDIS_REPLY_NIL){
		return onb_fail(err, ONB_ENOTFOUND, "unknown device %s", id);
	}
	memset(&d, 0, sizeof(d));
	memcpy(d.id, id, strlen(id) + 1);
	if(!onb_reg_reply_str(r->element[0], state, sizeof(state))) state[0] = '\0';
	d.state = onb_state_parse(state); /* an unknown state reads as invalid: may not connect */
	if(!onb_reg_reply_str(r->element[1], d.tenant, sizeof(d.tenant))) bad = "tenant";
	else if(!onb_reg_reply_str(r->element[2], d.policy, sizeof(d.policy))) bad = "policy";
	else if(!onb_reg_reply_str(r->element[3], d.cert_fp, sizeof(d.cert_fp))) bad = "cert_fp";
	else if(!onb_reg_reply_str(r->element[4], d.cert_fp_next, sizeof(d.cert_fp_next))) bad = "cert_fp_next";
	else if(!onb_reg_reply_str(r->element[5], d.cert_serial, sizeof(d.cert_serial))) bad = "cert_serial";
	else if(!onb_reg_reply_i64(r->element[6], &d.not_after)) bad = "not_after";
	else if(!onb_reg_reply_i64(r->element[7], &d.created_ms)) bad = "created";
	else if(!onb_reg_reply_i64(r->element[8], &d.updated_ms)) bad = "updated";
	else if(!onb_reg_reply_str(r->element[9], d.birth_fp, sizeof(d.birth_fp))) bad = "birth_fp";
	else if(!onb_reg_reply_str(r->element[10], d.batch, sizeof(d.batch))) bad = "batch";
	else if(!onb_reg_reply_str(r->element[11], d.reason, sizeof(d.reason))) bad = "reason";
	else if(!onb_reg_reply_i64(r->element[12], &d.provisioned_ms)) bad = "provisioned";
	else if(!onb_reg_reply_i64(r->element[13], &d.claimed_ms)) bad = "claimed";
	else if(!onb_reg_reply_str(r->element[14], d.cert_serial_next, ONB_FP_HEXLEN + 1)) bad = "cert_serial_next";
	else if(!onb_reg_reply_i64(r->element[15], &d.not_after_next)) bad = "not_after_next";
	else if(!onb_reg_reply_i64(r->element[16], &d.rotate_deadline_ms)) bad = "rotate_deadline";
	else if(!onb_reg_reply_str(r->element[17], flag, sizeof(flag))) bad = "rotate_required";
	else if(!onb_reg_reply_str(r->element[18], d.serial, sizeof(d.serial))) bad = "serial";
	if(bad){
		return onb_fail(err, ONB_EINTERNAL, "device %s: corrupt record (field %s)", id, bad);
	}
	d.rotate_required = !strcmp(flag, "1");
	*out = d;
	return ONB_OK;
}

redisReply *onb_reg_device_fields(redisContext *rc, const char *id, const char *const *fields, size_t n,
		int *rcode, struct onb_err *err)
{
	char key[ONB_ID_MAX + 16];
	struct onb_args a;

	if(!onb_id_valid(id)){
		*rcode = onb_fail(err, ONB_EINVAL, "invalid device id");
		return NULL;
	}
	snprintf(key, sizeof(key), ONB_KEY_DEVICE_FMT, id);
	onb_args_hmget(&a, key, fields, n);
	return onb_reg_command(rc, &a, "reading device", false, rcode, err);
}

int onb_registry_device_get(redisContext *rc, const char *id,
		struct onb_device *out, struct onb_err *err)
{
	redisReply *r;
	int ret;

	r = onb_reg_device_fields(rc, id, dev_fields, DEV_NFIELDS, &ret, err);
	if(!r) return ret;
	ret = fill_device(id, r, out, err);
	freeReplyObject(r);
	return ret;
}

int onb_registry_device_by_fp(redisContext *rc, const char *fp,
		struct onb_device *out, struct onb_err *err)
{
	char key[ONB_FP_HEXLEN + 16], id[ONB_ID_MAX + 1];
	struct onb_device d;
	redisReply *r;
	int ret;

	if(!onb_reg_fp_valid(fp)) return onb_fail(err, ONB_EINVAL, "invalid certificate fingerprint");
	snprintf(key, sizeof(key), ONB_KEY_FP_FMT, fp);
	r = onb_reg_commandv(rc, "looking up certificate", &ret, err, "GET", key, NULL);
	if(!r) return ret;
	if(r->type == REDIS_REPLY_NIL){
		freeReplyObject(r);
		return onb_fail(err, ONB_ENOTFOUND, "certificate is not bound to any device");
	}
	if(!onb_reg_reply_str(r, id, sizeof(id)) || !onb_id_valid(id)){
		freeReplyObject(r);
		return onb_fail(err, ONB_EINTERNAL, "corrupt certificate index entry");
	}
	freeReplyObject(r);

	/* Second command: the index and the hash live in different slots. */
	ret = onb_registry_device_get(rc, id, &d, err);
	if(ret == ONB_ENOTFOUND){
		return onb_fail(err, ONB_ENOTFOUND, "certificate is bound to device %s, which does not exist", id);
	}
	if(ret != ONB_OK) return ret;
	if(strcmp(d.cert_fp, fp) != 0 && strcmp(d.cert_fp_next, fp) != 0){
		return onb_fail(err, ONB_ENOTFOUND, "stale certificate index: device %s no longer uses it", id);
	}
	/* A rotation's grace period is over for the current certificate (fail
	 * closed: decided here, at every lookup, not by a cleanup job). */
	if(!strcmp(d.cert_fp, fp) && d.rotate_deadline_ms > 0 && onb_now_ms() >= d.rotate_deadline_ms){
		return onb_fail(err, ONB_EREFUSED, "certificate of device %s was retired by a rotation "
				"(grace period over)", id);
	}
	*out = d;
	return ONB_OK;
}

/* The state name in a script reply element, or "invalid". */
static const char *state_of(const redisReply *r)
{
	return onb_state_name(onb_reg_reply_state(r));
}

int onb_registry_register(redisContext *rc, const struct onb_register_req *req,
		const struct onb_actor *actor, struct onb_err *err)
{
	char devkey[ONB_ID_MAX + 16], fpkey[ONB_FP_HEXLEN + 16], sources[128];
	const char *tenant, *serial;
	struct onb_args a;
	redisReply *r;
	int ret;

	if(!req) return onb_fail(err, ONB_EINVAL, "no registration request");
	ret = onb_reg_id_check(req->id, "device", err);
	if(ret != ONB_OK) return ret;
	if(!onb_reg_fp_valid(req->cert_fp)){
		return onb_fail(err, ONB_EINVAL, "invalid certificate fingerprint (expected %d lower-case hex digits)",
				ONB_FP_HEXLEN);
	}
	serial = req->cert_serial ? req->cert_serial : "";
	if(!onb_reg_serial_valid(serial)){
		return onb_fail(err, ONB_EINVAL, "invalid certificate serial (expected up to %d lower-case hex digits)",
				ONB_FP_HEXLEN);
	}
	if(req->not_after < 0) return onb_fail(err, ONB_EINVAL, "invalid certificate expiry");
	if(req->state != ONB_STATE_UNCLAIMED && req->state != ONB_STATE_ACTIVE){
		return onb_fail(err, ONB_EINVAL, "a device is registered as unclaimed or active, not %s",
				onb_state_name(req->state));
	}
	tenant = req->tenant ? req->tenant : "";
	if(*tenant && (ret = onb_reg_id_check(tenant, "tenant", err)) != ONB_OK) return ret;
	if(*tenant && req->state != ONB_STATE_ACTIVE){
		return onb_fail(err, ONB_EINVAL, "a tenant can only be given to an active device");
	}
	ret = onb_reg_actor_check(actor, err);
	if(ret != ONB_OK) return ret;
	onb_state_sources(req->state, sources, sizeof(sources));

	snprintf(devkey, sizeof(devkey), ONB_KEY_DEVICE_FMT, req->id);
	snprintf(fpkey, sizeof(fpkey), ONB_KEY_FP_FMT, req->cert_fp);
	onb_args_script(&a);
	onb_args_pushv(&a, devkey, fpkey, ONB_KEY_EVENTS, ONB_KEY_AUDIT, req->id, req->cert_fp, serial, NULL);
	onb_args_push_i64(&a, req->not_after);
	onb_args_pushv(&a, onb_state_name(req->state), tenant, sources, NULL);
	onb_args_push_common(&a, onb_now_ms(), actor, true);

	r = onb_reg_script(rc, ONB_SCRIPT_REGISTER, &a, 4, "registering device", &ret, err);
	if(!r) return ret;
	if(r->type != REDIS_REPLY_ARRAY || r->elements < 1){
		ret = onb_fail(err, ONB_EUNAVAIL, "registering device: unexpected reply from Redis");
	}else if(onb_reg_reply_is(r->element[0], "ok")){
		ret = ONB_OK;
	}else if(onb_reg_reply_is(r->element[0], "bound") && r->elements == 2){
		char owner[ONB_ID_MAX + 1];
		if(!onb_reg_reply_str(r->element[1], owner, sizeof(owner)) || !onb_id_valid(owner)){
			snprintf(owner, sizeof(owner), "(corrupt index entry)");
		}
		ret = onb_fail(err, ONB_EEXIST, "certificate is already bound to device %s", owner);
	}else if(onb_reg_reply_is(r->element[0], "hascert")){
		ret = onb_fail(err, ONB_EEXIST, "device %s already has an operational certificate", req->id);
	}else if(onb_reg_reply_is(r->element[0], "refused") && r->elements == 2){
		const char *cur = state_of(r->element[1]);
		ret = onb_fail(err, ONB_EREFUSED, "device %s is %s: illegal transition %s -> %s",
				req->id, cur, cur, onb_state_name(req->state));
	}else{
		ret = onb_fail(err, ONB_EUNAVAIL, "registering device: unexpected reply from the script");
	}
	freeReplyObject(r);
	return ret;
}

int onb_registry_set_state(redisContext *rc, const char *id, enum onb_state to,
		const char *reason, const struct onb_actor *actor,
		enum onb_state *from_out, struct onb_err *err)
{
	char devkey[ONB_REG_DEV_KEY_MAX], sources[128];
	struct onb_args a;
	redisReply *r;
	int ret;

	if(!reason) reason = "";
	ret = onb_reg_change_check(id, reason, actor, err);
	if(ret != ONB_OK) return ret;
	if((int)to < 0 || to >= ONB_STATE_COUNT) return onb_fail(err, ONB_EINVAL, "invalid target state");
	onb_state_sources(to, sources, sizeof(sources));

	onb_args_device_script(&a, devkey, id);
	onb_args_pushv(&a, id, onb_state_name(to), sources, reason, NULL);
	onb_args_push_common(&a, onb_now_ms(), actor, true);

	r = onb_reg_script(rc, ONB_SCRIPT_SET_STATE, &a, 3, "changing device state", &ret, err);
	if(!r) return ret;
	if(r->type != REDIS_REPLY_ARRAY || r->elements < 1){
		ret = onb_fail(err, ONB_EUNAVAIL, "changing device state: unexpected reply from Redis");
	}else if(onb_reg_reply_is(r->element[0], "ok") && r->elements == 2){
		if(from_out) *from_out = onb_reg_reply_state(r->element[1]);
		ret = ONB_OK;
	}else if(onb_reg_reply_is(r->element[0], "refused") && r->elements == 2){
		const char *cur = state_of(r->element[1]);
		if(onb_state_parse(cur) == to){
			ret = onb_fail(err, ONB_EREFUSED, "device %s is already %s", id, cur);
		}else{
			ret = onb_fail(err, ONB_EREFUSED, "illegal transition %s -> %s", cur, onb_state_name(to));
		}
	}else if(onb_reg_reply_is(r->element[0], "notfound")){
		ret = onb_fail(err, ONB_ENOTFOUND, "unknown device %s", id);
	}else{
		ret = onb_fail(err, ONB_EUNAVAIL, "changing device state: unexpected reply from the script");
	}
	freeReplyObject(r);
	return ret;
}

/* ------------------------------------------------------------------- list */

/* A set of device ids: SCAN may return a key more than once. */
struct idset {
	char **slot;
	size_t cap, n;
};

/* 1 when added, 0 when already present, -1 when out of memory. */
static int idset_add(struct idset *set, const char *id)
{
	if((set->n + 1) * 2 > set->cap){
		size_t cap = set->cap ? set->cap * 2 : 1024;
		char **slot = calloc(cap, sizeof(*slot));
		if(!slot) return -1;
		for(size_t i = 0; i < set->cap; i++){
			if(!set->slot[i]) continue;
			size_t j = onb_hash_str(set->slot[i]) & (cap - 1);
			while(slot[j]) j = (j + 1) & (cap - 1);
			slot[j] = set->slot[i];
		}
		free(set->slot);
		set->slot = slot;
		set->cap = cap;
	}
	size_t j = onb_hash_str(id) & (set->cap - 1);
	while(set->slot[j]){
		if(!strcmp(set->slot[j], id)) return 0;
		j = (j + 1) & (set->cap - 1);
	}
	size_t len = strlen(id) + 1;
	set->slot[j] = malloc(len);
	if(!set->slot[j]) return -1;
	memcpy(set->slot[j], id, len);
	set->n++;
	return 1;
}

static void idset_free(struct idset *set)
{
	for(size_t i = 0; i < set->cap; i++) free(set->slot[i]);
	free(set->slot);
}

bool onb_reg_device_id_of_key(const redisReply *k, char id[ONB_ID_MAX + 1])
{
	static const char prefix[] = "onb:dev:{";
	size_t plen = sizeof(prefix) - 1;

	if(k->type != REDIS_REPLY_STRING || k->len < plen + 2 || k->len - plen - 1 > ONB_ID_MAX) return false;
	if(memcmp(k->str, prefix, plen) != 0 || k->str[k->len - 1] != '}') return false;
	memcpy(id, k->str + plen, k->len - plen - 1);
	id[k->len - plen - 1] = '\0';
	return onb_id_valid(id);
}

#define SCAN_COUNT "1000"

/* Fetches the devices of one SCAN batch with pipelined HMGETs and calls cb
 * for each new one. All replies are read before any callback runs, so an
 * early stop leaves the context clean. */
static int list_batch(redisContext *rc, const redisReply *keys, enum onb_state only,
		struct idset *seen, int (*cb)(const struct onb_device *, void *), void *arg,
		int *stop, struct onb_err *err)
{
	char (*ids)[ONB_ID_MAX + 1] = NULL;
	redisReply **replies = NULL;
	size_t n = 0, got = 0;
	int ret = ONB_OK;

	if(keys->elements == 0) return ONB_OK;
	ids = calloc(keys->elements, sizeof(*ids));
	replies = calloc(keys->elements, sizeof(*replies));
	if(!ids || !replies){
		ret = onb_fail(err, ONB_EINTERNAL, "out of memory");
		goto out;
	}
	for(size_t i = 0; i < keys->elements; i++){
		struct onb_args a;
		int added;

		if(!onb_reg_device_id_of_key(keys->element[i], ids[n])) continue;
		added = idset_add(seen, ids[n]);
		if(added < 0){
			ret = onb_fail(err, ONB_EINTERNAL, "out of memory");
			break;
		}
		if(added == 0) continue;
		onb_args_hmget(&a, keys->element[i]->str, dev_fields, DEV_NFIELDS);
		if(redisAppendCommandArgv(rc, a.n, a.v, a.len) != REDIS_OK){
			ret = onb_fail(err, ONB_EUNAVAIL, "listing devices: %s", rc->errstr);
			break;
		}
		n++;
	}
	/* Read every reply that was queued, even after an error above. */
	for(; got < n; got++){
		void *rep = NULL;
		if(redisGetReply(rc, &rep) != REDIS_OK || !rep){
			if(ret == ONB_OK) ret = onb_fail(err, ONB_EUNAVAIL, "listing devices: %s", rc->errstr);
			break;
		}
		replies[got] = rep;
	}
	if(ret != ONB_OK) goto out;
	for(size_t i = 0; i < n; i++){
		struct onb_device d;
		int r;

		if(replies[i]->type == REDIS_REPLY_ERROR){
			ret = onb_fail(err, ONB_EUNAVAIL, "listing devices: Redis error: %.*s",
					(int)replies[i]->len, replies[i]->str);
			goto out;
		}
		r = fill_device(ids[i], replies[i], &d, err);
		if(r == ONB_ENOTFOUND) continue; /* deleted since the SCAN */
		if(r != ONB_OK){
			ret = r;
			goto out;
		}
		if(only != ONB_STATE_INVALID && d.state != only) continue;
		*stop = cb(&d, arg);
		if(*stop) goto out;
	}
out:
	for(size_t i = 0; i < got; i++) freeReplyObject(replies[i]);
	free(replies);
	free(ids);
	return ret;
}

int onb_registry_list(redisContext *rc, enum onb_state only,
		int (*cb)(const struct onb_device *dev, void *arg), void *arg,
		struct onb_err *err)
{
	char cursor[ONB_SCAN_CURSOR_MAX] = "0";
	struct idset seen = { 0 };
	int ret = ONB_OK, stop = 0;

	if(!cb) return onb_fail(err, ONB_EINVAL, "no callback");
	if(only != ONB_STATE_INVALID && ((int)only < 0 || only >= ONB_STATE_COUNT)){
		return onb_fail(err, ONB_EINVAL, "invalid state filter");
	}
	do{
		const redisReply *keys;
		struct onb_args a;
		redisReply *r;

		onb_args_scan(&a, cursor, "onb:dev:*", SCAN_COUNT);
		r = onb_reg_command(rc, &a, "listing devices", false, &ret, err);
		if(!r) break;
		if(!onb_reg_scan_reply(r, cursor, &keys)){
			freeReplyObject(r);
			ret = onb_fail(err, ONB_EUNAVAIL, "listing devices: unexpected SCAN reply");
			break;
		}
		ret = list_batch(rc, keys, only, &seen, cb, arg, &stop, err);
		freeReplyObject(r);
		if(ret != ONB_OK || stop) break;
	}while(strcmp(cursor, "0") != 0);
	idset_free(&seen);
	if(ret != ONB_OK) return ret;
	return stop;
}

/* ------------------------------------------------------------- pointers */

static bool empty_or_fp(const char *s)
{
	return !*s || onb_reg_fp_valid(s);
}

int onb_reg_read_pointers(redisContext *rc, const char *devkey, const char *id, struct onb_reg_pointers *p,
		struct onb_err *err)
{
	redisReply *r;
	int ret;

	r = onb_reg_commandv(rc, "reading device", &ret, err, "HMGET", devkey, "cert_fp", "cert_fp_next", "claimcode",
			NULL);
	if(!r) return ret;
	if(r->type != REDIS_REPLY_ARRAY || r->elements != 3
			|| !onb_reg_reply_str(r->element[0], p->fp, sizeof(p->fp))
			|| !onb_reg_reply_str(r->element[1], p->next, sizeof(p->next))
			|| !onb_reg_reply_str(r->element[2], p->code, sizeof(p->code))
			|| !empty_or_fp(p->fp) || !empty_or_fp(p->next) || !empty_or_fp(p->code)){
		ret = onb_fail(err, ONB_EINTERNAL, "device %s: corrupt certificate or claim code pointer", id);
	}else{
		ret = ONB_OK;
	}
	freeReplyObject(r);
	return ret;
}

static void key_or(char *dst, size_t len, const char *prefix, const char *hash, const char *fallback)
{
	if(*hash) snprintf(dst, len, "%s%s", prefix, hash);
	else snprintf(dst, len, "%s", fallback);
}

void onb_reg_pointer_keys(const struct onb_reg_pointers *p, const char *devkey, struct onb_reg_pointer_keys *k)
{
	key_or(k->fp, sizeof(k->fp), ONB_KEY_FP_FMT_PREFIX, p->fp, devkey);
	key_or(k->next, sizeof(k->next), ONB_KEY_FP_FMT_PREFIX, p->next, devkey);
	key_or(k->code, sizeof(k->code), ONB_KEY_CC_PREFIX, p->code, devkey);
}


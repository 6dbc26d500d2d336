/* Certificate lifecycle in the registry: rotation and decommission
 * (contract: registry/lifecycle.h; schema: docs/registry.md).
 *
 * Scripts whose keys are named by data in the device record (the certificate
 * fingerprints, the claim code) follow the pattern of lib/claim/claimreg.c: C reads
 * the pointers, passes them as KEYS and ARGV, and the script checks they are
 * still current ({'retry'} otherwise, and C reads again, at most three times).
 *
 * Certificates that stop being valid (superseded by a rotation, retired by a
 * decommission) are put on the CRL in the same script: onb:crl:revoked,
 * whose format lib/pki/crl.h owns and onb_crl_collect reads. */
#include "registry/lifecycle.h"
#include "registry/registry_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claim/claimcode.h"
#include "claim/claimreg.h"
#include "pki/crl.h"
#include "core/ids.h"
#include "registry/state.h"

#define DEV_KEY_MAX ONB_REG_DEV_KEY_MAX
#define FP_KEY_MAX DEV_KEY_MAX /* also holds the device key (fallback of an absent pointer) */
#define ATTEMPTS 3

/* The first element of a script reply, when it is an array. */
static bool status_is(const redisReply *r, const char *s)
{
	return r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && onb_reg_reply_is(r->element[0], s);
}

/* Builds a pointer script's call from the device's pointers as read now
 * (a is fresh from onb_args_script; what it borrows lives in ctx), up to
 * the common arguments, which pointer_script adds; returns the number of
 * KEYS it pushed. */
typedef int (*pointer_call)(struct onb_args *a, const char *devkey, const struct onb_reg_pointers *p, void *ctx);

/* Reads the device's pointers, builds the call, runs the script; again
 * while the script answers {'retry'} (the pointers moved in between), at
 * most ATTEMPTS times. The first other reply (the caller frees it), or NULL
 * with *ret set. */
static redisReply *pointer_script(redisContext *rc, const char *id, const struct onb_actor *actor,
		enum onb_script script, const char *what, pointer_call build, void *ctx, int *ret, struct onb_err *err)
{
	char devkey[DEV_KEY_MAX];
	struct onb_reg_pointers p;

	snprintf(devkey, sizeof(devkey), ONB_KEY_DEVICE_FMT, id);
	for(int attempt = 0; attempt < ATTEMPTS; attempt++){
		struct onb_args a;
		redisReply *rep;
		int nkeys;

		*ret = onb_reg_read_pointers(rc, devkey, id, &p, err);
		if(*ret != ONB_OK) return NULL;
		onb_args_script(&a);
		nkeys = build(&a, devkey, &p, ctx);
		onb_args_push_common(&a, onb_now_ms(), actor, true);
		rep = onb_reg_script(rc, script, &a, nkeys, what, ret, err);
		if(!rep || !status_is(rep, "retry")) return rep;
		freeReplyObject(rep);
	}
	*ret = onb_fail(err, ONB_EUNAVAIL, "%s: device %s keeps changing", what, id);
	return NULL;
}

/* --------------------------------------------------------------- renewal */

static int renewal_check(const struct onb_renewal *r, struct onb_err *err)
{
	int ret;

	if(!r) return onb_fail(err, ONB_EINVAL, "no renewal");
	ret = onb_reg_id_check(r->device_id, "device", err);
	if(ret != ONB_OK) return ret;
	if(!onb_reg_fp_valid(r->requester_fp) || !onb_reg_fp_valid(r->cert_fp)){
		return onb_fail(err, ONB_EINVAL, "invalid certificate fingerprint (expected %d lower-case hex digits)",
				ONB_FP_HEXLEN);
	}
	if(!r->cert_serial || !*r->cert_serial || !onb_reg_serial_valid(r->cert_serial)){
		return onb_fail(err, ONB_EINVAL, "invalid certificate serial");
	}
	if(r->not_after < 0) return onb_fail(err, ONB_EINVAL, "invalid certificate expiry");
	if(r->grace_ms < 1000 || r->grace_ms > (int64_t)ONB_ROTATION_GRACE_MAX_S * 1000){
		return onb_fail(err, ONB_EINVAL, "grace period must be 1 s .. %d days", ONB_ROTATION_GRACE_MAX_S / 86400);
	}
	return ONB_OK;
}

struct record_call {
	const struct onb_renewal *r;
	char newkey[FP_KEY_MAX], oldkey[FP_KEY_MAX];
};

static int record_call(struct onb_args *a, const char *devkey, const struct onb_reg_pointers *p, void *ctx)
{
	struct record_call *c = ctx;
	const struct onb_renewal *r = c->r;

	snprintf(c->oldkey, sizeof(c->oldkey), ONB_KEY_FP_FMT, p->next);
	onb_args_pushv(a, devkey, c->newkey, ONB_KEY_CRL_REVOKED, ONB_KEY_EVENTS, ONB_KEY_AUDIT, NULL);
	if(p->next[0]) onb_args_push(a, c->oldkey);
	onb_args_pushv(a, r->device_id, r->requester_fp, r->cert_fp, r->cert_serial, NULL);
	onb_args_push_i64(a, r->not_after);
	onb_args_push_i64(a, r->grace_ms);
	onb_args_push(a, p->next);
	return p->next[0] ? 6 : 5;
}

int onb_rotation_record(redisContext *rc, const struct onb_renewal *r, const struct onb_actor *actor,
		int64_t *deadline_out, const char **reason_out, struct onb_err *err)
{
	struct record_call c = { .r = r };
	redisReply *rep;
	int64_t deadline = 0;
	int ret = renewal_check(r, err);

	if(ret != ONB_OK) return ret;
	ret = onb_reg_actor_check(actor, err);
	if(ret != ONB_OK) return ret;
	snprintf(c.newkey, sizeof(c.newkey), ONB_KEY_FP_FMT, r->cert_fp);
	rep = pointer_script(rc, r->device_id, actor, ONB_SCRIPT_ROTATE_RECORD, "recording a renewal", record_call, &c,
			&ret, err);
	if(!rep) return ret;
	if(status_is(rep, "ok") && rep->elements == 2 && onb_reg_reply_i64(rep->element[1], &deadline)){
		if(deadline_out) *deadline_out = deadline;
		ret = ONB_OK;
	}else if(status_is(rep, "notfound")){
		if(reason_out) *reason_out = ONB_ROT_NOT_FOUND;
		ret = onb_fail(err, ONB_ENOTFOUND, "unknown device %s", r->device_id);
	}else if(status_is(rep, "state") && rep->elements == 2){
		if(reason_out) *reason_out = ONB_ROT_STATE;
		ret = onb_fail(err, ONB_EREFUSED, "device %s is %s: it cannot renew its certificate",
				r->device_id, onb_state_name(onb_reg_reply_state(rep->element[1])));
	}else if(status_is(rep, "notcurrent")){
		if(reason_out) *reason_out = ONB_ROT_NOT_CURRENT;
		ret = onb_fail(err, ONB_EREFUSED, "the request did not come with the device's current certificate");
	}else if(status_is(rep, "bound")){
		if(reason_out) *reason_out = ONB_ROT_CERT_BOUND;
		ret = onb_fail(err, ONB_EREFUSED, "the new certificate is already bound to a device");
	}else{
		ret = onb_fail(err, ONB_EUNAVAIL, "recording a renewal: unexpected reply from the script");
	}
	freeReplyObject(rep);
	return ret;
}

/* ------------------------------------------------------------- promotion */

struct promote_call {
	const char *id, *fp;
	char oldkey[FP_KEY_MAX];
};

static int promote_call(struct onb_args *a, const char *devkey, const struct onb_reg_pointers *p, void *ctx)
{
	struct promote_call *c = ctx;

	/* no current certificate: KEYS[2] is never touched, name the device key */
	if(p->fp[0]) snprintf(c->oldkey, sizeof(c->oldkey), ONB_KEY_FP_FMT, p->fp);
	else snprintf(c->oldkey, sizeof(c->oldkey), "%s", devkey);
	onb_args_pushv(a, devkey, c->oldkey, ONB_KEY_CRL_REVOKED, ONB_KEY_EVENTS, ONB_KEY_AUDIT, c->id, c->fp, p->fp,
			NULL);
	return 5;
}

int onb_rotation_promote(redisContext *rc, const char *id, const char *fp,
		const struct onb_actor *actor, struct onb_err *err)
{
	struct promote_call c = { .id = id, .fp = fp };
	redisReply *rep;
	int ret = onb_reg_id_check(id, "device", err);

	if(ret != ONB_OK) return ret;
	if(!onb_reg_fp_valid(fp)) return onb_fail(err, ONB_EINVAL, "invalid certificate fingerprint");
	ret = onb_reg_actor_check(actor, err);
	if(ret != ONB_OK) return ret;
	rep = pointer_script(rc, id, actor, ONB_SCRIPT_ROTATE_PROMOTE, "promoting a renewed certificate", promote_call, &c,
			&ret, err);
	if(!rep) return ret;
	if(status_is(rep, "ok")) ret = ONB_OK;
	else if(status_is(rep, "notfound")) ret = onb_fail(err, ONB_ENOTFOUND, "unknown device %s", id);
	else if(status_is(rep, "notnext")){
		ret = onb_fail(err, ONB_EREFUSED, "certificate is not the next certificate of device %s", id);
	}else{
		ret = onb_fail(err, ONB_EUNAVAIL, "promoting a renewed certificate: unexpected reply from the script");
	}
	freeReplyObject(rep);
	return ret;
}

/* ------------------------------------------------------- forced rotation */

int onb_rotation_require(redisContext *rc, const char *id, int64_t within_ms, const char *reason,
		const struct onb_actor *actor, int64_t *deadline_out, struct onb_err *err)
{
	char devkey[DEV_KEY_MAX];
	struct onb_args a;
	redisReply *rep;
	int64_t now = onb_now_ms();
	int ret = onb_reg_change_check(id, reason, actor, err);

	if(ret != ONB_OK) return ret;
	if(within_ms < 1 || within_ms > ONB_ROTATE_WITHIN_MAX_MS){
		return onb_fail(err, ONB_EINVAL, "the rotation window must be 1 ms .. 365 days");
	}
	onb_args_device_script(&a, devkey, id);
	onb_args_push(&a, id);
	onb_args_push_i64(&a, now + within_ms);
	onb_args_push(&a, reason ? reason : "");
	onb_args_push_common(&a, now, actor, true);
	rep = onb_reg_script(rc, ONB_SCRIPT_ROTATE_REQUIRE, &a, 3, "requiring a rotation", &ret, err);
	if(!rep) return ret;
	if(status_is(rep, "ok")){
		if(deadline_out) *deadline_out = now + within_ms;
		ret = ONB_OK;
	}else if(status_is(rep, "notfound")){
		ret = onb_fail(err, ONB_ENOTFOUND, "unknown device %s", id);
	}else if(status_is(rep, "refused") && rep->elements == 2){
		ret = onb_fail(err, ONB_EREFUSED, "device %s is %s without a usable certificate: nothing to rotate",
				id, onb_state_name(onb_reg_reply_state(rep->element[1])));
	}else{
		ret = onb_fail(err, ONB_EUNAVAIL, "requiring a rotation: unexpected reply from the script");
	}
	freeReplyObject(rep);
	return ret;
}

/* ---------------------------------------------------------- decommission */

struct decommission_call {
	const char *id, *reason;
	char sources[128];
	struct onb_reg_pointer_keys k;
};

static int decommission_call(struct onb_args *a, const char *devkey, const struct onb_reg_pointers *p, void *ctx)
{
	struct decommission_call *c = ctx;

	onb_reg_pointer_keys(p, devkey, &c->k);
	onb_args_pushv(a, devkey, c->k.fp, c->k.next, c->k.code, ONB_KEY_CRL_REVOKED, ONB_KEY_EVENTS, ONB_KEY_AUDIT,
			c->id, p->fp, p->next, p->code, c->sources, NULL);
	onb_args_push(a, onb_state_transition_allowed(ONB_STATE_DECOMMISSIONED, ONB_STATE_MANUFACTURED) ? "1" : "0");
	onb_args_push(a, c->reason ? c->reason : "");
	return 7;
}

int onb_device_decommission(redisContext *rc, const char *id, const char *reason,
		const struct onb_actor *actor, struct onb_decommission_result *out, struct onb_err *err)
{
	struct decommission_call c = { .id = id, .reason = reason };
	redisReply *rep;
	int ret = onb_reg_change_check(id, reason, actor, err);

	if(ret != ONB_OK) return ret;
	onb_state_sources(ONB_STATE_DECOMMISSIONED, c.sources, sizeof(c.sources));
	rep = pointer_script(rc, id, actor, ONB_SCRIPT_DECOMMISSION, "decommissioning", decommission_call, &c, &ret, err);
	if(!rep) return ret;
	if(status_is(rep, "ok") && rep->elements == 3){
		struct onb_decommission_result res;

		memset(&res, 0, sizeof(res));
		res.from = onb_reg_reply_state(rep->element[1]);
		if(!onb_reg_reply_str(rep->element[2], res.serials, sizeof(res.serials))) res.serials[0] = '\0';
		if(out) *out = res;
		ret = ONB_OK;
	}else if(status_is(rep, "notfound")){
		ret = onb_fail(err, ONB_ENOTFOUND, "unknown device %s", id);
	}else if(status_is(rep, "refused") && rep->elements == 2){
		ret = onb_fail(err, ONB_EREFUSED, "illegal transition %s -> decommissioned",
				onb_state_name(onb_reg_reply_state(rep->element[1])));
	}else{
		ret = onb_fail(err, ONB_EUNAVAIL, "decommissioning: unexpected reply from the script");
	}
	freeReplyObject(rep);
	return ret;
}

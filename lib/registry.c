/* The device registry in Redis (schema and guarantees: docs/registry.md).
 *
 * Connection errors: any Redis error or timeout makes a function return
 * ONB_EUNAVAIL with one line in err. After a connection-level error
 * (rc->err != 0: timeout, reset, protocol error) hiredis has left the context
 * in an undefined position in the reply stream, so the caller must redisFree
 * it and connect again; every function here refuses a context with rc->err
 * set instead of reading stale replies from it.
 *
 * Every multi-key change is one Lua script (lib/lua/NAME.lua) run with EVALSHA,
 * falling back to EVAL (which also caches it) when the server answers
 * NOSCRIPT. Scripts are handed the wall-clock time and the allowed source
 * states of a transition (from lib/state.c) as arguments. */
#include "onb/registry.h"
#include "registry_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <openssl/evp.h>

extern const char onb_lua_register[];
extern const char onb_lua_set_state[];
extern const char onb_lua_token_issue[];
extern const char onb_lua_register_thing[];
extern const char onb_lua_allow_add[];
extern const char onb_lua_policy_write[];
extern const char onb_lua_set_policy[];
extern const char onb_lua_claimcode_issue[];
extern const char onb_lua_claimcode_revoke[];
extern const char onb_lua_claim_redeem[];
extern const char onb_lua_device_release[];
extern const char onb_lua_device_transfer[];
extern const char onb_lua_rotate_record[];
extern const char onb_lua_rotate_promote[];
extern const char onb_lua_rotate_require[];
extern const char onb_lua_decommission[];

/* ---------------------------------------------------------------- scripts */

static struct {
	const char *body;
	char sha[41]; /* empty when SHA-1 is unavailable: always EVAL then */
} scripts[ONB_SCRIPT_COUNT];

static pthread_once_t scripts_once = PTHREAD_ONCE_INIT;

static void scripts_init(void)
{
	static const char hex[] = "0123456789abcdef";

	scripts[ONB_SCRIPT_REGISTER].body = onb_lua_register;
	scripts[ONB_SCRIPT_SET_STATE].body = onb_lua_set_state;
	scripts[ONB_SCRIPT_TOKEN_ISSUE].body = onb_lua_token_issue;
	scripts[ONB_SCRIPT_REGISTER_THING].body = onb_lua_register_thing;
	scripts[ONB_SCRIPT_ALLOW_ADD].body = onb_lua_allow_add;
	scripts[ONB_SCRIPT_POLICY_WRITE].body = onb_lua_policy_write;
	scripts[ONB_SCRIPT_SET_POLICY].body = onb_lua_set_policy;
	scripts[ONB_SCRIPT_CLAIMCODE_ISSUE].body = onb_lua_claimcode_issue;
	scripts[ONB_SCRIPT_CLAIMCODE_REVOKE].body = onb_lua_claimcode_revoke;
	scripts[ONB_SCRIPT_CLAIM_REDEEM].body = onb_lua_claim_redeem;
	scripts[ONB_SCRIPT_DEVICE_RELEASE].body = onb_lua_device_release;
	scripts[ONB_SCRIPT_DEVICE_TRANSFER].body = onb_lua_device_transfer;
	scripts[ONB_SCRIPT_ROTATE_RECORD].body = onb_lua_rotate_record;
	scripts[ONB_SCRIPT_ROTATE_PROMOTE].body = onb_lua_rotate_promote;
	scripts[ONB_SCRIPT_ROTATE_REQUIRE].body = onb_lua_rotate_require;
	scripts[ONB_SCRIPT_DECOMMISSION].body = onb_lua_decommission;
	for(int i = 0; i < ONB_SCRIPT_COUNT; i++){
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int mdlen = 0;

		scripts[i].sha[0] = '\0';
		if(EVP_Digest(scripts[i].body, strlen(scripts[i].body), md, &mdlen, EVP_sha1(), NULL) != 1
				|| mdlen != 20){
			continue;
		}
		for(unsigned int b = 0; b < mdlen; b++){
			scripts[i].sha[2 * b] = hex[md[b] >> 4];
			scripts[i].sha[2 * b + 1] = hex[md[b] & 0x0f];
		}
		scripts[i].sha[40] = '\0';
	}
}

const char *onb_reg_script_body(enum onb_script s)
{
	pthread_once(&scripts_once, scripts_init);
	return scripts[s].body;
}

const char *onb_reg_script_sha(enum onb_script s)
{
	pthread_once(&scripts_once, scripts_init);
	return scripts[s].sha;
}

/* ------------------------------------------------------- argument vectors */

void onb_args_push_len(struct onb_args *a, const char *s, size_t len)
{
	if(a->n >= ONB_ARGS_MAX){
		a->overflow = true;
		return;
	}
	a->v[a->n] = s;
	a->len[a->n] = len;
	a->n++;
}

void onb_args_push(struct onb_args *a, const char *s)
{
	onb_args_push_len(a, s, strlen(s));
}

void onb_args_push_i64(struct onb_args *a, int64_t v)
{
	if(a->nnum >= (int)(sizeof(a->num) / sizeof(a->num[0]))){
		a->overflow = true;
		return;
	}
	snprintf(a->num[a->nnum], sizeof(a->num[0]), "%lld", (long long)v);
	onb_args_push(a, a->num[a->nnum++]);
}

void onb_args_xread(struct onb_args *a, int block_ms, int max)
{
	memset(a, 0, sizeof(*a));
	onb_args_push(a, "XREAD");
	if(block_ms > 0){
		onb_args_push(a, "BLOCK");
		onb_args_push_i64(a, block_ms);
	}
	onb_args_push(a, "COUNT");
	onb_args_push_i64(a, max);
	onb_args_push(a, "STREAMS");
}

void onb_args_push_field(struct onb_args *a, const char *name, const char *value)
{
	size_t len;

	if(!value) return;
	len = strlen(value);
	onb_args_push(a, name);
	onb_args_push_len(a, value, len > ONB_ARG_VALUE_MAX ? ONB_ARG_VALUE_MAX : len);
}

/* Sends one command and returns its reply; NULL after writing one line into
 * err (ONB_EUNAVAIL) on a connection error or an error reply. With
 * pass_errors, error replies are returned to the caller instead. */
redisReply *onb_reg_command(redisContext *rc, struct onb_args *a, const char *what,
		bool pass_errors, int *rcode, struct onb_err *err)
{
	redisReply *r;

	*rcode = ONB_EUNAVAIL;
	if(a->overflow){
		*rcode = onb_fail(err, ONB_EINTERNAL, "%s: too many arguments", what);
		return NULL;
	}
	if(!rc){
		onb_fail(err, ONB_EUNAVAIL, "%s: no Redis connection", what);
		return NULL;
	}
	if(rc->err){
		onb_fail(err, ONB_EUNAVAIL, "%s: Redis connection unusable (%s)", what, rc->errstr);
		return NULL;
	}
	errno = 0;
	r = redisCommandArgv(rc, a->n, a->v, a->len);
	if(!r){
		bool timeout = rc->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
		onb_fail(err, ONB_EUNAVAIL, "%s: %s", what,
				timeout ? "Redis timed out" : rc->err ? rc->errstr : "no reply from Redis");
		return NULL;
	}
	if(r->type == REDIS_REPLY_ERROR && !pass_errors){
		onb_fail(err, ONB_EUNAVAIL, "%s: Redis error: %.*s", what, (int)r->len, r->str);
		freeReplyObject(r);
		return NULL;
	}
	*rcode = ONB_OK;
	return r;
}

/* Runs a script: EVALSHA, then EVAL on NOSCRIPT. keys and argv are the
 * script's KEYS and ARGV (all already in `a` after the first three slots). */
redisReply *onb_reg_script(redisContext *rc, enum onb_script script, struct onb_args *a, int nkeys,
		const char *what, int *rcode, struct onb_err *err)
{
	char numkeys[8];
	redisReply *r;

	pthread_once(&scripts_once, scripts_init);
	snprintf(numkeys, sizeof(numkeys), "%d", nkeys);
	a->v[2] = numkeys;
	a->len[2] = strlen(numkeys);
	if(scripts[script].sha[0]){
		a->v[0] = "EVALSHA";
		a->len[0] = 7;
		a->v[1] = scripts[script].sha;
		a->len[1] = 40;
		r = onb_reg_command(rc, a, what, true, rcode, err);
		if(!r) return NULL;
		if(r->type != REDIS_REPLY_ERROR) return r;
		if(r->len < 8 || memcmp(r->str, "NOSCRIPT", 8) != 0){
			*rcode = onb_fail(err, ONB_EUNAVAIL, "%s: Redis error: %.*s", what, (int)r->len, r->str);
			freeReplyObject(r);
			return NULL;
		}
		freeReplyObject(r);
	}
	a->v[0] = "EVAL";
	a->len[0] = 4;
	a->v[1] = scripts[script].body;
	a->len[1] = strlen(scripts[script].body);
	return onb_reg_command(rc, a, what, false, rcode, err);
}

/* Starts an argument vector for onb_reg_script: three slots it fills itself. */
void onb_args_script(struct onb_args *a)
{
	memset(a, 0, sizeof(*a));
	a->n = 3;
}

/* ------------------------------------------------------------ validation */

bool onb_reg_fp_valid(const char *fp)
{
	size_t n = 0;

	if(!fp) return false;
	for(; fp[n]; n++){
		char c = fp[n];
		if(n >= ONB_FP_HEXLEN || !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
	}
	return n == ONB_FP_HEXLEN;
}

bool onb_reg_serial_valid(const char *s)
{
	size_t n = 0;

	for(; s[n]; n++){
		char c = s[n];
		if(n >= ONB_FP_HEXLEN || !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
	}
	return true;
}

/* Free text for reasons: bounded, printable, one line. */
bool onb_reg_text_valid(const char *s, size_t max)
{
	size_t n = 0;

	for(; s[n]; n++){
		unsigned char c = (unsigned char)s[n];
		if(n >= max || c < 0x20 || c == 0x7f) return false;
	}
	return true;
}

int onb_reg_actor_check(const struct onb_actor *actor, struct onb_err *err)
{
	if(!actor || !actor->who || !*actor->who){
		return onb_fail(err, ONB_EINVAL, "an actor is required for the audit stream");
	}
	return ONB_OK;
}

/* Copies a string reply into dst (capacity cap); false when it does not fit
 * or holds a NUL. A NIL reply yields "". */
bool onb_reg_reply_str(const redisReply *r, char *dst, size_t cap)
{
	if(r->type == REDIS_REPLY_NIL){
		dst[0] = '\0';
		return true;
	}
	if(r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) return false;
	if(r->len >= cap || memchr(r->str, '\0', r->len)) return false;
	memcpy(dst, r->str, r->len);
	dst[r->len] = '\0';
	return true;
}

bool onb_reg_reply_is(const redisReply *r, const char *s)
{
	size_t n = strlen(s);
	return (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
		&& r->len == n && memcmp(r->str, s, n) == 0;
}

/* A non-negative decimal integer, or NIL (0). */
bool onb_reg_reply_i64(const redisReply *r, int64_t *out)
{
	char buf[24], *end;
	long long v;

	if(r->type == REDIS_REPLY_NIL){
		*out = 0;
		return true;
	}
	if(!onb_reg_reply_str(r, buf, sizeof(buf)) || !buf[0] || buf[0] < '0' || buf[0] > '9') return false;
	errno = 0;
	v = strtoll(buf, &end, 10);
	if(errno != 0 || *end != '\0' || v < 0) return false;
	*out = (int64_t)v;
	return true;
}

/* ---------------------------------------------------------------- devices */

static const char *const dev_fields[] = {
	"state", "tenant", "policy", "cert_fp", "cert_fp_next", "cert_serial", "not_after",
	"created", "updated", "birth_fp", "batch", "reason", "provisioned", "claimed",
	"cert_serial_next", "not_after_next", "rotate_deadline", "rotate_required", "serial",
};
#define DEV_NFIELDS (sizeof(dev_fields) / sizeof(dev_fields[0]))

static void hmget_args(struct onb_args *a, const char *key)
{
	memset(a, 0, sizeof(*a));
	onb_args_push(a, "HMGET");
	onb_args_push(a, key);
	for(size_t i = 0; i < DEV_NFIELDS; i++) onb_args_push(a, dev_fields[i]);
}

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

int onb_registry_device_get(redisContext *rc, const char *id,
		struct onb_device *out, struct onb_err *err)
{
	char key[ONB_ID_MAX + 16];
	struct onb_args a;
	redisReply *r;
	int ret;

	if(!onb_id_valid(id)) return onb_fail(err, ONB_EINVAL, "invalid device id");
	snprintf(key, sizeof(key), ONB_KEY_DEVICE_FMT, id);
	hmget_args(&a, key);
	r = onb_reg_command(rc, &a, "reading device", false, &ret, err);
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
	struct onb_args a;
	redisReply *r;
	int ret;

	if(!onb_reg_fp_valid(fp)) return onb_fail(err, ONB_EINVAL, "invalid certificate fingerprint");
	snprintf(key, sizeof(key), ONB_KEY_FP_FMT, fp);
	memset(&a, 0, sizeof(a));
	onb_args_push(&a, "GET");
	onb_args_push(&a, key);
	r = onb_reg_command(rc, &a, "looking up certificate", false, &ret, err);
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

/* Returns the state name in a script reply element, or "invalid". */
static const char *state_of(const redisReply *r)
{
	char buf[32];

	if(!onb_reg_reply_str(r, buf, sizeof(buf))) return "invalid";
	return onb_state_name(onb_state_parse(buf));
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
	if(!onb_id_valid(req->id)){
		return onb_fail(err, ONB_EINVAL, "invalid device id (expected [A-Za-z0-9._:-]{1,%d})", ONB_ID_MAX);
	}
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
	if(*tenant && !onb_id_valid(tenant)){
		return onb_fail(err, ONB_EINVAL, "invalid tenant id (expected [A-Za-z0-9._:-]{1,%d})", ONB_ID_MAX);
	}
	if(*tenant && req->state != ONB_STATE_ACTIVE){
		return onb_fail(err, ONB_EINVAL, "a tenant can only be given to an active device");
	}
	ret = onb_reg_actor_check(actor, err);
	if(ret != ONB_OK) return ret;
	onb_state_sources(req->state, sources, sizeof(sources));

	snprintf(devkey, sizeof(devkey), ONB_KEY_DEVICE_FMT, req->id);
	snprintf(fpkey, sizeof(fpkey), ONB_KEY_FP_FMT, req->cert_fp);
	onb_args_script(&a);
	onb_args_push(&a, devkey);
	onb_args_push(&a, fpkey);
	onb_args_push(&a, ONB_KEY_EVENTS);
	onb_args_push(&a, ONB_KEY_AUDIT);
	onb_args_push(&a, req->id);
	onb_args_push(&a, req->cert_fp);
	onb_args_push(&a, serial);
	onb_args_push_i64(&a, req->not_after);
	onb_args_push(&a, onb_state_name(req->state));
	onb_args_push(&a, tenant);
	onb_args_push_i64(&a, onb_now_ms());
	onb_args_push(&a, sources);
	onb_args_push(&a, actor->who);
	onb_args_push(&a, actor->source ? actor->source : "");
	onb_args_push_i64(&a, ONB_EVENTS_MAXLEN);
	onb_args_push_i64(&a, onb_audit_minid());

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
	char devkey[ONB_ID_MAX + 16], sources[128];
	struct onb_args a;
	redisReply *r;
	int ret;

	if(!onb_id_valid(id)){
		return onb_fail(err, ONB_EINVAL, "invalid device id (expected [A-Za-z0-9._:-]{1,%d})", ONB_ID_MAX);
	}
	if((int)to < 0 || to >= ONB_STATE_COUNT) return onb_fail(err, ONB_EINVAL, "invalid target state");
	if(!reason) reason = "";
	if(!onb_reg_text_valid(reason, ONB_REASON_MAX)){
		return onb_fail(err, ONB_EINVAL, "reason must be one line of at most %d printable bytes",
				ONB_REASON_MAX);
	}
	ret = onb_reg_actor_check(actor, err);
	if(ret != ONB_OK) return ret;
	onb_state_sources(to, sources, sizeof(sources));

	snprintf(devkey, sizeof(devkey), ONB_KEY_DEVICE_FMT, id);
	onb_args_script(&a);
	onb_args_push(&a, devkey);
	onb_args_push(&a, ONB_KEY_EVENTS);
	onb_args_push(&a, ONB_KEY_AUDIT);
	onb_args_push(&a, id);
	onb_args_push(&a, onb_state_name(to));
	onb_args_push(&a, sources);
	onb_args_push(&a, reason);
	onb_args_push_i64(&a, onb_now_ms());
	onb_args_push(&a, actor->who);
	onb_args_push(&a, actor->source ? actor->source : "");
	onb_args_push_i64(&a, ONB_EVENTS_MAXLEN);
	onb_args_push_i64(&a, onb_audit_minid());

	r = onb_reg_script(rc, ONB_SCRIPT_SET_STATE, &a, 3, "changing device state", &ret, err);
	if(!r) return ret;
	if(r->type != REDIS_REPLY_ARRAY || r->elements < 1){
		ret = onb_fail(err, ONB_EUNAVAIL, "changing device state: unexpected reply from Redis");
	}else if(onb_reg_reply_is(r->element[0], "ok") && r->elements == 2){
		if(from_out) *from_out = onb_state_parse(state_of(r->element[1]));
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

/* The device id in a key "onb:dev:{ID}", or false. */
static bool id_of_key(const redisReply *k, char id[ONB_ID_MAX + 1])
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

		if(!id_of_key(keys->element[i], ids[n])) continue;
		added = idset_add(seen, ids[n]);
		if(added < 0){
			ret = onb_fail(err, ONB_EINTERNAL, "out of memory");
			break;
		}
		if(added == 0) continue;
		hmget_args(&a, keys->element[i]->str);
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
	char cursor[32] = "0";
	struct idset seen = { 0 };
	int ret = ONB_OK, stop = 0;

	if(!cb) return onb_fail(err, ONB_EINVAL, "no callback");
	if(only != ONB_STATE_INVALID && ((int)only < 0 || only >= ONB_STATE_COUNT)){
		return onb_fail(err, ONB_EINVAL, "invalid state filter");
	}
	do{
		struct onb_args a;
		redisReply *r;

		memset(&a, 0, sizeof(a));
		onb_args_push(&a, "SCAN");
		onb_args_push(&a, cursor);
		onb_args_push(&a, "MATCH");
		onb_args_push(&a, "onb:dev:*");
		onb_args_push(&a, "COUNT");
		onb_args_push(&a, SCAN_COUNT);
		r = onb_reg_command(rc, &a, "listing devices", false, &ret, err);
		if(!r) break;
		if(r->type != REDIS_REPLY_ARRAY || r->elements != 2
				|| !onb_reg_reply_str(r->element[0], cursor, sizeof(cursor))
				|| r->element[1]->type != REDIS_REPLY_ARRAY){
			freeReplyObject(r);
			ret = onb_fail(err, ONB_EUNAVAIL, "listing devices: unexpected SCAN reply");
			break;
		}
		ret = list_batch(rc, r->element[1], only, &seen, cb, arg, &stop, err);
		freeReplyObject(r);
		if(ret != ONB_OK || stop) break;
	}while(strcmp(cursor, "0") != 0);
	idset_free(&seen);
	if(ret != ONB_OK) return ret;
	return stop;
}

/* ------------------------------------------------------------------ audit */

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
	onb_args_push(a, "ts");
	onb_args_push_i64(a, onb_now_ms());
}

int onb_audit_append(redisContext *rc, const struct onb_audit_entry *e, struct onb_err *err)
{
	struct onb_args a;
	redisReply *r;
	int ret;

	if(!e || !e->actor || !e->action || !e->result){
		return onb_fail(err, ONB_EINVAL, "audit entry needs actor, action and result");
	}
	memset(&a, 0, sizeof(a));
	onb_args_push_audit_xadd(&a);
	onb_args_push_audit_fields(&a, e);
	r = onb_reg_command(rc, &a, "appending to the audit stream", false, &ret, err);
	if(!r) return ret;
	ret = r->type == REDIS_REPLY_STRING ? ONB_OK
		: onb_fail(err, ONB_EUNAVAIL, "appending to the audit stream: unexpected reply");
	freeReplyObject(r);
	return ret;
}

/* ----------------------------------------------------------------- events */

/* "<ms>-<seq>" or "<ms>" */
static bool stream_id_valid(const char *s)
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
			|| !onb_reg_reply_str(r->element[0]->element[0], id, sizeof(id)) || !stream_id_valid(id)){
		ret = onb_fail(err, ONB_EUNAVAIL, "reading the tail of %s: unexpected entry", key);
	}else{
		ret = ONB_OK;
	}
	freeReplyObject(r);
	if(ret == ONB_OK) memcpy(last_id, id, ONB_STREAM_ID_MAX);
	return ret;
}

int onb_events_tail(redisContext *rc, char last_id[ONB_STREAM_ID_MAX], struct onb_err *err)
{
	return onb_reg_stream_tail(rc, ONB_KEY_EVENTS, last_id, err);
}

/* Parses one [id, [field, value, ...]] entry. False for a malformed entry
 * (which is skipped, but still advances the reader). */
static bool parse_event(const redisReply *fields, struct onb_event *ev)
{
	bool have_type = false;

	ev->state = ONB_STATE_INVALID;
	if(fields->type != REDIS_REPLY_ARRAY || fields->elements % 2) return false;
	for(size_t i = 0; i + 1 < fields->elements; i += 2){
		const redisReply *k = fields->element[i], *v = fields->element[i + 1];
		if(v->type != REDIS_REPLY_STRING) return false;
		if(onb_reg_reply_is(k, "type")){
			if(!onb_reg_reply_str(v, ev->type, sizeof(ev->type)) || !ev->type[0]) return false;
			have_type = true;
		}else if(onb_reg_reply_is(k, "device")){
			if(!onb_reg_reply_str(v, ev->device, sizeof(ev->device))) return false;
			if(ev->device[0] && !onb_id_valid(ev->device)) return false;
		}else if(onb_reg_reply_is(k, "state")){
			char s[32];
			ev->state = onb_reg_reply_str(v, s, sizeof(s)) ? onb_state_parse(s) : ONB_STATE_INVALID;
		}else if(onb_reg_reply_is(k, "tenant")){
			if(!onb_reg_reply_str(v, ev->tenant, sizeof(ev->tenant))) return false;
		}else if(onb_reg_reply_is(k, "policy")){
			if(!onb_reg_reply_str(v, ev->policy, sizeof(ev->policy))) return false;
		}else if(onb_reg_reply_is(k, "cert_fp")){
			if(!onb_reg_reply_str(v, ev->cert_fp, sizeof(ev->cert_fp))) return false;
		}else if(onb_reg_reply_is(k, "cert_fp_next")){
			if(!onb_reg_reply_str(v, ev->cert_fp_next, sizeof(ev->cert_fp_next))) return false;
		}else if(onb_reg_reply_is(k, "deadline")){
			if(!onb_reg_reply_i64(v, &ev->deadline_ms)) return false;
		}else if(onb_reg_reply_is(k, "rotate")){
			ev->rotate_required = onb_reg_reply_is(v, "required");
		}
		/* other fields: for newer readers */
	}
	return have_type;
}

#define BLOCK_SLACK_MS 1000

/* The socket's receive timeout; zero when none. */
static struct timeval get_timeout(redisContext *rc)
{
	struct timeval tv = { 0, 0 };
	socklen_t len = sizeof(tv);

	if(getsockopt(rc->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) != 0){
		tv.tv_sec = 0;
		tv.tv_usec = 0;
	}
	return tv;
}

redisReply *onb_reg_blocking_command(redisContext *rc, struct onb_args *a, int block_ms, const char *what,
		int *rcode, struct onb_err *err)
{
	struct timeval old = get_timeout(rc);
	bool extended = false;
	redisReply *r;

	/* The command timeout must outlast the BLOCK: extend it for this call.
	 * Redis notices an expired BLOCK only on its next timer tick (every
	 * 1000/hz ms: 100 ms by default, 1 s at hz 1), hence the slack. */
	if(block_ms > 0 && (old.tv_sec || old.tv_usec)){
		int64_t us = (int64_t)old.tv_sec * 1000000 + old.tv_usec + ((int64_t)block_ms + BLOCK_SLACK_MS) * 1000;
		struct timeval tv = { .tv_sec = (time_t)(us / 1000000), .tv_usec = (suseconds_t)(us % 1000000) };
		if(redisSetTimeout(rc, tv) != REDIS_OK){
			*rcode = onb_fail(err, ONB_EUNAVAIL, "%s: cannot set timeout", what);
			return NULL;
		}
		extended = true;
	}
	r = onb_reg_command(rc, a, what, false, rcode, err);
	if(extended && !rc->err && redisSetTimeout(rc, old) != REDIS_OK){
		if(r) freeReplyObject(r);
		*rcode = onb_fail(err, ONB_EUNAVAIL, "%s: cannot restore timeout", what);
		return NULL;
	}
	return r;
}

int onb_events_read(redisContext *rc, char last_id[ONB_STREAM_ID_MAX], int block_ms,
		int max, void (*cb)(const struct onb_event *ev, void *arg), void *arg,
		struct onb_err *err)
{
	char id[ONB_STREAM_ID_MAX];
	struct onb_args a;
	redisReply *r;
	const redisReply *entries;
	int ret, delivered = 0;

	if(!stream_id_valid(last_id)) return onb_fail(err, ONB_EINVAL, "invalid stream position");
	if(max <= 0 || block_ms < 0 || !cb) return onb_fail(err, ONB_EINVAL, "invalid event read arguments");
	if(!rc || rc->err){
		return onb_fail(err, ONB_EUNAVAIL, "reading events: Redis connection unusable");
	}
	memcpy(id, last_id, ONB_STREAM_ID_MAX);
	id[ONB_STREAM_ID_MAX - 1] = '\0';

	onb_args_xread(&a, block_ms, max);
	onb_args_push(&a, ONB_KEY_EVENTS);
	onb_args_push(&a, id);
	r = onb_reg_blocking_command(rc, &a, block_ms, "reading events", &ret, err);
	if(!r) return ret;
	if(r->type == REDIS_REPLY_NIL){
		freeReplyObject(r);
		return 0;
	}
	if(r->type != REDIS_REPLY_ARRAY || r->elements != 1 || r->element[0]->type != REDIS_REPLY_ARRAY
			|| r->element[0]->elements != 2 || r->element[0]->element[1]->type != REDIS_REPLY_ARRAY){
		freeReplyObject(r);
		return onb_fail(err, ONB_EUNAVAIL, "reading events: unexpected XREAD reply");
	}
	entries = r->element[0]->element[1];
	for(size_t i = 0; i < entries->elements; i++){
		const redisReply *e = entries->element[i];
		struct onb_event ev;

		memset(&ev, 0, sizeof(ev));
		if(e->type != REDIS_REPLY_ARRAY || e->elements != 2
				|| !onb_reg_reply_str(e->element[0], ev.stream_id, sizeof(ev.stream_id))
				|| !stream_id_valid(ev.stream_id)){
			freeReplyObject(r);
			return onb_fail(err, ONB_EUNAVAIL, "reading events: malformed stream entry");
		}
		/* advance first: a malformed entry is skipped, never re-read */
		memcpy(last_id, ev.stream_id, ONB_STREAM_ID_MAX);
		if(!parse_event(e->element[1], &ev)) continue;
		cb(&ev, arg);
		delivered++;
	}
	freeReplyObject(r);
	return delivered;
}

/* For the fleet feed (sessionfeed.c), which reads onb:events in the same
 * XREAD as onb:sessions. */
bool onb_reg_stream_id_valid(const char *s)
{
	return stream_id_valid(s);
}

bool onb_reg_parse_event(const redisReply *fields, struct onb_event *ev)
{
	return parse_event(fields, ev);
}

/* The registry's connection to Redis and its script calls: argument
 * vectors, one command, the embedded Lua scripts, input checks and reply
 * readers shared by every file that reads or writes the registry
 * (contract: registry_int.h; schema and guarantees: docs/registry.md). The
 * device store is devicestore.c, the audit stream audit.c, the event stream
 * eventstream.c.
 *
 * Connection errors: any Redis error or timeout makes a function return
 * ONB_EUNAVAIL with one line in err. After a connection-level error
 * (rc->err != 0: timeout, reset, protocol error) hiredis has left the context
 * in an undefined position in the reply stream, so the caller must redisFree
 * it and connect again; every function here refuses a context with rc->err
 * set instead of reading stale replies from it.
 *
 * Every multi-key change is one Lua script (lib/registry/lua/NAME.lua, behind the
 * shared prelude lib/registry/lua/prelude/) run with EVALSHA, falling back to EVAL
 * (which also caches it) when the server answers NOSCRIPT. Scripts are
 * handed the wall-clock time and the allowed source states of a transition
 * (from lib/registry/state.c) as arguments. */
#include "registry/registry.h"
#include "registry/registry_int.h"

#include <errno.h>
#include <stdarg.h>
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

void onb_args_pushv(struct onb_args *a, ...)
{
	const char *s;
	va_list ap;

	va_start(ap, a);
	while((s = va_arg(ap, const char *)) != NULL) onb_args_push(a, s);
	va_end(ap);
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

void onb_args_hmget(struct onb_args *a, const char *key, const char *const *fields, size_t n)
{
	memset(a, 0, sizeof(*a));
	onb_args_push(a, "HMGET");
	onb_args_push(a, key);
	for(size_t i = 0; i < n; i++) onb_args_push(a, fields[i]);
}

void onb_args_scan(struct onb_args *a, const char *cursor, const char *pattern, const char *count)
{
	memset(a, 0, sizeof(*a));
	onb_args_push(a, "SCAN");
	onb_args_push(a, cursor);
	onb_args_push(a, "MATCH");
	onb_args_push(a, pattern);
	onb_args_push(a, "COUNT");
	onb_args_push(a, count);
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

int onb_reg_queue(redisContext *rc, struct onb_args *a, const char *what, struct onb_err *err)
{
	if(a->overflow) return onb_fail(err, ONB_EINTERNAL, "%s: too many arguments", what);
	if(!rc || rc->err) return onb_fail(err, ONB_EUNAVAIL, "%s: Redis connection unusable", what);
	if(redisAppendCommandArgv(rc, a->n, a->v, a->len) != REDIS_OK){
		return onb_fail(err, ONB_EUNAVAIL, "%s: %s", what, rc->err ? rc->errstr : "out of memory");
	}
	return ONB_OK;
}

int onb_reg_queued_reply(redisContext *rc, const char *what, struct onb_err *err)
{
	redisReply *r = NULL;
	int ret = ONB_OK;

	if(!rc) return onb_fail(err, ONB_EUNAVAIL, "%s: no Redis connection", what);
	errno = 0;
	if(redisGetReply(rc, (void **)&r) != REDIS_OK || !r){
		bool timeout = rc->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
		if(!rc->err) rc->err = REDIS_ERR_OTHER; /* a reply that never came: the stream is out of step */
		return onb_fail(err, ONB_EUNAVAIL, "%s: %s", what,
				timeout ? "Redis timed out" : rc->errstr[0] ? rc->errstr : "no reply from Redis");
	}
	if(r->type == REDIS_REPLY_ERROR) ret = onb_fail(err, ONB_EUNAVAIL, "%s: Redis error: %.*s", what, (int)r->len, r->str);
	freeReplyObject(r);
	return ret;
}

redisReply *onb_reg_commandv(redisContext *rc, const char *what, int *rcode, struct onb_err *err, ...)
{
	struct onb_args a;
	const char *s;
	va_list ap;

	memset(&a, 0, sizeof(a));
	va_start(ap, err);
	while((s = va_arg(ap, const char *)) != NULL) onb_args_push(&a, s);
	va_end(ap);
	return onb_reg_command(rc, &a, what, false, rcode, err);
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

void onb_args_device_script(struct onb_args *a, char devkey[ONB_REG_DEV_KEY_MAX], const char *id)
{
	snprintf(devkey, ONB_REG_DEV_KEY_MAX, ONB_KEY_DEVICE_FMT, id);
	onb_args_script(a);
	onb_args_push(a, devkey);
	onb_args_push(a, ONB_KEY_EVENTS);
	onb_args_push(a, ONB_KEY_AUDIT);
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

int onb_reg_id_check(const char *id, const char *what, struct onb_err *err)
{
	if(onb_id_valid(id)) return ONB_OK;
	return onb_fail(err, ONB_EINVAL, "invalid %s id (expected [A-Za-z0-9._:-]{1,%d})", what, ONB_ID_MAX);
}

int onb_reg_reason_check(const char *reason, struct onb_err *err)
{
	if(!reason || onb_reg_text_valid(reason, ONB_REASON_MAX)) return ONB_OK;
	return onb_fail(err, ONB_EINVAL, "reason must be one line of at most %d printable bytes", ONB_REASON_MAX);
}

int onb_reg_actor_check(const struct onb_actor *actor, struct onb_err *err)
{
	if(!actor || !actor->who || !*actor->who){
		return onb_fail(err, ONB_EINVAL, "an actor is required for the audit stream");
	}
	return ONB_OK;
}

int onb_reg_change_check(const char *id, const char *reason, const struct onb_actor *actor, struct onb_err *err)
{
	int ret = onb_reg_id_check(id, "device", err);

	if(ret == ONB_OK) ret = onb_reg_reason_check(reason, err);
	if(ret == ONB_OK) ret = onb_reg_actor_check(actor, err);
	return ret;
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

enum onb_state onb_reg_reply_state(const redisReply *r)
{
	char buf[32];

	if(!onb_reg_reply_str(r, buf, sizeof(buf))) return ONB_STATE_INVALID;
	return onb_state_parse(buf);
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
bool onb_reg_scan_reply(const redisReply *r, char cursor[ONB_SCAN_CURSOR_MAX], const redisReply **keys)
{
	if(r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[1]->type != REDIS_REPLY_ARRAY
			|| !onb_reg_reply_str(r->element[0], cursor, ONB_SCAN_CURSOR_MAX)){
		return false;
	}
	*keys = r->element[1];
	return true;
}

/* ------------------------------------------------------ blocking commands */

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

/* Claim codes and tenants in the registry (lib/claim/claimreg.c) against a real,
 * throwaway redis-server (redis_fixture.c): hash-only storage, redemption,
 * expiry, supersession, refusals, a 100-way race, lockout, release and
 * transfer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "claim/claimreg.h"
#include "policy/policystore.h"
#include "registry/registry.h"
#include "redis_fixture.h"

static const struct onb_actor actor = { .who = "test:unit", .source = "127.0.0.1" };

/* --------------------------------------------------------------- helpers */

/* Creates device id in state (manufactured: an allowlist-style record). */
static void make_device(const char *id, enum onb_state state, unsigned fpn)
{
	char fp[ONB_FP_HEXLEN + 1];
	struct onb_err err;

	if(state == ONB_STATE_MANUFACTURED){
		redisReply *r = redisCommand(rc, "HSET onb:dev:{%s} state manufactured created 1", id);
		assert_non_null(r);
		freeReplyObject(r);
		return;
	}
	snprintf(fp, sizeof(fp), "%064x", fpn);
	struct onb_register_req req = {
		.id = id, .cert_fp = fp, .cert_serial = "7f", .not_after = 1900000000,
		.state = ONB_STATE_UNCLAIMED,
	};
	if(onb_registry_register(rc, &req, &actor, &err) != ONB_OK) fail_msg("register %s: %s", id, err.msg);
	if(state != ONB_STATE_UNCLAIMED && onb_registry_set_state(rc, id, state, NULL, &actor, NULL, &err) != ONB_OK){
		fail_msg("set state %s: %s", id, err.msg);
	}
}

static void issue(const char *id, int64_t ttl_ms, struct onb_claimcode_issued *out)
{
	struct onb_err err;
	if(onb_claimcode_issue(rc, id, ttl_ms, &actor, out, &err) != ONB_OK) fail_msg("issue %s: %s", id, err.msg);
}

/* Redeems code for tenant from source (NULL none) with limits (NULL default). */
static int redeem(const char *code, const char *tenant, const char *source,
		const struct onb_claim_limits *lim, struct onb_claim_result *res, struct onb_err *err)
{
	struct onb_claim_req req = { .code = code, .tenant = tenant, .source = source, .limits = lim };
	memset(res, 0, sizeof(*res));
	memset(err, 0, sizeof(*err));
	return onb_claim_redeem(rc, &req, &actor, res, err);
}

static struct onb_device device(const char *id)
{
	struct onb_device d;
	struct onb_err err;
	if(onb_registry_device_get(rc, id, &d, &err) != ONB_OK) fail_msg("get %s: %s", id, err.msg);
	return d;
}

static struct onb_claimcode_info show(const char *id)
{
	struct onb_claimcode_info i;
	struct onb_err err;
	if(onb_claimcode_show(rc, id, &i, &err) != ONB_OK) fail_msg("show %s: %s", id, err.msg);
	return i;
}

/* A well-formed code nobody issued. */
static void stranger_code(char code[ONB_CC_SYMBOLS + 1])
{
	struct onb_err err;
	assert_int_equal(onb_claimcode_generate(code, &err), ONB_OK);
}

static void hget_str(const char *key, const char *field, char *buf, size_t len)
{
	redisReply *r = redisCommand(rc, "HGET %s %s", key, field);
	assert_non_null(r);
	snprintf(buf, len, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
}

static void expect_refused(int ret, const struct onb_claim_result *res, const char *reason, const char *detail)
{
	assert_int_equal(ret, ONB_EREFUSED);
	assert_non_null(res->reason);
	assert_string_equal(res->reason, reason);
	if(detail) assert_string_equal(res->detail, detail);
}

/* ------------------------------------------------------ hash-only storage */

/* True when hay (len bytes) contains any form of the code. */
static bool holds_code(const char *hay, size_t len, const char *const forms[], size_t nforms)
{
	for(size_t f = 0; f < nforms; f++){
		size_t n = strlen(forms[f]);
		for(size_t i = 0; i + n <= len; i++){
			if(!memcmp(hay + i, forms[f], n)) return true;
		}
	}
	return false;
}

/* Walks a reply tree; fails if any string in it holds a form of the code. */
static void assert_clean(const redisReply *r, const char *const forms[], size_t nforms, const char *key)
{
	if(r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS){
		if(holds_code(r->str, r->len, forms, nforms)) fail_msg("key %s holds the plain code", key);
	}
	if(r->type == REDIS_REPLY_ARRAY){
		for(size_t i = 0; i < r->elements; i++) assert_clean(r->element[i], forms, nforms, key);
	}
}

static void issue_stores_only_the_hash(void **state)
{
	struct onb_claimcode_issued cc;
	char human[ONB_CC_HUMAN_LEN + 1], lower[ONB_CC_SYMBOLS + 1], lhuman[ONB_CC_HUMAN_LEN + 1];
	char uri[ONB_CC_URI_MAX], key[128], buf[128], cursor[32] = "0", code[ONB_CC_SYMBOLS + 1];
	struct onb_claim_result res;
	struct onb_err err;
	int keys = 0;
	(void)state;

	make_device("dev-1", ONB_STATE_UNCLAIMED, 1);
	issue("dev-1", 3600 * 1000, &cc);
	assert_true(onb_claimcode_valid(cc.code));
	memcpy(code, cc.code, sizeof(code));
	/* a redemption and a refused one, so that the streams hold claim entries too */
	assert_int_equal(redeem(code, "acme", "10.0.0.1", NULL, &res, &err), ONB_OK);
	expect_refused(redeem(code, "acme", "10.0.0.1", NULL, &res, &err), &res, ONB_CLAIM_INVALID, "used");

	onb_claimcode_human(code, human);
	for(int i = 0; i <= ONB_CC_SYMBOLS; i++) lower[i] = (char)tolower((unsigned char)code[i]);
	for(int i = 0; i <= ONB_CC_HUMAN_LEN; i++) lhuman[i] = (char)tolower((unsigned char)human[i]);
	assert_int_equal(onb_claimcode_link(NULL, "dev-1", code, uri, sizeof(uri), &err), ONB_OK);
	/* any 12 consecutive symbols would already be too much */
	char part1[13], part2[13];
	memcpy(part1, code, 12);
	part1[12] = '\0';
	memcpy(part2, code + 12, 12);
	part2[12] = '\0';
	const char *const forms[] = { code, human, lower, lhuman, uri, part1, part2 };

	/* every key name and every value of the database */
	do{
		redisReply *r = redisCommand(rc, "SCAN %s COUNT 100", cursor);
		assert_non_null(r);
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for(size_t i = 0; i < r->element[1]->elements; i++){
			const redisReply *k = r->element[1]->element[i];
			redisReply *t = redisCommand(rc, "TYPE %b", k->str, k->len), *v = NULL;
			assert_clean(k, forms, 7, k->str);
			if(!strcmp(t->str, "string")) v = redisCommand(rc, "GET %b", k->str, k->len);
			else if(!strcmp(t->str, "hash")) v = redisCommand(rc, "HGETALL %b", k->str, k->len);
			else if(!strcmp(t->str, "stream")) v = redisCommand(rc, "XRANGE %b - +", k->str, k->len);
			else if(!strcmp(t->str, "set")) v = redisCommand(rc, "SMEMBERS %b", k->str, k->len);
			else if(!strcmp(t->str, "list")) v = redisCommand(rc, "LRANGE %b 0 -1", k->str, k->len);
			else if(!strcmp(t->str, "zset")) v = redisCommand(rc, "ZRANGE %b 0 -1", k->str, k->len);
			else fail_msg("unexpected key type %s", t->str);
			assert_non_null(v);
			assert_clean(v, forms, 7, k->str);
			freeReplyObject(v);
			freeReplyObject(t);
			keys++;
		}
		freeReplyObject(r);
	}while(strcmp(cursor, "0") != 0);
	assert_true(keys >= 5); /* dev, fp, cc, events, audit */

	/* the record: named by the hash, pointed to by the device, expiring */
	snprintf(key, sizeof(key), "onb:cc:%s", cc.hash);
	hget_str(key, "device", buf, sizeof(buf));
	assert_string_equal(buf, "dev-1");
	hget_str("onb:dev:{dev-1}", "claimcode", buf, sizeof(buf));
	assert_string_equal(buf, cc.hash);
	long long pttl = int_cmd("PTTL", key);
	assert_true(pttl > ONB_CC_GRACE_MS && pttl <= ONB_CC_GRACE_MS + 3600 * 1000);
}

/* ------------------------------------------------------------- redemption */

static void redeem_success_then_used(void **state)
{
	struct onb_claimcode_issued cc;
	struct onb_claim_result res;
	struct onb_err err;
	long long events;
	(void)state;

	make_device("dev-1", ONB_STATE_UNCLAIMED, 1);
	assert_int_equal(onb_registry_set_policy(rc, "dev-1", "special", &actor, &err), ONB_OK);
	issue("dev-1", 3600 * 1000, &cc);
	events = xlen("onb:events");
	assert_int_equal(redeem(cc.code, "acme", NULL, NULL, &res, &err), ONB_OK);
	assert_string_equal(res.device, "dev-1");
	assert_string_equal(res.tenant, "acme");
	assert_int_equal(res.state, ONB_STATE_ACTIVE);
	assert_null(res.reason);

	struct onb_device d = device("dev-1");
	assert_int_equal(d.state, ONB_STATE_ACTIVE);
	assert_string_equal(d.tenant, "acme");
	assert_string_equal(d.policy, "");   /* explicit policy cleared: device-tenant applies */
	assert_true(d.claimed_ms > 0);
	/* one state event, the fields set_state writes, for live sessions */
	assert_int_equal(xlen("onb:events"), events + 1);
	assert_newest("onb:events", "type", "state");
	assert_newest("onb:events", "device", "dev-1");
	assert_newest("onb:events", "state", "active");
	assert_newest("onb:events", "tenant", "acme");
	assert_newest("onb:events", "policy", "");
	assert_newest("onb:audit", "action", "claim");
	assert_newest("onb:audit", "result", "ok");
	assert_newest("onb:audit", "tenant", "acme");
	assert_newest("onb:audit", "device", "dev-1");
	struct onb_claimcode_info i = show("dev-1");
	assert_string_equal(i.status, "used");
	assert_string_equal(i.tenant, "acme");
	assert_true(i.used_ms > 0);
	assert_int_equal(strlen(i.id), ONB_CC_ID_LEN);
	assert_memory_equal(i.id, cc.hash, ONB_CC_ID_LEN);

	/* a second redemption, by anyone, changes nothing but the audit stream */
	long long audit = xlen("onb:audit");
	expect_refused(redeem(cc.code, "globex", NULL, NULL, &res, &err), &res, ONB_CLAIM_INVALID, "used");
	assert_string_equal(err.msg, "invalid or expired claim code");
	assert_int_equal(xlen("onb:events"), events + 1);
	assert_int_equal(xlen("onb:audit"), audit + 1);
	assert_newest("onb:audit", "result", "refused");
	assert_newest("onb:audit", "reason", "used");
	d = device("dev-1");
	assert_string_equal(d.tenant, "acme");
	/* unknown codes look exactly the same to the redeemer */
	char other[ONB_CC_SYMBOLS + 1];
	stranger_code(other);
	expect_refused(redeem(other, "globex", NULL, NULL, &res, &err), &res, ONB_CLAIM_INVALID, "unknown");
	assert_string_equal(err.msg, "invalid or expired claim code");
}

static void expired_code(void **state)
{
	struct onb_claimcode_issued cc;
	struct onb_claim_result res;
	struct onb_err err;
	char key[128];
	(void)state;

	make_device("dev-1", ONB_STATE_UNCLAIMED, 1);
	issue("dev-1", 1000, &cc);
	assert_string_equal(show("dev-1").status, "issued");
	sleep_ms(1100);
	assert_string_equal(show("dev-1").status, "expired");
	expect_refused(redeem(cc.code, "acme", NULL, NULL, &res, &err), &res, ONB_CLAIM_INVALID, "expired");
	assert_string_equal(err.msg, "invalid or expired claim code");
	assert_int_equal(device("dev-1").state, ONB_STATE_UNCLAIMED);
	/* the record stays for the grace period, so it still answers "expired" */
	snprintf(key, sizeof(key), "onb:cc:%s", cc.hash);
	assert_true(int_cmd("PTTL", key) > ONB_CC_GRACE_MS - 10000);
	/* once it has expired away, show still says expired */
	int_cmd("DEL", key);
	assert_string_equal(show("dev-1").status, "expired");
}

static void superseded_and_revoked(void **state)
{
	struct onb_claimcode_issued a, b;
	struct onb_claim_result res;
	struct onb_err err;
	(void)state;

	make_device("dev-1", ONB_STATE_UNCLAIMED, 1);
	issue("dev-1", 3600 * 1000, &a);
	issue("dev-1", 3600 * 1000, &b);
	assert_string_not_equal(a.code, b.code);
	assert_newest("onb:audit", "action", "claimcode-issue");
	expect_refused(redeem(a.code, "acme", NULL, NULL, &res, &err), &res, ONB_CLAIM_INVALID, "superseded");
	assert_string_equal(show("dev-1").status, "issued");
	assert_int_equal(onb_claimcode_revoke(rc, "dev-1", &actor, &err), ONB_OK);
	assert_newest("onb:audit", "action", "claimcode-revoke");
	struct onb_claimcode_info i = show("dev-1");
	assert_string_equal(i.status, "revoked");
	assert_string_equal(i.reason, "operator");
	assert_true(i.revoked_ms > 0);
	expect_refused(redeem(b.code, "acme", NULL, NULL, &res, &err), &res, ONB_CLAIM_INVALID, "revoked");
	assert_string_equal(err.msg, "invalid or expired claim code");
	assert_int_equal(onb_claimcode_revoke(rc, "dev-1", &actor, &err), ONB_EREFUSED);
	assert_int_equal(device("dev-1").state, ONB_STATE_UNCLAIMED);

	/* refusals of issue and revoke */
	make_device("dev-2", ONB_STATE_UNCLAIMED, 2);
	assert_int_equal(onb_claimcode_revoke(rc, "dev-2", &actor, &err), ONB_ENOTFOUND);
	assert_string_equal(show("dev-2").status, "none");
	assert_int_equal(onb_claimcode_revoke(rc, "nope", &actor, &err), ONB_ENOTFOUND);
	assert_int_equal(onb_claimcode_issue(rc, "nope", 1000, &actor, &a, &err), ONB_ENOTFOUND);
	assert_int_equal(onb_claimcode_issue(rc, "dev-2", 999, &actor, &a, &err), ONB_EINVAL);
	assert_int_equal(onb_claimcode_issue(rc, "dev-2", ONB_CC_TTL_MAX_MS + 1, &actor, &a, &err), ONB_EINVAL);
	assert_int_equal(onb_claimcode_issue(rc, "a/b", 1000, &actor, &a, &err), ONB_EINVAL);
	make_device("dev-3", ONB_STATE_REVOKED, 3);
	assert_int_equal(onb_claimcode_issue(rc, "dev-3", 1000, &actor, &a, &err), ONB_EREFUSED);
	make_device("dev-4", ONB_STATE_ACTIVE, 4);
	assert_int_equal(onb_claimcode_issue(rc, "dev-4", 1000, &actor, &a, &err), ONB_EREFUSED);
}

static void device_not_unclaimed(void **state)
{
	struct onb_claimcode_issued m, r;
	struct onb_claim_result res;
	struct onb_err err;
	long long events;
	(void)state;

	/* a label printed at manufacture: the code waits for provisioning */
	make_device("dev-m", ONB_STATE_MANUFACTURED, 0);
	issue("dev-m", 3600 * 1000, &m);
	events = xlen("onb:events");
	expect_refused(redeem(m.code, "acme", "src", NULL, &res, &err), &res, ONB_CLAIM_NOT_CLAIMABLE, "device-manufactured");
	assert_string_equal(res.device, "dev-m");
	assert_int_equal(res.state, ONB_STATE_MANUFACTURED);
	assert_newest("onb:audit", "reason", "device-manufactured");
	assert_string_equal(show("dev-m").status, "issued");
	assert_int_equal(xlen("onb:events"), events);

	/* a revoked device */
	make_device("dev-r", ONB_STATE_UNCLAIMED, 2);
	issue("dev-r", 3600 * 1000, &r);
	assert_int_equal(onb_registry_set_state(rc, "dev-r", ONB_STATE_REVOKED, NULL, &actor, NULL, &err), ONB_OK);
	expect_refused(redeem(r.code, "acme", "src", NULL, &res, &err), &res, ONB_CLAIM_NOT_CLAIMABLE, "device-revoked");
	assert_int_equal(device("dev-r").state, ONB_STATE_REVOKED);
	assert_string_equal(device("dev-r").tenant, "");
	/* these were not guesses: nothing was counted towards a lockout */
	assert_int_equal(int_cmd("EXISTS", "onb:ccfail:tenant:acme"), 0);

	/* the URI's device must be the code's */
	make_device("dev-u", ONB_STATE_UNCLAIMED, 3);
	issue("dev-u", 3600 * 1000, &r);
	struct onb_claim_req req = { .code = r.code, .device = "dev-m", .tenant = "acme" };
	expect_refused(onb_claim_redeem(rc, &req, &actor, &res, &err), &res, ONB_CLAIM_INVALID, "device-mismatch");
	req.device = "dev-u";
	assert_int_equal(onb_claim_redeem(rc, &req, &actor, &res, &err), ONB_OK);

	/* bad requests are refused before Redis */
	req.tenant = "a b";
	assert_int_equal(onb_claim_redeem(rc, &req, &actor, &res, &err), ONB_EINVAL);
	req.tenant = "acme";
	req.code = "0000";
	assert_int_equal(onb_claim_redeem(rc, &req, &actor, &res, &err), ONB_EINVAL);
}

/* --------------------------------------------------------------- the race */

static void hundred_way_race(void **state)
{
	enum { N = 100 };
	static const struct onb_claim_limits roomy = { 1000, 60000, 60000 };
	struct onb_claimcode_issued cc;
	int go[2], results[2], ok = 0, used = 0, other = 0;
	pid_t pids[N];
	long long events;
	(void)state;

	make_device("dev-race", ONB_STATE_UNCLAIMED, 1);
	issue("dev-race", 3600 * 1000, &cc);
	events = xlen("onb:events");
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(results), 0);
	for(int i = 0; i < N; i++){
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if(pids[i] == 0){
			char tenant[32], c;
			struct onb_claim_req req = { .code = cc.code, .tenant = tenant, .limits = &roomy };
			struct onb_claim_result res;
			struct onb_err err;
			redisContext *mine = connect_test();
			int ret;

			snprintf(tenant, sizeof(tenant), "tenant-%d", i);
			close(go[1]);
			if(read(go[0], &c, 1) != 1) _exit(2); /* all start together */
			ret = mine ? onb_claim_redeem(mine, &req, &actor, &res, &err) : ONB_EUNAVAIL;
			c = ret == ONB_OK ? 'o' : ret == ONB_EREFUSED && !strcmp(res.detail, "used") ? 'u' : 'x';
			if(write(results[1], &c, 1) != 1) _exit(3);
			_exit(0);
		}
	}
	close(go[0]);
	close(results[1]);
	sleep_ms(300); /* every child connected and waiting */
	for(int i = 0; i < N; i++) assert_int_equal(write(go[1], "g", 1), 1);
	close(go[1]);
	for(int i = 0; i < N; i++){
		char c;
		if(read(results[0], &c, 1) != 1) fail_msg("child %d gave no result", i);
		ok += c == 'o';
		used += c == 'u';
		other += c == 'x';
	}
	for(int i = 0; i < N; i++) waitpid(pids[i], NULL, 0);
	close(results[0]);
	print_message("100-way race: %d success, %d 'used', %d other\n", ok, used, other);
	assert_int_equal(ok, 1);
	assert_int_equal(used, N - 1);
	assert_int_equal(xlen("onb:events"), events + 1);
	struct onb_device d = device("dev-race");
	assert_int_equal(d.state, ONB_STATE_ACTIVE);
	assert_int_equal(strncmp(d.tenant, "tenant-", 7), 0);
}

/* ---------------------------------------------------------------- lockout */

static void lockout(void **state)
{
	static const struct onb_claim_limits lim = { 3, 60000, 1500 };
	struct onb_claimcode_issued cc, cc2;
	struct onb_claim_result res;
	struct onb_err err;
	char wrong[ONB_CC_SYMBOLS + 1];
	redisReply *r;
	(void)state;

	make_device("dev-1", ONB_STATE_UNCLAIMED, 1);
	issue("dev-1", 3600 * 1000, &cc);
	for(int i = 0; i < 3; i++){
		stranger_code(wrong);
		expect_refused(redeem(wrong, "mallory", "203.0.113.7", &lim, &res, &err), &res, ONB_CLAIM_INVALID, "unknown");
		assert_int_equal(res.locked_now, i == 2);
	}
	assert_newest("onb:audit", "lockout", "tenant,source");
	/* locked out: even the right code is refused, and the code is untouched */
	expect_refused(redeem(cc.code, "mallory", "203.0.113.7", &lim, &res, &err), &res, ONB_CLAIM_LOCKED, "tenant");
	assert_true(res.retry_after_ms > 0 && res.retry_after_ms <= 1500);
	assert_non_null(strstr(err.msg, "try again in"));
	assert_newest("onb:audit", "reason", "locked-out");
	assert_string_equal(show("dev-1").status, "issued");
	assert_int_equal(device("dev-1").state, ONB_STATE_UNCLAIMED);
	/* the source is locked for mallory only: another tenant at the same
	 * address (one host, a NAT) claims at once, and its failures there
	 * count for itself alone */
	assert_int_equal(int_cmd("EXISTS", "onb:cclock:source:mallory/203.0.113.7"), 1);
	assert_int_equal(int_cmd("EXISTS", "onb:cclock:source:203.0.113.7"), 0);
	make_device("dev-2", ONB_STATE_UNCLAIMED, 2);
	issue("dev-2", 3600 * 1000, &cc2);
	assert_int_equal(redeem(cc2.code, "acme", "203.0.113.7", &lim, &res, &err), ONB_OK);
	assert_string_equal(device("dev-2").tenant, "acme");
	stranger_code(wrong);
	expect_refused(redeem(wrong, "acme", "203.0.113.7", &lim, &res, &err), &res, ONB_CLAIM_INVALID, "unknown");
	assert_false(res.locked_now);
	r = redisCommand(rc, "GET onb:ccfail:source:acme/203.0.113.7");
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	assert_string_equal(r->str, "1");
	freeReplyObject(r);
	/* mallory is still locked, from any source */
	expect_refused(redeem(cc.code, "mallory", "203.0.113.7", &lim, &res, &err), &res, ONB_CLAIM_LOCKED, "tenant");
	expect_refused(redeem(cc.code, "mallory", "198.51.100.1", &lim, &res, &err), &res, ONB_CLAIM_LOCKED, "tenant");
	/* attempts during the lockout do not extend it */
	sleep_ms(1600);
	assert_int_equal(redeem(cc.code, "mallory", "203.0.113.7", &lim, &res, &err), ONB_OK);
	assert_string_equal(device("dev-1").tenant, "mallory");
}

/* The lockout of a tenant at a source alone (the tenant's own counter
 * started earlier and its window ended): the tenant is refused there, with
 * "source", and claims from elsewhere; other tenants there are not affected. */
static void lockout_at_a_source(void **state)
{
	static const struct onb_claim_limits lim = { 3, 60000, 60000 };
	struct onb_claimcode_issued cc;
	struct onb_claim_result res;
	struct onb_err err;
	char wrong[ONB_CC_SYMBOLS + 1];
	redisReply *r;
	(void)state;

	make_device("dev-1", ONB_STATE_UNCLAIMED, 1);
	issue("dev-1", 3600 * 1000, &cc);
	/* as claim_redeem.lua leaves it after the tenant's window restarted */
	r = redisCommand(rc, "SET onb:cclock:source:mallory/203.0.113.7 1 PX 60000");
	freeReplyObject(r);
	expect_refused(redeem(cc.code, "mallory", "203.0.113.7", &lim, &res, &err), &res, ONB_CLAIM_LOCKED, "source");
	assert_string_equal(show("dev-1").status, "issued");
	/* elsewhere mallory's code is looked at (a wrong one: refused as such) */
	stranger_code(wrong);
	expect_refused(redeem(wrong, "mallory", "cli:bob@host", &lim, &res, &err), &res, ONB_CLAIM_INVALID, "unknown");
	assert_int_equal(redeem(cc.code, "acme", "203.0.113.7", &lim, &res, &err), ONB_OK);
}

static void lockout_window_and_unlock(void **state)
{
	static const struct onb_claim_limits lim = { 3, 300, 60000 }, wide = { 3, 60000, 60000 };
	struct onb_claimcode_issued cc;
	struct onb_claim_result res;
	struct onb_err err;
	char wrong[ONB_CC_SYMBOLS + 1];
	int cleared = -1;
	(void)state;

	make_device("dev-1", ONB_STATE_UNCLAIMED, 1);
	issue("dev-1", 3600 * 1000, &cc);
	/* two failures, the window passes, two more: never three in a window */
	for(int round = 0; round < 2; round++){
		for(int i = 0; i < 2; i++){
			stranger_code(wrong);
			expect_refused(redeem(wrong, "t1", NULL, &lim, &res, &err), &res, ONB_CLAIM_INVALID, "unknown");
			assert_false(res.locked_now);
		}
		sleep_ms(400);
	}
	/* three in a window lock (a long window: no race with a slow machine);
	 * an operator lifts the lockout */
	for(int i = 0; i < 3; i++){
		stranger_code(wrong);
		redeem(wrong, "t1", NULL, &wide, &res, &err);
	}
	assert_true(res.locked_now);
	expect_refused(redeem(cc.code, "t1", NULL, &wide, &res, &err), &res, ONB_CLAIM_LOCKED, "tenant");
	assert_int_equal(onb_claim_unlock(rc, "t1", NULL, &actor, &cleared, &err), ONB_OK);
	assert_int_equal(cleared, 1);
	assert_newest("onb:audit", "action", "claim-unlock");
	assert_int_equal(redeem(cc.code, "t1", NULL, &lim, &res, &err), ONB_OK);
	assert_int_equal(onb_claim_unlock(rc, NULL, NULL, &actor, &cleared, &err), ONB_EINVAL);
	/* sources that are not id-shaped are hashed into the key name */
	stranger_code(wrong);
	redeem(wrong, "t2", "cli:alice@host", &lim, &res, &err);
	assert_int_equal(int_cmd("EXISTS", "onb:ccfail:tenant:t2"), 1);
	redisReply *r = redisCommand(rc, "KEYS onb:ccfail:source:t2/h-*");
	assert_int_equal(r->elements, 1);
	freeReplyObject(r);
}

/* fails redeems n wrong codes for tenant at source with limits lim. */
static void fails(const char *tenant, const char *source, int n, const struct onb_claim_limits *lim)
{
	char wrong[ONB_CC_SYMBOLS + 1];
	struct onb_claim_result res;
	struct onb_err err;

	for(int i = 0; i < n; i++){
		stranger_code(wrong);
		redeem(wrong, tenant, source, lim, &res, &err);
	}
}

/* unlock --tenant T: T's own lockout and T's at every source; --source S:
 * every tenant's at S, not their own lockouts; names are matched whole. */
static void unlock_tenants_and_sources(void **state)
{
	static const struct onb_claim_limits lim = { 3, 60000, 60000 };
	struct onb_claimcode_issued cc;
	struct onb_claim_result res;
	struct onb_err err;
	int cleared = -1;
	(void)state;

	make_device("dev-1", ONB_STATE_UNCLAIMED, 1);
	issue("dev-1", 3600 * 1000, &cc);
	fails("a", "mqtt:10.0.0.1", 3, &lim);     /* a: locked, and at 10.0.0.1 */
	fails("b", "mqtt:10.0.0.1", 3, &lim);     /* b: the same */
	fails("xa", "mqtt:110.0.0.1", 1, &lim);   /* names that end like a's and 10.0.0.1 */
	assert_int_equal(int_cmd("EXISTS", "onb:cclock:source:a/mqtt:10.0.0.1"), 1);
	assert_int_equal(int_cmd("EXISTS", "onb:cclock:source:b/mqtt:10.0.0.1"), 1);
	/* the source: a's and b's lockouts there, nothing else */
	assert_int_equal(onb_claim_unlock(rc, NULL, "mqtt:10.0.0.1", &actor, &cleared, &err), ONB_OK);
	assert_int_equal(cleared, 2);
	assert_newest("onb:audit", "reason", "source mqtt:10.0.0.1");
	assert_int_equal(int_cmd("EXISTS", "onb:ccfail:source:xa/mqtt:110.0.0.1"), 1);
	expect_refused(redeem(cc.code, "a", "mqtt:10.0.0.1", &lim, &res, &err), &res, ONB_CLAIM_LOCKED, "tenant");
	/* the tenant: its own lockout */
	assert_int_equal(onb_claim_unlock(rc, "a", NULL, &actor, &cleared, &err), ONB_OK);
	assert_int_equal(cleared, 1);
	assert_newest("onb:audit", "reason", "tenant a");
	/* and its counts, its own and at every source, not xa's */
	fails("a", "mqtt:10.0.0.2", 1, &lim);
	assert_int_equal(int_cmd("EXISTS", "onb:ccfail:source:a/mqtt:10.0.0.2"), 1);
	assert_int_equal(onb_claim_unlock(rc, "a", NULL, &actor, &cleared, &err), ONB_OK);
	assert_int_equal(cleared, 2);
	assert_int_equal(int_cmd("EXISTS", "onb:ccfail:source:a/mqtt:10.0.0.2"), 0);
	assert_int_equal(int_cmd("EXISTS", "onb:ccfail:tenant:a"), 0);
	assert_int_equal(int_cmd("EXISTS", "onb:ccfail:source:xa/mqtt:110.0.0.1"), 1);
	assert_int_equal(int_cmd("EXISTS", "onb:ccfail:tenant:xa"), 1);
	/* b stays locked; a claims */
	expect_refused(redeem(cc.code, "b", "mqtt:10.0.0.3", &lim, &res, &err), &res, ONB_CLAIM_LOCKED, "tenant");
	assert_int_equal(redeem(cc.code, "a", "mqtt:10.0.0.1", &lim, &res, &err), ONB_OK);
	/* nothing to lift: 0, still audited */
	assert_int_equal(onb_claim_unlock(rc, "nobody", "mqtt:192.0.2.1", &actor, &cleared, &err), ONB_OK);
	assert_int_equal(cleared, 0);
	assert_newest("onb:audit", "reason", "tenant nobody, source mqtt:192.0.2.1");
}

/* ------------------------------------------------------ release, transfer */

static void release(void **state)
{
	struct onb_claimcode_issued a, b;
	struct onb_claim_result res;
	struct onb_err err;
	char former[ONB_ID_MAX + 1] = "";
	(void)state;

	make_device("dev-1", ONB_STATE_UNCLAIMED, 1);
	issue("dev-1", 3600 * 1000, &a);
	assert_int_equal(redeem(a.code, "acme", NULL, NULL, &res, &err), ONB_OK);
	assert_int_equal(onb_device_release(rc, "dev-1", "sold", &actor, former, &err), ONB_OK);
	assert_string_equal(former, "acme");
	struct onb_device d = device("dev-1");
	assert_int_equal(d.state, ONB_STATE_UNCLAIMED);
	assert_string_equal(d.tenant, "");
	assert_int_equal(d.claimed_ms, 0);
	assert_newest("onb:events", "state", "unclaimed");
	assert_newest("onb:events", "tenant", "");
	assert_newest("onb:audit", "action", "release");
	assert_newest("onb:audit", "tenant", "acme");
	assert_newest("onb:audit", "reason", "sold");
	/* a new code is required */
	assert_string_equal(show("dev-1").status, "none");
	expect_refused(redeem(a.code, "globex", NULL, NULL, &res, &err), &res, ONB_CLAIM_INVALID, "used");
	issue("dev-1", 3600 * 1000, &b);
	assert_int_equal(redeem(b.code, "globex", NULL, NULL, &res, &err), ONB_OK);
	assert_string_equal(device("dev-1").tenant, "globex");

	/* only an active device is released */
	make_device("dev-2", ONB_STATE_UNCLAIMED, 2);
	assert_int_equal(onb_device_release(rc, "dev-2", NULL, &actor, NULL, &err), ONB_EREFUSED);
	assert_newest("onb:audit", "result", "refused");
	assert_int_equal(onb_device_release(rc, "nope", NULL, &actor, NULL, &err), ONB_ENOTFOUND);
	/* an issued code dies with the release (an operator-activated device) */
	issue("dev-2", 3600 * 1000, &a);
	assert_int_equal(onb_registry_set_state(rc, "dev-2", ONB_STATE_ACTIVE, NULL, &actor, NULL, &err), ONB_OK);
	assert_int_equal(onb_device_release(rc, "dev-2", NULL, &actor, NULL, &err), ONB_OK);
	expect_refused(redeem(a.code, "acme", NULL, NULL, &res, &err), &res, ONB_CLAIM_INVALID, "released");
}

static void transfer(void **state)
{
	struct onb_claimcode_issued a;
	struct onb_claim_result res;
	struct onb_err err;
	char former[ONB_ID_MAX + 1] = "";
	long long events;
	(void)state;

	make_device("dev-1", ONB_STATE_UNCLAIMED, 1);
	issue("dev-1", 3600 * 1000, &a);
	assert_int_equal(redeem(a.code, "acme", NULL, NULL, &res, &err), ONB_OK);
	assert_int_equal(onb_registry_set_policy(rc, "dev-1", "acme-special", &actor, &err), ONB_OK);
	events = xlen("onb:events");
	assert_int_equal(onb_device_transfer(rc, "dev-1", "globex", "merger", &actor, former, &err), ONB_OK);
	assert_string_equal(former, "acme");
	struct onb_device d = device("dev-1");
	assert_int_equal(d.state, ONB_STATE_ACTIVE);
	assert_string_equal(d.tenant, "globex");
	assert_string_equal(d.policy, "");
	assert_int_equal(xlen("onb:events"), events + 1);
	assert_newest("onb:events", "tenant", "globex");
	assert_newest("onb:events", "state", "active");
	assert_newest("onb:audit", "action", "transfer");
	assert_newest("onb:audit", "from_tenant", "acme");
	assert_newest("onb:audit", "to_tenant", "globex");

	assert_int_equal(onb_device_transfer(rc, "dev-1", "globex", NULL, &actor, NULL, &err), ONB_EREFUSED);
	assert_int_equal(onb_device_transfer(rc, "dev-1", "a/b", NULL, &actor, NULL, &err), ONB_EINVAL);
	assert_int_equal(onb_device_transfer(rc, "nope", "globex", NULL, &actor, NULL, &err), ONB_ENOTFOUND);
	make_device("dev-2", ONB_STATE_UNCLAIMED, 2);
	events = xlen("onb:events");
	assert_int_equal(onb_device_transfer(rc, "dev-2", "globex", NULL, &actor, NULL, &err), ONB_EREFUSED);
	assert_int_equal(xlen("onb:events"), events); /* refusals announce nothing */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(issue_stores_only_the_hash, redis_fixture_setup, redis_fixture_teardown),
		cmocka_unit_test_setup_teardown(redeem_success_then_used, redis_fixture_setup, redis_fixture_teardown),
		cmocka_unit_test_setup_teardown(expired_code, redis_fixture_setup, redis_fixture_teardown),
		cmocka_unit_test_setup_teardown(superseded_and_revoked, redis_fixture_setup, redis_fixture_teardown),
		cmocka_unit_test_setup_teardown(device_not_unclaimed, redis_fixture_setup, redis_fixture_teardown),
		cmocka_unit_test_setup_teardown(hundred_way_race, redis_fixture_setup, redis_fixture_teardown),
		cmocka_unit_test_setup_teardown(lockout, redis_fixture_setup, redis_fixture_teardown),
		cmocka_unit_test_setup_teardown(lockout_at_a_source, redis_fixture_setup, redis_fixture_teardown),
		cmocka_unit_test_setup_teardown(lockout_window_and_unlock, redis_fixture_setup, redis_fixture_teardown),
		cmocka_unit_test_setup_teardown(unlock_tenants_and_sources, redis_fixture_setup, redis_fixture_teardown),
		cmocka_unit_test_setup_teardown(release, redis_fixture_setup, redis_fixture_teardown),
		cmocka_unit_test_setup_teardown(transfer, redis_fixture_setup, redis_fixture_teardown),
	};
	return cmocka_run_group_tests(tests, redis_fixture_start, redis_fixture_stop);
}

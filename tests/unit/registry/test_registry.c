/* Registry tests against a real, throwaway redis-server on a free loopback
 * port (started in the group setup, killed in the teardown: redis_fixture.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "registry/redis.h"
#include "registry/registry.h"
#include "redis_fixture.h"

static const struct onb_actor actor = { .who = "test:unit", .source = "127.0.0.1" };

/* --------------------------------------------------------------- helpers */

static void make_fp(char out[ONB_FP_HEXLEN + 1], unsigned n)
{
	snprintf(out, ONB_FP_HEXLEN + 1, "%064x", n);
}

static int reg(const char *id, const char *fp, enum onb_state s, const char *tenant, struct onb_err *err)
{
	struct onb_register_req req = {
		.id = id, .cert_fp = fp, .cert_serial = "0abc", .not_after = 1900000000,
		.state = s, .tenant = tenant,
	};
	return onb_registry_register(rc, &req, &actor, err);
}

struct collected {
	int n;
	struct onb_event ev[16];
};

static void collect(const struct onb_event *ev, void *arg)
{
	struct collected *c = arg;
	if(c->n < 16) c->ev[c->n] = *ev;
	c->n++;
}

/* ------------------------------------------------------------ URL parsing */

static void url_good(void **state)
{
	struct onb_redis_cfg cfg;
	struct onb_err err;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.timeout_ms = 77;
	assert_int_equal(onb_redis_parse_url("redis://127.0.0.1", &cfg, &err), ONB_OK);
	assert_string_equal(cfg.host, "127.0.0.1");
	assert_int_equal(cfg.port, 6379);
	assert_int_equal(cfg.db, 0);
	assert_string_equal(cfg.unix_path, "");
	assert_string_equal(cfg.password, "");
	assert_int_equal(cfg.timeout_ms, 77);

	assert_int_equal(onb_redis_parse_url(ONB_REDIS_DEFAULT_URL, &cfg, &err), ONB_OK);
	assert_int_equal(onb_redis_parse_url("redis://redis.example-1.net:6380/3", &cfg, &err), ONB_OK);
	assert_string_equal(cfg.host, "redis.example-1.net");
	assert_int_equal(cfg.port, 6380);
	assert_int_equal(cfg.db, 3);

	assert_int_equal(onb_redis_parse_url("redis://:s3cr:et/x@h/15", &cfg, &err), ONB_OK);
	assert_string_equal(cfg.user, "");
	assert_string_equal(cfg.password, "s3cr:et/x");
	assert_string_equal(cfg.host, "h");
	assert_int_equal(cfg.db, 15);

	assert_int_equal(onb_redis_parse_url("redis://alice:pw@h:1/", &cfg, &err), ONB_OK);
	assert_string_equal(cfg.user, "alice");
	assert_string_equal(cfg.password, "pw");
	assert_int_equal(cfg.port, 1);
	assert_int_equal(cfg.db, 0);

	assert_int_equal(onb_redis_parse_url("redis://[::1]:65535/2", &cfg, &err), ONB_OK);
	assert_string_equal(cfg.host, "::1");
	assert_int_equal(cfg.port, 65535);
	assert_int_equal(cfg.db, 2);
	assert_string_equal(cfg.user, "");
	assert_string_equal(cfg.password, "");

	assert_int_equal(onb_redis_parse_url("unix:///run/redis/redis.sock", &cfg, &err), ONB_OK);
	assert_string_equal(cfg.unix_path, "/run/redis/redis.sock");
	assert_int_equal(cfg.db, 0);
	assert_int_equal(onb_redis_parse_url("unix:///tmp/r.sock?db=4", &cfg, &err), ONB_OK);
	assert_string_equal(cfg.unix_path, "/tmp/r.sock");
	assert_int_equal(cfg.db, 4);
	assert_int_equal(onb_redis_parse_url("unix://:pw@/tmp/r.sock", &cfg, &err), ONB_OK);
	assert_string_equal(cfg.unix_path, "/tmp/r.sock");
	assert_string_equal(cfg.password, "pw");
	assert_int_equal(cfg.timeout_ms, 77);
}

static void url_bad(void **state)
{
	static const char *const bad[] = {
		"", "http://h", "redis:/h", "rediss://h", "redis://", "redis://:6379",
		"redis://h:0", "redis://h:65536", "redis://h:abc", "redis://h:-1", "redis://h:+80",
		"redis://h: 80", "redis://h:", "redis://h:80:90", "redis://h:99999999999999999999",
		"redis://h/16", "redis://h/-1", "redis://h/1x", "redis://h/0/1", "redis://h/ 1",
		"redis://a@b@h", "redis://user@h", "redis://:@h", "redis://h%20x", "redis://h x",
		"redis://h\n", "redis://h?db=1", "redis://[::1", "redis://[zz]:1", "redis://h#x",
		"redis://u/x:pw@h",
		"unix://", "unix://relative/path", "unix:///", "unix:///p?db=16", "unix:///p?x=1",
		"unix:///p?db=", "unix:///p?db=1&x", "unix:///p#x",
		"unix:///aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	struct onb_redis_cfg cfg;
	struct onb_err err;

	(void)state;
	for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		memset(&cfg, 0x5a, sizeof(cfg));
		err.msg[0] = '\0';
		if(onb_redis_parse_url(bad[i], &cfg, &err) != ONB_EINVAL){
			fail_msg("accepted bad URL '%s'", bad[i]);
		}
		assert_true(strlen(err.msg) > 0);
		assert_null(strchr(err.msg, '\n'));
		/* out untouched on failure */
		assert_int_equal((unsigned char)cfg.host[0], 0x5a);
	}
	assert_int_equal(onb_redis_parse_url(NULL, &cfg, &err), ONB_EINVAL);

	/* the password never appears in an error */
	assert_int_equal(onb_redis_parse_url("redis://:hunter2@h:99999", &cfg, &err), ONB_EINVAL);
	assert_null(strstr(err.msg, "hunter2"));
	assert_int_equal(onb_redis_parse_url("redis://bob:hunter2@h/99", &cfg, &err), ONB_EINVAL);
	assert_null(strstr(err.msg, "hunter2"));
}

/* ------------------------------------------------------------- connecting */

static void connect_closed_port(void **state)
{
	struct onb_redis_cfg cfg = test_cfg(100);
	struct onb_err err;
	int64_t t0;

	(void)state;
	cfg.port = free_port();
	t0 = onb_mono_ms();
	assert_null(onb_redis_connect(&cfg, &err));
	assert_true(onb_mono_ms() - t0 < 1000);
	assert_non_null(strstr(err.msg, "cannot connect"));
}

/* A server that accepts TCP connections (the kernel does) but never answers:
 * the AUTH must time out after timeout_ms. */
static void connect_silent_server_times_out(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
	socklen_t len = sizeof(sa);
	struct onb_redis_cfg cfg = test_cfg(100);
	struct onb_err err;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int64_t t0, took;

	(void)state;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	cfg.port = ntohs(sa.sin_port);
	snprintf(cfg.password, sizeof(cfg.password), "hunter2");

	t0 = onb_mono_ms();
	assert_null(onb_redis_connect(&cfg, &err));
	took = onb_mono_ms() - t0;
	close(fd);
	assert_true(took >= 80);
	assert_true(took < 1500);
	assert_non_null(strstr(err.msg, "timed out"));
	assert_null(strstr(err.msg, "hunter2"));
}

static void connect_auth_and_select(void **state)
{
	struct onb_redis_cfg cfg = test_cfg(1000);
	struct onb_err err;
	redisContext *c;
	redisReply *r;

	(void)state;
	cfg.db = 3;
	c = onb_redis_connect(&cfg, &err);
	assert_non_null(c);
	r = redisCommand(c, "CLIENT INFO");
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	assert_non_null(strstr(r->str, " db=3 "));
	freeReplyObject(r);
	redisFree(c);

	/* the server has no password: AUTH fails, and says so without the password */
	snprintf(cfg.password, sizeof(cfg.password), "hunter2");
	assert_null(onb_redis_connect(&cfg, &err));
	assert_non_null(strstr(err.msg, "AUTH"));
	assert_null(strstr(err.msg, "hunter2"));

	cfg.timeout_ms = 0;
	assert_null(onb_redis_connect(&cfg, &err));
}

/* A connection error makes every later call fail with EUNAVAIL, not read
 * stale replies. */
static void connection_error_is_unavailable(void **state)
{
	struct onb_device d;
	struct onb_err err;
	redisContext *victim = connect_test();
	redisReply *r;
	char id[32];

	(void)state;
	assert_non_null(victim);
	r = redisCommand(victim, "CLIENT ID");
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	snprintf(id, sizeof(id), "%lld", r->integer);
	freeReplyObject(r);
	r = redisCommand(rc, "CLIENT KILL ID %s", id);
	freeReplyObject(r);

	assert_int_equal(onb_registry_device_get(victim, "dev-1", &d, &err), ONB_EUNAVAIL);
	assert_true(victim->err != 0);
	assert_int_equal(onb_registry_device_get(victim, "dev-1", &d, &err), ONB_EUNAVAIL);
	assert_non_null(strstr(err.msg, "unusable"));
	redisFree(victim);
}

/* A hung Redis (all clients paused) costs one timeout, then EUNAVAIL. */
static void hung_server_times_out(void **state)
{
	struct onb_redis_cfg cfg = test_cfg(50);
	struct onb_device d;
	struct onb_err err;
	redisContext *victim;
	redisReply *r;
	int64_t t0, took;

	(void)state;
	victim = onb_redis_connect(&cfg, &err);
	assert_non_null(victim);
	r = redisCommand(rc, "CLIENT PAUSE 3000 ALL");
	assert_non_null(r);
	freeReplyObject(r);
	t0 = onb_mono_ms();
	assert_int_equal(onb_registry_device_get(victim, "dev-1", &d, &err), ONB_EUNAVAIL);
	took = onb_mono_ms() - t0;
	assert_non_null(strstr(err.msg, "timed out"));
	assert_true(took >= 40 && took < 2000); /* bounded, well before the pause ends */
	assert_true(victim->err != 0);
	redisFree(victim);
	r = redisCommand(rc, "CLIENT UNPAUSE");
	if(r) freeReplyObject(r);
}

/* --------------------------------------------------------------- register */

static void register_round_trip(void **state)
{
	char fp[ONB_FP_HEXLEN + 1];
	struct onb_device d, g;
	struct onb_err err;
	int64_t t0 = onb_now_ms();

	(void)state;
	make_fp(fp, 1);
	assert_int_equal(reg("dev-1", fp, ONB_STATE_ACTIVE, "acme", &err), ONB_OK);
	assert_int_equal(onb_registry_device_by_fp(rc, fp, &d, &err), ONB_OK);
	assert_string_equal(d.id, "dev-1");
	assert_int_equal(d.state, ONB_STATE_ACTIVE);
	assert_string_equal(d.tenant, "acme");
	assert_string_equal(d.policy, "");
	assert_string_equal(d.cert_fp, fp);
	assert_string_equal(d.cert_fp_next, "");
	assert_string_equal(d.cert_serial, "0abc");
	assert_int_equal(d.not_after, 1900000000);
	assert_true(d.created_ms >= t0 && d.created_ms <= onb_now_ms());
	assert_int_equal(d.updated_ms, d.created_ms);
	assert_int_equal(d.provisioned_ms, d.created_ms);
	assert_int_equal(d.claimed_ms, d.created_ms);

	assert_int_equal(onb_registry_device_get(rc, "dev-1", &g, &err), ONB_OK);
	assert_memory_equal(&d, &g, sizeof(d));

	/* hash + index + one event + one audit entry */
	assert_int_equal(dbsize(), 4);
	assert_int_equal(xlen(ONB_KEY_EVENTS), 1);
	assert_int_equal(xlen(ONB_KEY_AUDIT), 1);
	assert_newest(ONB_KEY_EVENTS, "type", "state");
	assert_newest(ONB_KEY_EVENTS, "device", "dev-1");
	assert_newest(ONB_KEY_EVENTS, "state", "active");
	assert_newest(ONB_KEY_EVENTS, "tenant", "acme");
	assert_newest(ONB_KEY_AUDIT, "actor", "test:unit");
	assert_newest(ONB_KEY_AUDIT, "source", "127.0.0.1");
	assert_newest(ONB_KEY_AUDIT, "action", "register");
	assert_newest(ONB_KEY_AUDIT, "result", "ok");
	assert_newest(ONB_KEY_AUDIT, "to", "active");
	assert_newest(ONB_KEY_AUDIT, "cert_fp", fp);

	/* unclaimed without tenant; the EVALSHA path now runs a cached script */
	make_fp(fp, 2);
	assert_int_equal(reg("dev-2", fp, ONB_STATE_UNCLAIMED, NULL, &err), ONB_OK);
	assert_int_equal(onb_registry_device_by_fp(rc, fp, &d, &err), ONB_OK);
	assert_int_equal(d.state, ONB_STATE_UNCLAIMED);
	assert_int_equal(d.claimed_ms, 0);

	/* unknown fingerprint, unknown device */
	make_fp(fp, 3);
	assert_int_equal(onb_registry_device_by_fp(rc, fp, &d, &err), ONB_ENOTFOUND);
	assert_int_equal(onb_registry_device_get(rc, "dev-3", &d, &err), ONB_ENOTFOUND);
	assert_int_equal(onb_registry_device_by_fp(rc, "ABC", &d, &err), ONB_EINVAL);
}

static void register_after_script_flush(void **state)
{
	char fp[ONB_FP_HEXLEN + 1];
	struct onb_err err;

	(void)state;
	make_fp(fp, 1);
	redisReply *r = redisCommand(rc, "SCRIPT FLUSH");
	freeReplyObject(r);
	assert_int_equal(reg("dev-1", fp, ONB_STATE_UNCLAIMED, NULL, &err), ONB_OK);
}

static void register_fp_bound_elsewhere(void **state)
{
	char fp[ONB_FP_HEXLEN + 1];
	struct onb_err err;
	long long keys, ev, au;

	(void)state;
	make_fp(fp, 1);
	assert_int_equal(reg("dev-1", fp, ONB_STATE_UNCLAIMED, NULL, &err), ONB_OK);
	keys = dbsize();
	ev = xlen(ONB_KEY_EVENTS);
	au = xlen(ONB_KEY_AUDIT);

	assert_int_equal(reg("dev-2", fp, ONB_STATE_ACTIVE, "acme", &err), ONB_EEXIST);
	assert_non_null(strstr(err.msg, "dev-1"));
	assert_int_equal(dbsize(), keys);
	assert_int_equal(xlen(ONB_KEY_EVENTS), ev);
	assert_int_equal(xlen(ONB_KEY_AUDIT), au);
	assert_int_equal(int_cmd("EXISTS", "onb:dev:{dev-2}"), 0);

	/* the same device with a second certificate */
	make_fp(fp, 2);
	assert_int_equal(reg("dev-1", fp, ONB_STATE_UNCLAIMED, NULL, &err), ONB_EEXIST);
	assert_non_null(strstr(err.msg, "already has an operational certificate"));
	assert_int_equal(dbsize(), keys);
	assert_int_equal(xlen(ONB_KEY_EVENTS), ev);
	assert_int_equal(xlen(ONB_KEY_AUDIT), au);
}

static void register_bad_input(void **state)
{
	char fp[ONB_FP_HEXLEN + 1], upper[ONB_FP_HEXLEN + 1];
	struct onb_register_req req;
	struct onb_err err;

	(void)state;
	make_fp(fp, 0xabc);
	memcpy(upper, fp, sizeof(upper));
	upper[63] = 'C';
	assert_int_equal(reg("dev 1", fp, ONB_STATE_UNCLAIMED, NULL, &err), ONB_EINVAL);
	assert_non_null(strstr(err.msg, "invalid device id"));
	assert_int_equal(reg("", fp, ONB_STATE_UNCLAIMED, NULL, &err), ONB_EINVAL);
	assert_int_equal(reg("dev/1", fp, ONB_STATE_UNCLAIMED, NULL, &err), ONB_EINVAL);
	assert_int_equal(reg("{dev}", fp, ONB_STATE_UNCLAIMED, NULL, &err), ONB_EINVAL);
	assert_int_equal(reg("dev-1", upper, ONB_STATE_UNCLAIMED, NULL, &err), ONB_EINVAL);
	assert_int_equal(reg("dev-1", "abc", ONB_STATE_UNCLAIMED, NULL, &err), ONB_EINVAL);
	assert_int_equal(reg("dev-1", NULL, ONB_STATE_UNCLAIMED, NULL, &err), ONB_EINVAL);
	assert_int_equal(reg("dev-1", fp, ONB_STATE_REVOKED, NULL, &err), ONB_EINVAL);
	assert_int_equal(reg("dev-1", fp, ONB_STATE_ACTIVE, "bad tenant", &err), ONB_EINVAL);
	assert_int_equal(reg("dev-1", fp, ONB_STATE_UNCLAIMED, "acme", &err), ONB_EINVAL);
	req = (struct onb_register_req){ .id = "dev-1", .cert_fp = fp, .cert_serial = "XYZ",
		.state = ONB_STATE_UNCLAIMED };
	assert_int_equal(onb_registry_register(rc, &req, &actor, &err), ONB_EINVAL);
	req.cert_serial = "01";
	assert_int_equal(onb_registry_register(rc, &req, NULL, &err), ONB_EINVAL);
	assert_int_equal(dbsize(), 0);
}

static void register_completes_manufactured(void **state)
{
	char fp[ONB_FP_HEXLEN + 1], birth[ONB_FP_HEXLEN + 1];
	struct onb_device d;
	struct onb_err err;
	redisReply *r;

	(void)state;
	make_fp(fp, 7);
	make_fp(birth, 0xb1);
	r = redisCommand(rc, "HSET onb:dev:{m-1} state manufactured birth_fp %s batch b-2026 created 123", birth);
	freeReplyObject(r);
	assert_int_equal(reg("m-1", fp, ONB_STATE_UNCLAIMED, NULL, &err), ONB_OK);
	assert_int_equal(onb_registry_device_by_fp(rc, fp, &d, &err), ONB_OK);
	assert_int_equal(d.state, ONB_STATE_UNCLAIMED);
	assert_string_equal(d.birth_fp, birth);
	assert_string_equal(d.batch, "b-2026");
	assert_int_equal(d.created_ms, 123);
	assert_true(d.provisioned_ms > 123);
	assert_newest(ONB_KEY_AUDIT, "from", "manufactured");

	/* a decommissioned record must go back to manufactured first */
	r = redisCommand(rc, "HSET onb:dev:{m-2} state decommissioned");
	freeReplyObject(r);
	make_fp(fp, 8);
	long long keys = dbsize();
	assert_int_equal(reg("m-2", fp, ONB_STATE_UNCLAIMED, NULL, &err), ONB_EREFUSED);
	assert_non_null(strstr(err.msg, "decommissioned -> unclaimed"));
	assert_int_equal(dbsize(), keys);
}

static void stale_fp_index_is_not_found(void **state)
{
	char fp[ONB_FP_HEXLEN + 1], other[ONB_FP_HEXLEN + 1];
	struct onb_device d;
	struct onb_err err;
	redisReply *r;

	(void)state;
	make_fp(fp, 1);
	make_fp(other, 2);
	assert_int_equal(reg("dev-1", fp, ONB_STATE_UNCLAIMED, NULL, &err), ONB_OK);
	r = redisCommand(rc, "SET onb:fp:%s dev-1", other);
	freeReplyObject(r);
	assert_int_equal(onb_registry_device_by_fp(rc, other, &d, &err), ONB_ENOTFOUND);
	assert_non_null(strstr(err.msg, "stale"));
	r = redisCommand(rc, "SET onb:fp:%s ghost", other);
	freeReplyObject(r);
	assert_int_equal(onb_registry_device_by_fp(rc, other, &d, &err), ONB_ENOTFOUND);

	/* the next certificate of a rotation is found too */
	r = redisCommand(rc, "HSET onb:dev:{dev-1} cert_fp_next %s", other);
	freeReplyObject(r);
	r = redisCommand(rc, "SET onb:fp:%s dev-1", other);
	freeReplyObject(r);
	assert_int_equal(onb_registry_device_by_fp(rc, other, &d, &err), ONB_OK);
	assert_string_equal(d.id, "dev-1");
}

/* -------------------------------------------------------------- set_state */

static void set_state_legal(void **state)
{
	char fp[ONB_FP_HEXLEN + 1], last[ONB_STREAM_ID_MAX];
	struct collected got = { 0 };
	enum onb_state from = ONB_STATE_INVALID;
	struct onb_device d;
	struct onb_err err;

	(void)state;
	make_fp(fp, 1);
	assert_int_equal(reg("dev-1", fp, ONB_STATE_ACTIVE, "acme", &err), ONB_OK);
	assert_int_equal(onb_events_tail(rc, last, &err), ONB_OK);
	long long au = xlen(ONB_KEY_AUDIT);

	assert_int_equal(onb_registry_set_state(rc, "dev-1", ONB_STATE_QUARANTINED, "odd traffic",
			&actor, &from, &err), ONB_OK);
	assert_int_equal(from, ONB_STATE_ACTIVE);
	assert_int_equal(onb_registry_device_get(rc, "dev-1", &d, &err), ONB_OK);
	assert_int_equal(d.state, ONB_STATE_QUARANTINED);
	assert_string_equal(d.reason, "odd traffic");

	assert_int_equal(onb_events_read(rc, last, 0, 10, collect, &got, &err), 1);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.ev[0].type, "state");
	assert_string_equal(got.ev[0].device, "dev-1");
	assert_int_equal(got.ev[0].state, ONB_STATE_QUARANTINED);
	assert_string_equal(got.ev[0].tenant, "acme");
	assert_string_equal(got.ev[0].policy, "");
	assert_string_equal(got.ev[0].stream_id, last);

	assert_int_equal(xlen(ONB_KEY_AUDIT), au + 1);
	assert_newest(ONB_KEY_AUDIT, "actor", "test:unit");
	assert_newest(ONB_KEY_AUDIT, "source", "127.0.0.1");
	assert_newest(ONB_KEY_AUDIT, "action", "state");
	assert_newest(ONB_KEY_AUDIT, "device", "dev-1");
	assert_newest(ONB_KEY_AUDIT, "result", "ok");
	assert_newest(ONB_KEY_AUDIT, "reason", "odd traffic");
	assert_newest(ONB_KEY_AUDIT, "from", "active");
	assert_newest(ONB_KEY_AUDIT, "to", "quarantined");

	/* back to active without a reason clears the old one; NULL from_out is fine */
	assert_int_equal(onb_registry_set_state(rc, "dev-1", ONB_STATE_ACTIVE, NULL, &actor, NULL, &err),
			ONB_OK);
	assert_int_equal(onb_registry_device_get(rc, "dev-1", &d, &err), ONB_OK);
	assert_string_equal(d.reason, "");

	/* reasons are one bounded line */
	assert_int_equal(onb_registry_set_state(rc, "dev-1", ONB_STATE_REVOKED, "a\nb", &actor, NULL, &err),
			ONB_EINVAL);
}

static void set_state_illegal(void **state)
{
	char fp[ONB_FP_HEXLEN + 1], last[ONB_STREAM_ID_MAX];
	struct collected got = { 0 };
	enum onb_state from = ONB_STATE_INVALID;
	struct onb_device d;
	struct onb_err err;

	(void)state;
	make_fp(fp, 1);
	assert_int_equal(reg("dev-1", fp, ONB_STATE_ACTIVE, NULL, &err), ONB_OK);
	assert_int_equal(onb_registry_set_state(rc, "dev-1", ONB_STATE_REVOKED, "stolen", &actor, &from, &err),
			ONB_OK);
	assert_int_equal(onb_events_tail(rc, last, &err), ONB_OK);
	long long au = xlen(ONB_KEY_AUDIT), ev = xlen(ONB_KEY_EVENTS);

	from = ONB_STATE_COUNT;
	assert_int_equal(onb_registry_set_state(rc, "dev-1", ONB_STATE_ACTIVE, NULL, &actor, &from, &err),
			ONB_EREFUSED);
	assert_string_equal(err.msg, "illegal transition revoked -> active");
	assert_int_equal(from, ONB_STATE_COUNT); /* untouched */
	assert_int_equal(onb_registry_device_get(rc, "dev-1", &d, &err), ONB_OK);
	assert_int_equal(d.state, ONB_STATE_REVOKED);
	assert_string_equal(d.reason, "stolen");

	assert_int_equal(xlen(ONB_KEY_EVENTS), ev);
	assert_int_equal(onb_events_read(rc, last, 0, 10, collect, &got, &err), 0);
	assert_int_equal(xlen(ONB_KEY_AUDIT), au + 1);
	assert_newest(ONB_KEY_AUDIT, "result", "refused");
	assert_newest(ONB_KEY_AUDIT, "from", "revoked");
	assert_newest(ONB_KEY_AUDIT, "to", "active");
	assert_newest(ONB_KEY_AUDIT, "reason", "illegal transition revoked -> active");

	assert_int_equal(onb_registry_set_state(rc, "dev-1", ONB_STATE_REVOKED, NULL, &actor, NULL, &err),
			ONB_EREFUSED);
	assert_string_equal(err.msg, "device dev-1 is already revoked");
}

static void set_state_unknown_device(void **state)
{
	struct onb_err err;

	(void)state;
	assert_int_equal(onb_registry_set_state(rc, "ghost", ONB_STATE_REVOKED, NULL, &actor, NULL, &err),
			ONB_ENOTFOUND);
	assert_non_null(strstr(err.msg, "ghost"));
	assert_int_equal(int_cmd("EXISTS", "onb:dev:{ghost}"), 0);
	assert_int_equal(xlen(ONB_KEY_EVENTS), 0);
	assert_int_equal(xlen(ONB_KEY_AUDIT), 1);
	assert_newest(ONB_KEY_AUDIT, "result", "error");
	assert_newest(ONB_KEY_AUDIT, "device", "ghost");

	assert_int_equal(onb_registry_set_state(rc, "gh ost", ONB_STATE_REVOKED, NULL, &actor, NULL, &err),
			ONB_EINVAL);
	assert_int_equal(onb_registry_set_state(rc, "ghost", ONB_STATE_INVALID, NULL, &actor, NULL, &err),
			ONB_EINVAL);
	assert_int_equal(xlen(ONB_KEY_AUDIT), 1);
}

/* ------------------------------------------------------------------- list */

struct listed {
	int n;
	char ids[8][ONB_ID_MAX + 1];
	int stop_after;
};

static int list_cb(const struct onb_device *d, void *arg)
{
	struct listed *l = arg;
	if(l->n < 8) snprintf(l->ids[l->n], sizeof(l->ids[0]), "%s", d->id);
	l->n++;
	return l->stop_after && l->n >= l->stop_after ? 7 : 0;
}

static bool listed_has(const struct listed *l, const char *id)
{
	for(int i = 0; i < l->n && i < 8; i++){
		if(!strcmp(l->ids[i], id)) return true;
	}
	return false;
}

static void list_with_filter(void **state)
{
	char fp[ONB_FP_HEXLEN + 1];
	struct listed l;
	struct onb_device d;
	struct onb_err err;
	redisReply *r;

	(void)state;
	make_fp(fp, 1);
	assert_int_equal(reg("a", fp, ONB_STATE_UNCLAIMED, NULL, &err), ONB_OK);
	make_fp(fp, 2);
	assert_int_equal(reg("b", fp, ONB_STATE_ACTIVE, "t1", &err), ONB_OK);
	make_fp(fp, 3);
	assert_int_equal(reg("c", fp, ONB_STATE_ACTIVE, "t1", &err), ONB_OK);
	assert_int_equal(onb_registry_set_state(rc, "c", ONB_STATE_REVOKED, NULL, &actor, NULL, &err), ONB_OK);
	r = redisCommand(rc, "SET onb:dev:junk x"); /* not a device key */
	freeReplyObject(r);

	memset(&l, 0, sizeof(l));
	assert_int_equal(onb_registry_list(rc, ONB_STATE_INVALID, list_cb, &l, &err), 0);
	assert_int_equal(l.n, 3);
	assert_true(listed_has(&l, "a") && listed_has(&l, "b") && listed_has(&l, "c"));

	memset(&l, 0, sizeof(l));
	assert_int_equal(onb_registry_list(rc, ONB_STATE_ACTIVE, list_cb, &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.ids[0], "b");

	memset(&l, 0, sizeof(l));
	assert_int_equal(onb_registry_list(rc, ONB_STATE_QUARANTINED, list_cb, &l, &err), 0);
	assert_int_equal(l.n, 0);

	/* early stop returns the callback's value and leaves the context usable */
	memset(&l, 0, sizeof(l));
	l.stop_after = 1;
	assert_int_equal(onb_registry_list(rc, ONB_STATE_INVALID, list_cb, &l, &err), 7);
	assert_int_equal(l.n, 1);
	assert_int_equal(onb_registry_device_get(rc, "b", &d, &err), ONB_OK);
	assert_string_equal(d.id, "b");
}

static void list_many(void **state)
{
	char fp[ONB_FP_HEXLEN + 1], id[32];
	struct listed l;
	struct onb_err err;

	(void)state;
	for(unsigned i = 0; i < 2500; i++){
		make_fp(fp, 100 + i);
		snprintf(id, sizeof(id), "bulk-%u", i);
		assert_int_equal(reg(id, fp, ONB_STATE_UNCLAIMED, NULL, &err), ONB_OK);
	}
	memset(&l, 0, sizeof(l));
	assert_int_equal(onb_registry_list(rc, ONB_STATE_UNCLAIMED, list_cb, &l, &err), 0);
	assert_int_equal(l.n, 2500);
}

/* ------------------------------------------------------------------ audit */

static void audit_append_omits_null_fields(void **state)
{
	struct onb_audit_entry e = { .actor = "plugin", .action = "connect", .result = "deny" };
	struct onb_err err;
	redisReply *r;

	(void)state;
	assert_int_equal(onb_audit_append(rc, &e, &err), ONB_OK);
	r = redisCommand(rc, "XREVRANGE onb:audit + - COUNT 1");
	assert_int_equal(r->element[0]->element[1]->elements, 8); /* actor action result ts */
	freeReplyObject(r);
	assert_newest(ONB_KEY_AUDIT, "actor", "plugin");
	assert_newest(ONB_KEY_AUDIT, "action", "connect");
	assert_newest(ONB_KEY_AUDIT, "result", "deny");

	e.source = "10.0.0.1";
	e.device = "dev-1";
	e.reason = "unknown certificate";
	assert_int_equal(onb_audit_append(rc, &e, &err), ONB_OK);
	assert_newest(ONB_KEY_AUDIT, "reason", "unknown certificate");
	assert_newest(ONB_KEY_AUDIT, "source", "10.0.0.1");

	e.actor = NULL;
	assert_int_equal(onb_audit_append(rc, &e, &err), ONB_EINVAL);
	assert_int_equal(xlen(ONB_KEY_AUDIT), 2);
}

/* The writer's pipeline: entries queued, nothing sent until the replies are
 * read, then each written once, in order; a malformed one queues nothing
 * and leaves the replies in step; the entry's own ts is kept. */
static void audit_queue_pipelines_in_order(void **state)
{
	struct onb_audit_entry e = { .actor = "plugin", .action = "connect", .result = "allow", .ts_ms = 1234 };
	struct onb_audit_entry bad = { .actor = "plugin", .action = "connect" };
	redisContext *other = connect_test();
	struct onb_err err;
	char dev[8];

	(void)state;
	assert_non_null(other);
	for(int i = 0; i < 3; i++){
		snprintf(dev, sizeof(dev), "dev-%d", i);
		e.device = dev;
		assert_int_equal(onb_audit_queue(other, &e, &err), ONB_OK);
		if(i == 1) assert_int_equal(onb_audit_queue(other, &bad, &err), ONB_EINVAL);
	}
	assert_int_equal(xlen(ONB_KEY_AUDIT), 0); /* queued, not sent */
	for(int i = 0; i < 3; i++) assert_int_equal(onb_reg_queued_reply(other, "test", &err), ONB_OK);
	assert_int_equal(xlen(ONB_KEY_AUDIT), 3);
	assert_newest(ONB_KEY_AUDIT, "device", "dev-2");
	assert_newest(ONB_KEY_AUDIT, "ts", "1234");
	redisFree(other);
}

static void audit_is_kept_by_time_not_count(void **state)
{
	struct onb_audit_entry e = { .actor = "plugin", .action = "connect", .result = "deny" };
	int64_t old = onb_now_ms() - 3LL * 86400000;
	struct onb_err err;
	redisReply *r;

	(void)state;
	/* 1,000 entries three days old, and 1,000 from today */
	for(int i = 0; i < 1000; i++){
		freeReplyObject(redisCommand(rc, "XADD %s %lld-%d actor x action old result ok", ONB_KEY_AUDIT,
				(long long)old, i + 1));
	}
	for(int i = 0; i < 1000; i++) assert_int_equal(onb_audit_append(rc, &e, &err), ONB_OK);
	/* the default 30 days keeps them all, however many there are */
	assert_int_equal(xlen(ONB_KEY_AUDIT), 2000);
	assert_int_equal(onb_audit_set_retention_days(0), ONB_EINVAL);
	assert_int_equal(onb_audit_set_retention_days(3651), ONB_EINVAL);
	assert_int_equal(onb_audit_set_retention_days(2), ONB_OK);
	assert_int_equal(onb_audit_append(rc, &e, &err), ONB_OK);
	assert_int_equal(onb_audit_set_retention_days(ONB_AUDIT_RETENTION_DAYS), ONB_OK);
	/* two days: the old ones go (whole stream nodes at a time, '~'), the new stay */
	r = redisCommand(rc, "XRANGE %s - + COUNT 1", ONB_KEY_AUDIT);
	assert_true(r->elements == 1 && strtoll(r->element[0]->element[0]->str, NULL, 10) > old);
	freeReplyObject(r);
	assert_int_equal(xlen(ONB_KEY_AUDIT), 1001);
}

/* ----------------------------------------------------------------- events */

static void events_tail_empty(void **state)
{
	char last[ONB_STREAM_ID_MAX];
	struct collected got = { 0 };
	struct onb_err err;

	(void)state;
	assert_int_equal(onb_events_tail(rc, last, &err), ONB_OK);
	assert_string_equal(last, "0-0");
	assert_int_equal(onb_events_read(rc, last, 0, 10, collect, &got, &err), 0);
	assert_string_equal(last, "0-0");
	assert_int_equal(onb_events_read(rc, last, 0, 0, collect, &got, &err), ONB_EINVAL);
	memcpy(last, "x-1", 4);
	assert_int_equal(onb_events_read(rc, last, 0, 10, collect, &got, &err), ONB_EINVAL);
}

static void events_resume_across_connections(void **state)
{
	char fp[ONB_FP_HEXLEN + 1], last[ONB_STREAM_ID_MAX];
	struct collected got = { 0 };
	struct onb_err err;
	redisContext *reader = connect_test();

	(void)state;
	assert_non_null(reader);
	assert_int_equal(onb_events_tail(reader, last, &err), ONB_OK);
	make_fp(fp, 1);
	assert_int_equal(reg("dev-1", fp, ONB_STATE_UNCLAIMED, NULL, &err), ONB_OK);      /* event 1 */
	assert_int_equal(onb_registry_set_state(rc, "dev-1", ONB_STATE_ACTIVE, NULL, &actor, NULL, &err),
			ONB_OK);                                                                  /* event 2 */

	assert_int_equal(onb_events_read(reader, last, 0, 1, collect, &got, &err), 1);
	assert_int_equal(got.ev[0].state, ONB_STATE_UNCLAIMED);
	redisFree(reader);

	/* while the reader is away */
	assert_int_equal(onb_registry_set_state(rc, "dev-1", ONB_STATE_REVOKED, NULL, &actor, NULL, &err),
			ONB_OK);                                                                  /* event 3 */
	/* an entry from a newer writer: unknown fields and states are tolerated */
	redisReply *r = redisCommand(rc, "XADD onb:events * type state device dev-1 state melted extra 1");
	freeReplyObject(r);                                                               /* event 4 */
	r = redisCommand(rc, "XADD onb:events * device dev-1");                           /* no type */
	freeReplyObject(r);

	reader = connect_test();
	assert_non_null(reader);
	assert_int_equal(onb_events_read(reader, last, 0, 100, collect, &got, &err), 3);
	assert_int_equal(got.n, 4);
	assert_int_equal(got.ev[1].state, ONB_STATE_ACTIVE);
	assert_int_equal(got.ev[2].state, ONB_STATE_REVOKED);
	assert_int_equal(got.ev[3].state, ONB_STATE_INVALID);
	assert_string_equal(got.ev[3].device, "dev-1");
	/* the malformed entry is skipped but not re-read */
	assert_int_equal(onb_events_read(reader, last, 0, 100, collect, &got, &err), 0);
	assert_int_equal(got.n, 4);
	redisFree(reader);
}

static void events_block_times_out(void **state)
{
	struct onb_redis_cfg cfg = test_cfg(50); /* shorter than the BLOCK */
	char last[ONB_STREAM_ID_MAX];
	struct collected got = { 0 };
	struct onb_err err;
	redisContext *reader;
	int64_t t0, took;

	(void)state;
	reader = onb_redis_connect(&cfg, &err);
	assert_non_null(reader);
	assert_int_equal(onb_events_tail(reader, last, &err), ONB_OK);
	t0 = onb_mono_ms();
	assert_int_equal(onb_events_read(reader, last, 200, 10, collect, &got, &err), 0);
	took = onb_mono_ms() - t0;
	assert_true(took >= 150);
	assert_true(took < 2000);
	assert_int_equal(reader->err, 0);
	/* the command timeout is back to 50 ms and the context still works */
	assert_int_equal(onb_events_tail(reader, last, &err), ONB_OK);
	redisFree(reader);
}

/* --------------------------------------------------------------- the docs */

/* docs/registry.md carries the transition table of lib/registry/state.c between two
 * markers; this test is its generator: on a mismatch it prints the table. */
static void docs_transition_table_matches(void **state)
{
	const char *src = getenv("ONB_SOURCE_DIR");
	char path[1024], want[4096], *doc = NULL, *b, *e;
	size_t used = 0;
	FILE *f;
	long n;

	(void)state;
	if(!src) skip();
	used += (size_t)snprintf(want + used, sizeof(want) - used, "| from \\ to |");
	for(int t = 0; t < ONB_STATE_COUNT; t++){
		used += (size_t)snprintf(want + used, sizeof(want) - used, " %s |", onb_state_name((enum onb_state)t));
	}
	used += (size_t)snprintf(want + used, sizeof(want) - used, "\n|---|");
	for(int t = 0; t < ONB_STATE_COUNT; t++) used += (size_t)snprintf(want + used, sizeof(want) - used, "---|");
	used += (size_t)snprintf(want + used, sizeof(want) - used, "\n");
	for(int s = 0; s < ONB_STATE_COUNT; s++){
		used += (size_t)snprintf(want + used, sizeof(want) - used, "| **%s** |", onb_state_name((enum onb_state)s));
		for(int t = 0; t < ONB_STATE_COUNT; t++){
			used += (size_t)snprintf(want + used, sizeof(want) - used, " %s |",
					onb_state_transition_allowed((enum onb_state)s, (enum onb_state)t) ? "yes" : "");
		}
		used += (size_t)snprintf(want + used, sizeof(want) - used, "\n");
	}
	assert_true(used < sizeof(want));

	snprintf(path, sizeof(path), "%s/docs/registry.md", src);
	f = fopen(path, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	doc = calloc(1, (size_t)n + 1);
	assert_non_null(doc);
	assert_int_equal(fread(doc, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	b = strstr(doc, "<!-- transitions:begin -->\n");
	e = strstr(doc, "<!-- transitions:end -->");
	assert_non_null(b);
	assert_non_null(e);
	b += strlen("<!-- transitions:begin -->\n");
	if((size_t)(e - b) != strlen(want) || memcmp(b, want, strlen(want)) != 0){
		fprintf(stderr, "docs/registry.md is out of date; the table should read:\n%s", want);
		free(doc);
		fail();
	}
	free(doc);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, redis_fixture_setup, redis_fixture_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(url_good),
		cmocka_unit_test(url_bad),
		cmocka_unit_test(connect_closed_port),
		cmocka_unit_test(connect_silent_server_times_out),
		T(connect_auth_and_select),
		T(connection_error_is_unavailable),
		T(hung_server_times_out),
		T(register_round_trip),
		T(register_after_script_flush),
		T(register_fp_bound_elsewhere),
		T(register_bad_input),
		T(register_completes_manufactured),
		T(stale_fp_index_is_not_found),
		T(set_state_legal),
		T(set_state_illegal),
		T(set_state_unknown_device),
		T(list_with_filter),
		T(list_many),
		T(audit_append_omits_null_fields),
		T(audit_queue_pipelines_in_order),
		T(audit_is_kept_by_time_not_count),
		T(events_tail_empty),
		T(events_resume_across_connections),
		T(events_block_times_out),
		cmocka_unit_test(docs_transition_table_matches),
	};
#undef T
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, redis_fixture_start, redis_fixture_stop);
}

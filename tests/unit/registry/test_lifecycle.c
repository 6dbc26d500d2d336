/* Certificate lifecycle (lib/registry/lifecycle.c): rotation, promotion, retirement,
 * forced rotation, decommission, against a real throwaway redis-server; and
 * the pure pieces around them (renewal topics, durations, key spec redaction). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claim/claimreg.h"
#include "pki/crl.h"
#include "provisioning/envelope.h"
#include "registry/lifecycle.h"
#include "pki/pkcs11.h"
#include "provisioning/provision.h"
#include "registry/registry.h"
#include "redis_fixture.h"

static const struct onb_actor actor = { .who = "test:unit", .source = "127.0.0.1" };

static void make_fp(char out[ONB_FP_HEXLEN + 1], unsigned n)
{
	snprintf(out, ONB_FP_HEXLEN + 1, "%064x", n);
}

/* dev-1 active for tenant t1 with certificate fp(1), serial 0a01. */
static void setup_device(const char *id, unsigned fpn)
{
	char fp[ONB_FP_HEXLEN + 1];
	struct onb_register_req req = {
		.id = id, .cert_serial = "0a01", .not_after = 1900000000, .state = ONB_STATE_ACTIVE, .tenant = "t1",
	};
	struct onb_err err;

	make_fp(fp, fpn);
	req.cert_fp = fp;
	assert_int_equal(onb_registry_register(rc, &req, &actor, &err), ONB_OK);
}

static struct onb_renewal renewal(const char *id, const char *requester, const char *newfp, const char *serial)
{
	struct onb_renewal r = {
		.device_id = id, .requester_fp = requester, .cert_fp = newfp, .cert_serial = serial,
		.not_after = 1950000000, .grace_ms = 3600 * 1000,
	};
	return r;
}

static void get_str(const char *key, const char *field, char *buf, size_t len)
{
	redisReply *r = redisCommand(rc, "HGET %s %s", key, field);
	assert_non_null(r);
	snprintf(buf, len, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
}

/* True when onb:fp:<fp> exists. */
static bool fp_bound(const char *fp)
{
	redisReply *r;
	bool yes;

	r = redisCommand(rc, "EXISTS onb:fp:%s", fp);
	yes = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
	freeReplyObject(r);
	return yes;
}

struct last_event {
	struct onb_event ev;
	int n;
};

static void keep_last(const struct onb_event *ev, void *arg)
{
	struct last_event *l = arg;
	l->ev = *ev;
	l->n++;
}

/* The newest onb:events entry, parsed as the brokers parse it. */
static struct onb_event read_last_event(void)
{
	struct last_event l = { .n = 0 };
	char last[ONB_STREAM_ID_MAX] = "0-0";
	struct onb_err err;

	while(onb_events_read(rc, last, 0, 1000, keep_last, &l, &err) > 0){
	}
	assert_true(l.n > 0);
	return l.ev;
}

/* ------------------------------------------------------------- renewal */

static void renewal_records_next(void **state)
{
	char cur[ONB_FP_HEXLEN + 1], next[ONB_FP_HEXLEN + 1];
	struct onb_renewal r;
	struct onb_device d;
	struct onb_event ev;
	struct onb_err err;
	int64_t deadline = 0, before = onb_now_ms();

	(void)state;
	setup_device("dev-1", 1);
	make_fp(cur, 1);
	make_fp(next, 2);
	r = renewal("dev-1", cur, next, "0b02");
	assert_int_equal(onb_rotation_record(rc, &r, &actor, &deadline, NULL, &err), ONB_OK);
	assert_true(deadline >= before + 3600 * 1000 && deadline <= onb_now_ms() + 3600 * 1000);
	assert_int_equal(onb_registry_device_get(rc, "dev-1", &d, &err), ONB_OK);
	assert_string_equal(d.cert_fp, cur);
	assert_string_equal(d.cert_fp_next, next);
	assert_string_equal(d.cert_serial_next, "0b02");
	assert_int_equal(d.not_after_next, 1950000000);
	assert_int_equal(d.rotate_deadline_ms, deadline);
	assert_false(d.rotate_required);
	/* both certificates find the device during the grace period */
	assert_int_equal(onb_registry_device_by_fp(rc, cur, &d, &err), ONB_OK);
	assert_int_equal(onb_registry_device_by_fp(rc, next, &d, &err), ONB_OK);
	ev = read_last_event();
	assert_string_equal(ev.type, "cert");
	assert_string_equal(ev.device, "dev-1");
	assert_int_equal(ev.state, ONB_STATE_ACTIVE);
	assert_string_equal(ev.tenant, "t1");
	assert_string_equal(ev.cert_fp, cur);
	assert_string_equal(ev.cert_fp_next, next);
	assert_int_equal(ev.deadline_ms, deadline);
	assert_false(ev.rotate_required);
	assert_newest(ONB_KEY_AUDIT, "action", "rotate");
	assert_newest(ONB_KEY_AUDIT, "result", "ok");
}

static void renewal_refusals(void **state)
{
	char cur[ONB_FP_HEXLEN + 1], other[ONB_FP_HEXLEN + 1], next[ONB_FP_HEXLEN + 1];
	const char *reason = NULL;
	struct onb_renewal r;
	struct onb_err err;
	long long keys, audits;
	redisReply *rep;

	(void)state;
	setup_device("dev-1", 1);
	setup_device("dev-2", 9);
	make_fp(cur, 1);
	make_fp(other, 3);
	make_fp(next, 4);
	keys = dbsize();

	/* not with the current certificate */
	audits = xlen(ONB_KEY_AUDIT);
	r = renewal("dev-1", other, next, "0c");
	assert_int_equal(onb_rotation_record(rc, &r, &actor, NULL, &reason, &err), ONB_EREFUSED);
	assert_string_equal(reason, ONB_ROT_NOT_CURRENT);
	assert_int_equal(xlen(ONB_KEY_AUDIT), audits + 1);
	assert_newest(ONB_KEY_AUDIT, "result", "refused");
	assert_int_equal(dbsize(), keys);
	assert_false(fp_bound(next));

	/* a certificate already bound (dev-2's) */
	make_fp(other, 9);
	r = renewal("dev-1", cur, other, "0c");
	assert_int_equal(onb_rotation_record(rc, &r, &actor, NULL, &reason, &err), ONB_EREFUSED);
	assert_string_equal(reason, ONB_ROT_CERT_BOUND);

	/* unknown device, a state that may not connect */
	r = renewal("ghost", cur, next, "0c");
	assert_int_equal(onb_rotation_record(rc, &r, &actor, NULL, &reason, &err), ONB_ENOTFOUND);
	assert_string_equal(reason, ONB_ROT_NOT_FOUND);
	rep = redisCommand(rc, "HSET onb:dev:{dev-1} state revoked");
	freeReplyObject(rep);
	r = renewal("dev-1", cur, next, "0c");
	assert_int_equal(onb_rotation_record(rc, &r, &actor, NULL, &reason, &err), ONB_EREFUSED);
	assert_string_equal(reason, ONB_ROT_STATE);
	assert_non_null(strstr(err.msg, "revoked"));

	/* bad arguments send nothing */
	audits = xlen(ONB_KEY_AUDIT);
	r = renewal("dev-1", cur, next, "0c");
	r.grace_ms = 0;
	assert_int_equal(onb_rotation_record(rc, &r, &actor, NULL, NULL, &err), ONB_EINVAL);
	r = renewal("dev-1", cur, "ABC", "0c");
	assert_int_equal(onb_rotation_record(rc, &r, &actor, NULL, NULL, &err), ONB_EINVAL);
	r = renewal("dev/1", cur, next, "0c");
	assert_int_equal(onb_rotation_record(rc, &r, &actor, NULL, NULL, &err), ONB_EINVAL);
	assert_int_equal(xlen(ONB_KEY_AUDIT), audits);
}

static void renewal_again_supersedes_unused_next(void **state)
{
	char cur[ONB_FP_HEXLEN + 1], b[ONB_FP_HEXLEN + 1], c[ONB_FP_HEXLEN + 1], v[64];
	struct onb_renewal r;
	struct onb_device d;
	struct onb_err err;
	int64_t first = 0, second = 0;

	(void)state;
	setup_device("dev-1", 1);
	make_fp(cur, 1);
	make_fp(b, 2);
	make_fp(c, 3);
	r = renewal("dev-1", cur, b, "00b2");
	assert_int_equal(onb_rotation_record(rc, &r, &actor, &first, NULL, &err), ONB_OK);
	r = renewal("dev-1", cur, c, "0c3");
	r.grace_ms = 7200 * 1000; /* longer: the earlier deadline stays */
	assert_int_equal(onb_rotation_record(rc, &r, &actor, &second, NULL, &err), ONB_OK);
	assert_int_equal(second, first);
	assert_int_equal(onb_registry_device_get(rc, "dev-1", &d, &err), ONB_OK);
	assert_string_equal(d.cert_fp_next, c);
	assert_false(fp_bound(b));
	assert_true(fp_bound(c));
	assert_int_equal(onb_registry_device_by_fp(rc, b, &d, &err), ONB_ENOTFOUND);
	/* the unused certificate is on the CRL record: serial without leading zeros, superseded */
	get_str(ONB_KEY_CRL_REVOKED, "b2", v, sizeof(v));
	assert_non_null(strstr(v, " 4 dev-1"));
}

/* ------------------------------------------------------------ promotion */

static void promotion_and_retirement(void **state)
{
	char cur[ONB_FP_HEXLEN + 1], next[ONB_FP_HEXLEN + 1], v[64];
	struct onb_renewal r;
	struct onb_device d;
	struct onb_event ev;
	struct onb_err err;
	redisReply *rep;

	(void)state;
	setup_device("dev-1", 1);
	make_fp(cur, 1);
	make_fp(next, 2);
	r = renewal("dev-1", cur, next, "0b02");
	assert_int_equal(onb_rotation_record(rc, &r, &actor, NULL, NULL, &err), ONB_OK);

	/* the grace period ends: the old certificate is refused, the new one is not */
	rep = redisCommand(rc, "HSET onb:dev:{dev-1} rotate_deadline %lld", (long long)onb_now_ms() - 1);
	freeReplyObject(rep);
	assert_int_equal(onb_registry_device_by_fp(rc, cur, &d, &err), ONB_EREFUSED);
	assert_non_null(strstr(err.msg, "retired"));
	assert_int_equal(onb_registry_device_by_fp(rc, next, &d, &err), ONB_OK);

	/* only the next certificate is promoted */
	assert_int_equal(onb_rotation_promote(rc, "dev-1", cur, &actor, &err), ONB_EREFUSED);
	assert_int_equal(onb_rotation_promote(rc, "dev-1", next, &actor, &err), ONB_OK);
	assert_int_equal(onb_registry_device_get(rc, "dev-1", &d, &err), ONB_OK);
	assert_string_equal(d.cert_fp, next);
	assert_string_equal(d.cert_serial, "0b02");
	assert_int_equal(d.not_after, 1950000000);
	assert_string_equal(d.cert_fp_next, "");
	assert_string_equal(d.cert_serial_next, "");
	assert_int_equal(d.rotate_deadline_ms, 0);
	assert_int_equal(d.state, ONB_STATE_ACTIVE);
	assert_string_equal(d.tenant, "t1");
	assert_false(fp_bound(cur));
	assert_int_equal(onb_registry_device_by_fp(rc, next, &d, &err), ONB_OK);
	assert_int_equal(onb_registry_device_by_fp(rc, cur, &d, &err), ONB_ENOTFOUND);
	get_str(ONB_KEY_CRL_REVOKED, "a01", v, sizeof(v));
	assert_non_null(strstr(v, " 4 dev-1"));
	ev = read_last_event();
	assert_string_equal(ev.type, "cert");
	assert_string_equal(ev.cert_fp, next);
	assert_string_equal(ev.cert_fp_next, "");
	assert_int_equal(ev.deadline_ms, 0);
	assert_newest(ONB_KEY_AUDIT, "action", "rotate-promote");
	/* twice: nothing left to promote */
	assert_int_equal(onb_rotation_promote(rc, "dev-1", next, &actor, &err), ONB_EREFUSED);
	assert_int_equal(onb_rotation_promote(rc, "ghost", next, &actor, &err), ONB_ENOTFOUND);
}

/* --------------------------------------------------------- forced rotation */

static void forced_rotation(void **state)
{
	char cur[ONB_FP_HEXLEN + 1], next[ONB_FP_HEXLEN + 1];
	struct onb_renewal r;
	struct onb_device d;
	struct onb_event ev;
	struct onb_err err;
	int64_t deadline = 0, renewed = 0;
	redisReply *rep;

	(void)state;
	setup_device("dev-1", 1);
	make_fp(cur, 1);
	make_fp(next, 2);
	assert_int_equal(onb_rotation_require(rc, "dev-1", 60000, "key age", &actor, &deadline, &err), ONB_OK);
	assert_int_equal(onb_registry_device_get(rc, "dev-1", &d, &err), ONB_OK);
	assert_true(d.rotate_required);
	assert_int_equal(d.rotate_deadline_ms, deadline);
	ev = read_last_event();
	assert_string_equal(ev.type, "cert");
	assert_true(ev.rotate_required);
	assert_int_equal(ev.deadline_ms, deadline);
	assert_string_equal(ev.cert_fp, cur);
	assert_newest(ONB_KEY_AUDIT, "action", "rotate-require");
	assert_newest(ONB_KEY_AUDIT, "reason", "key age");

	/* the device renews: the flag goes, the operator's earlier deadline stays */
	r = renewal("dev-1", cur, next, "0b");
	assert_int_equal(onb_rotation_record(rc, &r, &actor, &renewed, NULL, &err), ONB_OK);
	assert_int_equal(renewed, deadline);
	assert_int_equal(onb_registry_device_get(rc, "dev-1", &d, &err), ONB_OK);
	assert_false(d.rotate_required);

	/* nothing to rotate */
	rep = redisCommand(rc, "HSET onb:dev:{m-1} state manufactured");
	freeReplyObject(rep);
	assert_int_equal(onb_rotation_require(rc, "m-1", 60000, NULL, &actor, NULL, &err), ONB_EREFUSED);
	assert_int_equal(onb_rotation_require(rc, "ghost", 60000, NULL, &actor, NULL, &err), ONB_ENOTFOUND);
	assert_int_equal(onb_rotation_require(rc, "dev-1", 0, NULL, &actor, NULL, &err), ONB_EINVAL);
	assert_int_equal(onb_rotation_require(rc, "dev-1", 1000, "two\nlines", &actor, NULL, &err), ONB_EINVAL);
}

/* ----------------------------------------------------------- decommission */

static void decommission_wipes_identity(void **state)
{
	char cur[ONB_FP_HEXLEN + 1], next[ONB_FP_HEXLEN + 1], hash[ONB_FP_HEXLEN + 1], v[64];
	char cckey[ONB_FP_HEXLEN + 16];
	struct onb_decommission_result res;
	struct onb_renewal r;
	struct onb_device d;
	struct onb_event ev;
	struct onb_err err;
	redisReply *rep;

	(void)state;
	setup_device("dev-1", 1);
	make_fp(cur, 1);
	make_fp(next, 2);
	make_fp(hash, 0xcc);
	rep = redisCommand(rc, "HSET onb:dev:{dev-1} birth_fp %s batch b1 serial SN-1 policy p1 claimcode %s",
			hash, hash);
	freeReplyObject(rep);
	rep = redisCommand(rc, "HSET onb:cc:%s device dev-1 status issued", hash);
	freeReplyObject(rep);
	r = renewal("dev-1", cur, next, "0b02");
	assert_int_equal(onb_rotation_record(rc, &r, &actor, NULL, NULL, &err), ONB_OK);

	assert_int_equal(onb_device_decommission(rc, "dev-1", "resold", &actor, &res, &err), ONB_OK);
	assert_int_equal(res.from, ONB_STATE_ACTIVE);
	assert_string_equal(res.serials, "0a01,0b02");
	assert_int_equal(onb_registry_device_get(rc, "dev-1", &d, &err), ONB_OK);
	assert_int_equal(d.state, ONB_STATE_MANUFACTURED);
	assert_string_equal(d.tenant, "");
	assert_string_equal(d.policy, "");
	assert_string_equal(d.cert_fp, "");
	assert_string_equal(d.cert_fp_next, "");
	assert_string_equal(d.cert_serial, "");
	assert_int_equal(d.not_after, 0);
	assert_int_equal(d.claimed_ms, 0);
	assert_int_equal(d.provisioned_ms, 0);
	assert_int_equal(d.rotate_deadline_ms, 0);
	assert_string_equal(d.birth_fp, hash);
	assert_string_equal(d.batch, "b1");
	assert_string_equal(d.reason, "resold");
	get_str("onb:dev:{dev-1}", "serial", v, sizeof(v));
	assert_string_equal(v, "SN-1");
	get_str("onb:dev:{dev-1}", "claimcode", v, sizeof(v));
	assert_string_equal(v, "");
	assert_false(fp_bound(cur));
	assert_false(fp_bound(next));
	snprintf(cckey, sizeof(cckey), "onb:cc:%s", hash);
	get_str(cckey, "status", v, sizeof(v));
	assert_string_equal(v, "revoked");
	get_str(cckey, "reason", v, sizeof(v));
	assert_string_equal(v, "decommissioned");
	get_str(ONB_KEY_CRL_REVOKED, "a01", v, sizeof(v));
	assert_non_null(strstr(v, " 5 dev-1"));
	get_str(ONB_KEY_CRL_REVOKED, "b02", v, sizeof(v));
	assert_non_null(strstr(v, " 5 dev-1"));
	ev = read_last_event();
	assert_string_equal(ev.type, "state");
	assert_int_equal(ev.state, ONB_STATE_MANUFACTURED);
	assert_false(onb_state_may_connect(ev.state));
	assert_newest(ONB_KEY_AUDIT, "action", "decommission");
	assert_newest(ONB_KEY_AUDIT, "from", "active");
	assert_newest(ONB_KEY_AUDIT, "to", "manufactured");
	assert_newest(ONB_KEY_AUDIT, "reason", "resold");
	/* its old certificate finds nothing */
	assert_int_equal(onb_registry_device_by_fp(rc, cur, &d, &err), ONB_ENOTFOUND);
}

static void decommission_revoked_and_refusals(void **state)
{
	struct onb_decommission_result res;
	struct onb_err err;
	char v[64];
	redisReply *rep;

	(void)state;
	setup_device("dev-1", 1);
	assert_int_equal(onb_registry_set_state(rc, "dev-1", ONB_STATE_REVOKED, "leak", &actor, NULL, &err), ONB_OK);
	assert_int_equal(onb_device_decommission(rc, "dev-1", NULL, &actor, &res, &err), ONB_OK);
	assert_int_equal(res.from, ONB_STATE_REVOKED);
	get_str(ONB_KEY_CRL_REVOKED, "a01", v, sizeof(v));
	assert_non_null(strstr(v, " 1 dev-1")); /* keyCompromise */

	assert_int_equal(onb_device_decommission(rc, "ghost", NULL, &actor, &res, &err), ONB_ENOTFOUND);
	assert_newest(ONB_KEY_AUDIT, "result", "error");
	rep = redisCommand(rc, "HSET onb:dev:{odd} state weird");
	freeReplyObject(rep);
	assert_int_equal(onb_device_decommission(rc, "odd", NULL, &actor, &res, &err), ONB_EREFUSED);
	assert_newest(ONB_KEY_AUDIT, "result", "refused");
	assert_int_equal(onb_device_decommission(rc, "dev 1", NULL, &actor, &res, &err), ONB_EINVAL);
}

/* --------------------------------------------------------------- pure */

static void renewal_topics(void **state)
{
	struct onb_prov_topic t;
	struct onb_reply reply;
	struct onb_err err;
	const char *env;

	(void)state;
	assert_true(onb_prov_is_request_topic("devices/dev-1/certificates/renew"));
	assert_false(onb_prov_is_request_topic("devices/dev-1/certificates/renew/accepted"));
	assert_false(onb_prov_is_request_topic("devices//certificates/renew"));
	assert_false(onb_prov_is_request_topic("devices/a+b/certificates/renew"));
	assert_false(onb_prov_is_request_topic("devices/dev-1/telemetry"));
	assert_false(onb_prov_is_request_topic("devices/dev-1/x/certificates/renew"));
	assert_string_equal(onb_request_route("devices/dev-1/certificates/renew"), ONB_TOPIC_PROV_REQUEST);
	assert_null(onb_request_route("devices/dev-1/certificates/renewal"));
	assert_true(onb_prov_is_reply_topic("devices/dev-1/certificates/renew/accepted"));
	assert_true(onb_prov_is_reply_topic("devices/dev-1/certificates/renew/rejected"));
	assert_false(onb_prov_is_reply_topic("devices/dev-1/certificates/renew/required"));
	assert_false(onb_prov_is_reply_topic("devices/dev-1/commands/renew/accepted"));
	assert_true(onb_prov_renew_topic("devices/dev-1/certificates/renew", "dev-1", ""));
	assert_false(onb_prov_renew_topic("devices/dev-1/certificates/renew", "dev-2", ""));
	assert_false(onb_prov_renew_topic("devices/dev-12/certificates/renew", "dev-1", ""));
	assert_false(onb_prov_renew_topic("devices/dev-1/certificates/renew", "dev-12", ""));
	assert_true(onb_prov_renew_topic("devices/dev-1/certificates/renew/required", "dev-1", "/required"));

	assert_int_equal(onb_prov_topic_parse("devices/dev-1/certificates/renew", &t, &err), ONB_OK);
	assert_int_equal(t.kind, ONB_PROV_RENEW);
	assert_string_equal(t.device_id, "dev-1");
	assert_int_equal(onb_prov_topic_parse("devices/dev-1/certificates/renew/x", &t, &err), ONB_EINVAL);
	assert_int_equal(onb_prov_topic_parse("devices/#/certificates/renew", &t, &err), ONB_EINVAL);

	/* claimsvc may answer a renewal only to the device the topic names */
	env = "{\"v\":1,\"clientId\":\"dev-1\",\"topic\":\"devices/dev-1/certificates/renew/accepted\",\"payload\":\"{}\"}";
	assert_int_equal(onb_envelope_reply_parse(env, strlen(env), &reply, &err), ONB_OK);
	free(reply.payload);
	env = "{\"v\":1,\"clientId\":\"dev-2\",\"topic\":\"devices/dev-1/certificates/renew/accepted\",\"payload\":\"{}\"}";
	assert_int_equal(onb_envelope_reply_parse(env, strlen(env), &reply, &err), ONB_EINVAL);
}

static void renew_accepted_document(void **state)
{
	struct onb_err err;
	char *doc;

	(void)state;
	doc = onb_prov_renew_accepted("ab", "-----BEGIN CERTIFICATE-----\n", 1900000000123LL, &err);
	assert_non_null(doc);
	assert_string_equal(doc, "{\"certificateId\":\"ab\",\"certificatePem\":\"-----BEGIN CERTIFICATE-----\\n\","
			"\"previousCertificateValidUntil\":1900000000}");
	onb_prov_free(doc);
	assert_null(onb_prov_renew_accepted(NULL, "x", 0, &err));
	assert_int_equal(onb_prov_status(ONB_PE_NOT_CURRENT), 403);
	assert_int_equal(onb_prov_status(ONB_PE_NOT_RENEWABLE), 403);
}

static void durations(void **state)
{
	int64_t ms = 0;

	(void)state;
	assert_true(onb_duration_parse("30d", INT64_MAX, &ms));
	assert_int_equal(ms, 30LL * 86400 * 1000);
	assert_true(onb_duration_parse("12h", INT64_MAX, &ms));
	assert_int_equal(ms, 12LL * 3600 * 1000);
	assert_true(onb_duration_parse("5m", INT64_MAX, &ms));
	assert_int_equal(ms, 300000);
	assert_true(onb_duration_parse("45s", INT64_MAX, &ms));
	assert_int_equal(ms, 45000);
	assert_true(onb_duration_parse("3600", INT64_MAX, &ms));
	assert_int_equal(ms, 3600000);
	ms = 7;
	assert_false(onb_duration_parse("0", INT64_MAX, &ms));
	assert_false(onb_duration_parse("-1d", INT64_MAX, &ms));
	assert_false(onb_duration_parse("1w", INT64_MAX, &ms));
	assert_false(onb_duration_parse("1dd", INT64_MAX, &ms));
	assert_false(onb_duration_parse("d", INT64_MAX, &ms));
	assert_false(onb_duration_parse("", INT64_MAX, &ms));
	assert_false(onb_duration_parse(NULL, INT64_MAX, &ms));
	assert_false(onb_duration_parse("99999999999999999999", INT64_MAX, &ms));
	assert_false(onb_duration_parse("366d", 365LL * 86400 * 1000, &ms));
	assert_true(onb_duration_parse("365d", 365LL * 86400 * 1000, &ms));
	assert_false(onb_duration_parse(" 1d", INT64_MAX, &ms));
}

static void key_specs(void **state)
{
	char buf[256];

	(void)state;
	assert_true(onb_key_is_pkcs11("pkcs11:token=a"));
	assert_false(onb_key_is_pkcs11("/etc/ca.key"));
	assert_false(onb_key_is_pkcs11("PKCS11:token=a"));
	assert_false(onb_key_is_pkcs11(NULL));
	onb_key_spec_redact("pkcs11:token=a;object=k;pin-value=1234;type=private", buf, sizeof(buf));
	assert_string_equal(buf, "pkcs11:token=a;object=k;pin-value=***;type=private");
	onb_key_spec_redact("pkcs11:token=a?pin-value=12%3b4", buf, sizeof(buf));
	assert_string_equal(buf, "pkcs11:token=a?pin-value=***");
	onb_key_spec_redact("pkcs11:token=a;pin-source=file:/x", buf, sizeof(buf));
	assert_string_equal(buf, "pkcs11:token=a;pin-source=file:/x");
	onb_key_spec_redact("pkcs11:pin-value=secret;token=a", buf, sizeof(buf));
	assert_string_equal(buf, "pkcs11:pin-value=***;token=a");
	onb_key_spec_redact("pkcs11:pin-value=secret", buf, 12);
	assert_null(strstr(buf, "secret"));
	assert_null(strstr(buf, "sec"));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, redis_fixture_setup, redis_fixture_teardown)
	const struct CMUnitTest tests[] = {
		T(renewal_records_next),
		T(renewal_refusals),
		T(renewal_again_supersedes_unused_next),
		T(promotion_and_retirement),
		T(forced_rotation),
		T(decommission_wipes_identity),
		T(decommission_revoked_and_refusals),
		cmocka_unit_test(renewal_topics),
		cmocka_unit_test(renew_accepted_document),
		cmocka_unit_test(durations),
		cmocka_unit_test(key_specs),
	};
#undef T
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, redis_fixture_start, redis_fixture_stop);
}

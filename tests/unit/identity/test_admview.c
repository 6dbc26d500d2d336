/* The admission view (lib/identity/admview.c, lib/identity/admview_load.c): the table alone,
 * against a plain array as reference through many puts and removes, and
 * the load from a real throwaway redis-server (redis_fixture.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity/admview.h"
#include "registry/eventgap.h"
#include "registry/registry.h"
#include "redis_fixture.h"

static const struct onb_actor actor = { .who = "test:unit", .source = "127.0.0.1" };

static void make_fp(char out[ONB_FP_HEXLEN + 1], unsigned n)
{
	snprintf(out, ONB_FP_HEXLEN + 1, "%064x", n);
}

static struct onb_device dev(const char *id, unsigned fp, enum onb_state s, const char *tenant)
{
	struct onb_device d;

	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "%s", id);
	make_fp(d.cert_fp, fp);
	d.state = s;
	snprintf(d.tenant, sizeof(d.tenant), "%s", tenant);
	return d;
}

static void put_get_replace_remove(void **state)
{
	struct onb_admview *v = onb_admview_new(0);
	struct onb_device d = dev("dev-1", 1, ONB_STATE_ACTIVE, "acme"), got;
	char fp2[ONB_FP_HEXLEN + 1];
	struct onb_err err;

	(void)state;
	assert_non_null(v);
	snprintf(d.policy, sizeof(d.policy), "strict");
	make_fp(d.birth_fp, 99);
	assert_int_equal(onb_admview_put(v, &d), ONB_OK);
	assert_int_equal(onb_admview_count(v), 1);
	assert_int_equal(onb_admview_by_fp(v, d.cert_fp, 0, &got, &err), ONB_OK);
	assert_string_equal(got.id, "dev-1");
	assert_int_equal(got.state, ONB_STATE_ACTIVE);
	assert_string_equal(got.tenant, "acme");
	assert_string_equal(got.policy, "strict");
	assert_string_equal(got.cert_fp, d.cert_fp);
	assert_string_equal(got.birth_fp, d.birth_fp);
	assert_string_equal(got.cert_fp_next, "");
	/* the birth certificate is not an operational one */
	assert_int_equal(onb_admview_by_fp(v, d.birth_fp, 0, &got, &err), ONB_ENOTFOUND);
	assert_int_equal(onb_admview_by_id(v, "dev-1", &got, &err), ONB_OK);
	assert_string_equal(got.cert_fp, d.cert_fp);

	/* a revocation replaces the entry */
	d.state = ONB_STATE_REVOKED;
	assert_int_equal(onb_admview_put(v, &d), ONB_OK);
	assert_int_equal(onb_admview_count(v), 1);
	assert_int_equal(onb_admview_by_fp(v, d.cert_fp, 0, &got, &err), ONB_OK);
	assert_int_equal(got.state, ONB_STATE_REVOKED);

	/* a new certificate: the old one no longer finds the device */
	make_fp(fp2, 2);
	memcpy(d.cert_fp, fp2, sizeof(fp2));
	assert_int_equal(onb_admview_put(v, &d), ONB_OK);
	make_fp(fp2, 1);
	assert_int_equal(onb_admview_by_fp(v, fp2, 0, &got, &err), ONB_ENOTFOUND);
	assert_int_equal(onb_admview_by_fp(v, d.cert_fp, 0, &got, &err), ONB_OK);

	/* decommissioned back to manufactured: no certificate, no entry */
	d.cert_fp[0] = '\0';
	assert_int_equal(onb_admview_put(v, &d), ONB_OK);
	assert_int_equal(onb_admview_count(v), 0);
	assert_int_equal(onb_admview_by_id(v, "dev-1", &got, &err), ONB_ENOTFOUND);

	d = dev("dev-1", 1, ONB_STATE_ACTIVE, "");
	assert_int_equal(onb_admview_put(v, &d), ONB_OK);
	onb_admview_remove(v, "dev-1");
	assert_int_equal(onb_admview_count(v), 0);
	assert_int_equal(onb_admview_by_fp(v, d.cert_fp, 0, &got, &err), ONB_ENOTFOUND);
	onb_admview_free(v);
}

static void rotation_fields(void **state)
{
	struct onb_admview *v = onb_admview_new(0);
	struct onb_device d = dev("dev-r", 10, ONB_STATE_ACTIVE, "t"), got;
	struct onb_err err;

	(void)state;
	make_fp(d.cert_fp_next, 11);
	d.rotate_deadline_ms = 5000;
	d.rotate_required = true;
	assert_int_equal(onb_admview_put(v, &d), ONB_OK);
	/* before the deadline both certificates are the device */
	assert_int_equal(onb_admview_by_fp(v, d.cert_fp, 4999, &got, &err), ONB_OK);
	assert_true(got.rotate_required);
	assert_int_equal(got.rotate_deadline_ms, 5000);
	assert_string_equal(got.cert_fp_next, d.cert_fp_next);
	assert_int_equal(onb_admview_by_fp(v, d.cert_fp_next, 4999, &got, &err), ONB_OK);
	assert_string_equal(got.id, "dev-r");
	/* from the deadline on the current one is retired, the next one works */
	assert_int_equal(onb_admview_by_fp(v, d.cert_fp, 5000, &got, &err), ONB_EREFUSED);
	assert_non_null(strstr(err.msg, "dev-r"));
	assert_int_equal(onb_admview_by_fp(v, d.cert_fp_next, 5000, &got, &err), ONB_OK);
	/* promoted: the next certificate is current, the old one gone */
	memcpy(d.cert_fp, d.cert_fp_next, sizeof(d.cert_fp));
	d.cert_fp_next[0] = '\0';
	d.rotate_deadline_ms = 0;
	d.rotate_required = false;
	assert_int_equal(onb_admview_put(v, &d), ONB_OK);
	make_fp(d.cert_fp_next, 10);
	assert_int_equal(onb_admview_by_fp(v, d.cert_fp_next, 9999, &got, &err), ONB_ENOTFOUND);
	assert_int_equal(onb_admview_by_fp(v, d.cert_fp, 9999, &got, &err), ONB_OK);
	assert_false(got.rotate_required);
	onb_admview_free(v);
}

static void refuses_what_does_not_fit(void **state)
{
	struct onb_admview *v = onb_admview_new(0);
	struct onb_device d = dev("dev-x", 1, ONB_STATE_ACTIVE, "");
	struct onb_device got;
	struct onb_err err;

	(void)state;
	snprintf(d.cert_fp, sizeof(d.cert_fp), "%s", "ABCD"); /* not 64 lower-case hex */
	assert_int_equal(onb_admview_put(v, &d), ONB_EINVAL);
	d = dev("bad id", 1, ONB_STATE_ACTIVE, "");
	assert_int_equal(onb_admview_put(v, &d), ONB_EINVAL);
	assert_int_equal(onb_admview_count(v), 0);
	assert_int_equal(onb_admview_by_fp(v, "zz", 0, &got, &err), ONB_ENOTFOUND);
	onb_admview_free(v);
}

/* Many puts, replacements and removes (the tables grow and delete with
 * backward shifts): every lookup agrees with a plain array. */
static void agrees_with_reference(void **state)
{
	enum { N = 6000 }; /* tables grow past 4,096 and shrink by backward shifts */
	struct onb_admview *v = onb_admview_new(0);
	unsigned *fp_of = calloc(N, sizeof(*fp_of)); /* 0: absent */
	struct onb_device d, got;
	struct onb_err err;
	unsigned seed = 12345, next_fp = 1;
	size_t live = 0;

	(void)state;
	assert_non_null(fp_of);
	for(int step = 0; step < 60000; step++){
		unsigned i;
		char id[32];
		seed = seed * 1103515245u + 12345u;
		i = (seed >> 8) % N;
		snprintf(id, sizeof(id), "d%u", i);
		if((seed >> 4) % 4 == 0){
			onb_admview_remove(v, id);
			if(fp_of[i]) live--;
			fp_of[i] = 0;
		}else{
			d = dev(id, next_fp, ONB_STATE_ACTIVE, "t");
			assert_int_equal(onb_admview_put(v, &d), ONB_OK);
			if(!fp_of[i]) live++;
			fp_of[i] = next_fp++;
		}
	}
	assert_int_equal(onb_admview_count(v), live);
	for(unsigned i = 0; i < N; i++){
		char id[32], fp[ONB_FP_HEXLEN + 1];
		snprintf(id, sizeof(id), "d%u", i);
		if(!fp_of[i]){
			assert_int_equal(onb_admview_by_id(v, id, &got, &err), ONB_ENOTFOUND);
			continue;
		}
		make_fp(fp, fp_of[i]);
		assert_int_equal(onb_admview_by_fp(v, fp, 0, &got, &err), ONB_OK);
		assert_string_equal(got.id, id);
		assert_int_equal(onb_admview_by_id(v, id, &got, &err), ONB_OK);
		assert_string_equal(got.cert_fp, fp);
	}
	/* every replaced certificate is gone */
	for(unsigned f = 1; f < next_fp; f += 7){
		char fp[ONB_FP_HEXLEN + 1];
		int r;
		make_fp(fp, f);
		r = onb_admview_by_fp(v, fp, 0, &got, &err);
		if(r == ONB_OK){
			unsigned i = (unsigned)strtoul(got.id + 1, NULL, 10);
			assert_int_equal(fp_of[i], f);
		}
	}
	free(fp_of);
	onb_admview_free(v);
}

/* ------------------------------------------------------------ from Redis */

static int reg(const char *id, unsigned fp, enum onb_state s, const char *tenant)
{
	char fph[ONB_FP_HEXLEN + 1];
	struct onb_err err;
	struct onb_register_req req = {
		.id = id, .cert_fp = fph, .cert_serial = "0abc", .not_after = 1900000000,
		.state = s, .tenant = tenant,
	};
	make_fp(fph, fp);
	return onb_registry_register(rc, &req, &actor, &err);
}

static void load_matches_registry(void **state)
{
	struct onb_admview *v = onb_admview_new(0);
	struct onb_device got, want;
	struct onb_err err;
	size_t skipped = 0;
	char fp[ONB_FP_HEXLEN + 1];
	redisReply *r;

	(void)state;
	for(unsigned i = 1; i <= 2500; i++){
		char id[32];
		snprintf(id, sizeof(id), "dev-%u", i);
		assert_int_equal(reg(id, i, i % 3 ? ONB_STATE_ACTIVE : ONB_STATE_UNCLAIMED,
				i % 3 ? "acme" : NULL), ONB_OK);
	}
	assert_int_equal(onb_registry_set_state(rc, "dev-7", ONB_STATE_REVOKED, "lost", &actor, NULL, &err), ONB_OK);
	/* an allowlisted (manufactured) record has no certificate: not loaded */
	r = redisCommand(rc, "HSET onb:dev:{dev-m} state manufactured created 1 updated 1");
	freeReplyObject(r);
	/* a record that does not fit is skipped, not fatal */
	r = redisCommand(rc, "HSET onb:dev:{dev-bad} state active cert_fp nothex");
	freeReplyObject(r);

	assert_int_equal(onb_admview_load(rc, v, 100, NULL, &skipped, &err), ONB_OK);
	assert_int_equal(onb_admview_count(v), 2500);
	assert_int_equal(skipped, 1);
	for(unsigned i = 1; i <= 2500; i += 37){
		char id[32];
		snprintf(id, sizeof(id), "dev-%u", i);
		make_fp(fp, i);
		assert_int_equal(onb_admview_by_fp(v, fp, onb_now_ms(), &got, &err), ONB_OK);
		assert_int_equal(onb_registry_device_by_fp(rc, fp, &want, &err), ONB_OK);
		assert_string_equal(got.id, want.id);
		assert_int_equal(got.state, want.state);
		assert_string_equal(got.tenant, want.tenant);
		assert_string_equal(got.policy, want.policy);
		assert_string_equal(got.cert_fp_next, want.cert_fp_next);
	}
	make_fp(fp, 7);
	assert_int_equal(onb_admview_by_fp(v, fp, onb_now_ms(), &got, &err), ONB_OK);
	assert_int_equal(got.state, ONB_STATE_REVOKED);
	assert_int_equal(onb_admview_by_id(v, "dev-m", &got, &err), ONB_ENOTFOUND);

	/* the event path re-reads one device */
	assert_int_equal(onb_registry_set_state(rc, "dev-8", ONB_STATE_QUARANTINED, "x", &actor, NULL, &err), ONB_OK);
	assert_int_equal(onb_admview_read_device(rc, "dev-8", &got, &err), ONB_OK);
	assert_int_equal(got.state, ONB_STATE_QUARANTINED);
	assert_int_equal(onb_admview_put(v, &got), ONB_OK);
	make_fp(fp, 8);
	assert_int_equal(onb_admview_by_fp(v, fp, onb_now_ms(), &got, &err), ONB_OK);
	assert_int_equal(got.state, ONB_STATE_QUARANTINED);
	assert_int_equal(onb_admview_read_device(rc, "nobody", &got, &err), ONB_ENOTFOUND);
	onb_admview_free(v);
}

static void load_reports_redis_errors(void **state)
{
	struct onb_admview *v = onb_admview_new(0);
	struct onb_err err;
	redisContext *dead = connect_test();

	(void)state;
	assert_non_null(dead);
	/* a context that failed once is never read again */
	dead->err = REDIS_ERR_IO;
	assert_int_equal(onb_admview_load(dead, v, 0, NULL, NULL, &err), ONB_EUNAVAIL);
	redisFree(dead);
	onb_admview_free(v);
}

static void xadd(void)
{
	redisReply *r = redisCommand(rc, "XADD onb:events * type state device d");
	assert_non_null(r);
	freeReplyObject(r);
}

/* The stream trimmed past a reader's position is a gap; a reader still
 * inside the stream, or one that has read everything, is not. */
static void stream_gap(void **state)
{
	char pos[ONB_STREAM_ID_MAX];
	struct onb_err err;
	redisReply *r;
	bool gap;
	int cmp;

	(void)state;
	assert_true(onb_stream_id_cmp("10-2", "9-5", &cmp) && cmp > 0);
	assert_true(onb_stream_id_cmp("10-2", "10-10", &cmp) && cmp < 0);
	assert_false(onb_stream_id_cmp("x", "1-0", &cmp));
	/* no stream at all */
	assert_int_equal(onb_events_gap(rc, "0-0", &gap, &err), ONB_OK);
	assert_false(gap);
	xadd();
	/* a reader that saw nothing, nothing lost */
	assert_int_equal(onb_events_gap(rc, "0-0", &gap, &err), ONB_OK);
	assert_false(gap);
	assert_int_equal(onb_events_tail(rc, pos, &err), ONB_OK);
	xadd();
	xadd();
	assert_int_equal(onb_events_gap(rc, pos, &gap, &err), ONB_OK);
	assert_false(gap);
	/* trimmed to the newest: the one after pos is gone */
	r = redisCommand(rc, "XTRIM onb:events MAXLEN 1");
	freeReplyObject(r);
	assert_int_equal(onb_events_gap(rc, pos, &gap, &err), ONB_OK);
	assert_true(gap);
	/* trimmed to nothing */
	r = redisCommand(rc, "XTRIM onb:events MAXLEN 0");
	freeReplyObject(r);
	assert_int_equal(onb_events_gap(rc, pos, &gap, &err), ONB_OK);
	assert_true(gap);
	/* a reader at the newest id lost nothing even so */
	assert_int_equal(onb_events_tail(rc, pos, &err), ONB_OK);
	r = redisCommand(rc, "XINFO STREAM onb:events");
	assert_non_null(r);
	for(size_t i = 0; i + 1 < r->elements; i += 2){
		if(!strcmp(r->element[i]->str, "last-generated-id")) snprintf(pos, sizeof(pos), "%s", r->element[i + 1]->str);
	}
	freeReplyObject(r);
	assert_int_equal(onb_events_gap(rc, pos, &gap, &err), ONB_OK);
	assert_false(gap);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, redis_fixture_setup, redis_fixture_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(put_get_replace_remove),
		cmocka_unit_test(rotation_fields),
		cmocka_unit_test(refuses_what_does_not_fit),
		cmocka_unit_test(agrees_with_reference),
		T(load_matches_registry),
		T(load_reports_redis_errors),
		T(stream_gap),
	};
	return cmocka_run_group_tests(tests, redis_fixture_start, redis_fixture_stop);
}

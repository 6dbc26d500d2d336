/* The allowlist of fleet provisioning (lib/provisioning/provreg.c, onb_allowlist_add)
 * against a real, throwaway redis-server (redis_fixture.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provisioning/provreg.h"
#include "registry/registry.h"
#include "redis_fixture.h"

static const struct onb_actor actor = { .who = "test:unit", .source = "127.0.0.1" };

static void make_fp(char out[ONB_FP_HEXLEN + 1], unsigned n)
{
	snprintf(out, ONB_FP_HEXLEN + 1, "%064x", n);
}

static long long exists(const char *key) { return int_cmd("EXISTS", key); }

static void allowlist_counts_and_idempotence(void **state)
{
	char fp[ONB_FP_HEXLEN + 1], other[ONB_FP_HEXLEN + 1], id[4][16];
	struct onb_allow_entry e[4];
	enum onb_allow_result res[4];
	struct onb_device d;
	struct onb_err err;
	int64_t t0 = onb_now_ms();

	(void)state;
	make_fp(fp, 1);
	make_fp(other, 2);
	for(int i = 0; i < 4; i++){
		snprintf(id[i], sizeof(id[i]), "SN-%d", i);
		e[i] = (struct onb_allow_entry){ .device_id = id[i], .serial = id[i], .batch = "2026-01" };
	}
	e[0].birth_fp = fp;
	assert_int_equal(onb_allowlist_add(rc, e, 3, res, &actor, &err), ONB_OK);
	assert_int_equal(res[0], ONB_ALLOW_ADDED);
	assert_int_equal(res[1], ONB_ALLOW_ADDED);
	assert_int_equal(res[2], ONB_ALLOW_ADDED);
	assert_int_equal(xlen(ONB_KEY_AUDIT), 1);
	assert_newest(ONB_KEY_AUDIT, "action", "allowlist-add");
	assert_newest(ONB_KEY_AUDIT, "result", "ok");
	assert_newest(ONB_KEY_AUDIT, "added", "3");
	assert_newest(ONB_KEY_AUDIT, "present", "0");
	assert_newest(ONB_KEY_AUDIT, "first", "SN-0");
	assert_newest(ONB_KEY_AUDIT, "last", "SN-2");
	assert_newest(ONB_KEY_AUDIT, "batch", "2026-01");
	assert_newest(ONB_KEY_AUDIT, "reason", "added 3, already present 0");
	assert_int_equal(exists(ONB_KEY_EVENTS), 0); /* manufactured devices cannot connect: no events */

	assert_int_equal(onb_registry_device_get(rc, "SN-0", &d, &err), ONB_OK);
	assert_int_equal(d.state, ONB_STATE_MANUFACTURED);
	assert_string_equal(d.birth_fp, fp);
	assert_string_equal(d.batch, "2026-01");
	assert_string_equal(d.cert_fp, "");
	assert_true(d.created_ms >= t0);
	assert_int_equal(d.updated_ms, d.created_ms);
	assert_int_equal(onb_registry_device_get(rc, "SN-1", &d, &err), ONB_OK);
	assert_string_equal(d.birth_fp, "");

	/* again, plus one new; a present record is left as it was */
	e[0].birth_fp = other;
	e[0].batch = "changed";
	assert_int_equal(onb_allowlist_add(rc, e, 4, res, &actor, &err), ONB_OK);
	assert_int_equal(res[0], ONB_ALLOW_PRESENT);
	assert_int_equal(res[1], ONB_ALLOW_PRESENT);
	assert_int_equal(res[2], ONB_ALLOW_PRESENT);
	assert_int_equal(res[3], ONB_ALLOW_ADDED);
	assert_int_equal(onb_registry_device_get(rc, "SN-0", &d, &err), ONB_OK);
	assert_string_equal(d.birth_fp, fp);
	assert_string_equal(d.batch, "2026-01");
	assert_int_equal(xlen(ONB_KEY_AUDIT), 2);
	assert_newest(ONB_KEY_AUDIT, "added", "1");
	assert_newest(ONB_KEY_AUDIT, "present", "3");
	assert_newest(ONB_KEY_AUDIT, "batch", ""); /* mixed batches: not named */

	/* the same device twice in one call: added, then present */
	e[1] = e[0];
	e[0].device_id = e[1].device_id = "SN-dup";
	assert_int_equal(onb_allowlist_add(rc, e, 2, res, &actor, &err), ONB_OK);
	assert_int_equal(res[0], ONB_ALLOW_ADDED);
	assert_int_equal(res[1], ONB_ALLOW_PRESENT);
	assert_int_equal(dbsize(), 6); /* 5 devices + audit */

	/* n == 0 writes nothing */
	assert_int_equal(onb_allowlist_add(rc, e, 0, res, &actor, &err), ONB_OK);
	assert_int_equal(xlen(ONB_KEY_AUDIT), 3);
}

static void allowlist_bad_entries_write_nothing(void **state)
{
	struct onb_allow_entry e[2] = {
		{ .device_id = "SN-1", .serial = "SN-1" },
		{ .device_id = "SN-2", .serial = "SN-2" },
	};
	enum onb_allow_result res[2] = { 7, 7 };
	struct onb_err err;

	(void)state;
	e[1].device_id = "SN 2";
	assert_int_equal(onb_allowlist_add(rc, e, 2, res, &actor, &err), ONB_EINVAL);
	assert_non_null(strstr(err.msg, "entry 1"));
	e[1].device_id = "SN-2";
	e[1].birth_fp = "ABCD";
	assert_int_equal(onb_allowlist_add(rc, e, 2, res, &actor, &err), ONB_EINVAL);
	e[1].birth_fp = NULL;
	e[1].batch = "line\nbreak";
	assert_int_equal(onb_allowlist_add(rc, e, 2, res, &actor, &err), ONB_EINVAL);
	e[1].batch = "01234567890123456789012345678901234567890123456789012345678901234"; /* 65 */
	assert_int_equal(onb_allowlist_add(rc, e, 2, res, &actor, &err), ONB_EINVAL);
	e[1].batch = NULL;
	assert_int_equal(onb_allowlist_add(rc, e, 2, res, NULL, &err), ONB_EINVAL);
	assert_int_equal(onb_allowlist_add(rc, e, ONB_ALLOW_BATCH_MAX + 1, res, &actor, &err), ONB_EINVAL);
	assert_int_equal(onb_allowlist_add(rc, NULL, 2, res, &actor, &err), ONB_EINVAL);
	assert_int_equal(res[0], 7);
	assert_int_equal(res[1], 7);
	assert_int_equal(dbsize(), 0);
}

/* A full batch in one call, sent to a server whose script cache was just
 * flushed (every pipelined EVALSHA answers NOSCRIPT, then is re-sent). */
static void allowlist_big_batch_after_script_flush(void **state)
{
	static char ids[ONB_ALLOW_BATCH_MAX][16];
	static struct onb_allow_entry e[ONB_ALLOW_BATCH_MAX];
	static enum onb_allow_result res[ONB_ALLOW_BATCH_MAX];
	struct onb_err err;
	redisReply *r;
	size_t added = 0;

	(void)state;
	for(int i = 0; i < ONB_ALLOW_BATCH_MAX; i++){
		snprintf(ids[i], sizeof(ids[i]), "B-%d", i % (ONB_ALLOW_BATCH_MAX - 100)); /* 100 repeats */
		e[i] = (struct onb_allow_entry){ .device_id = ids[i], .serial = ids[i], .batch = "big" };
	}
	r = redisCommand(rc, "SCRIPT FLUSH");
	freeReplyObject(r);
	r = redisCommand(rc, "CONFIG RESETSTAT");
	freeReplyObject(r);
	int64_t t0 = onb_mono_ms();
	if(onb_allowlist_add(rc, e, ONB_ALLOW_BATCH_MAX, res, &actor, &err) != ONB_OK) fail_msg("%s", err.msg);
	fprintf(stderr, "# %d allowlist entries in one call: %lld ms\n", ONB_ALLOW_BATCH_MAX,
			(long long)(onb_mono_ms() - t0));
	for(int i = 0; i < ONB_ALLOW_BATCH_MAX; i++) added += res[i] == ONB_ALLOW_ADDED;
	assert_int_equal(added, ONB_ALLOW_BATCH_MAX - 100);
	assert_int_equal(dbsize(), ONB_ALLOW_BATCH_MAX - 100 + 1);
	assert_int_equal(xlen(ONB_KEY_AUDIT), 1);
	assert_newest(ONB_KEY_AUDIT, "present", "100");
	/* every EVALSHA was refused once, the script loaded once */
	r = redisCommand(rc, "INFO commandstats");
	assert_non_null(strstr(r->str, "cmdstat_script|load:calls=1,"));
	assert_non_null(strstr(r->str, "cmdstat_evalsha:calls=20000,"));
	freeReplyObject(r);
	/* the connection is in step afterwards */
	assert_int_equal(dbsize(), ONB_ALLOW_BATCH_MAX - 100 + 1);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, redis_fixture_setup, redis_fixture_teardown)
	const struct CMUnitTest tests[] = {
		T(allowlist_counts_and_idempotence),
		T(allowlist_bad_entries_write_nothing),
		T(allowlist_big_batch_after_script_flush),
	};
#undef T
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, redis_fixture_start, redis_fixture_stop);
}

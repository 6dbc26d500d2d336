/* lib/provisioning/replyticket.c: a provisioning reply admits exactly the connection it
 * answers, with exactly that payload, for a limited time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "provisioning/replyticket.h"

#define TOPIC "$aws/certificates/create-from-csr/json/accepted"
#define REPLY "{\"certificateId\":\"ab\"}"

static bool admit(struct onb_reply_tickets *t, const char *id, const char *topic, const char *payload,
		int64_t now)
{
	return onb_reply_tickets_admit(t, id, topic, payload, strlen(payload), now);
}

static void only_the_asker_with_that_reply(void **state)
{
	struct onb_reply_tickets *t = onb_reply_tickets_new(16, 10000);

	(void)state;
	assert_non_null(t);
	assert_int_equal(onb_reply_tickets_issue(t, "dev-1", TOPIC, REPLY, strlen(REPLY), 1000), 0);
	assert_true(admit(t, "dev-1", TOPIC, REPLY, 1000));
	assert_true(admit(t, "dev-1", TOPIC, REPLY, 1001)); /* a second subscription, a reconnect */
	assert_false(admit(t, "dev-2", TOPIC, REPLY, 1000));
	assert_false(admit(t, "dev-1", "$aws/certificates/create-from-csr/json/rejected", REPLY, 1000));
	assert_false(admit(t, "dev-1", TOPIC, "{\"certificateId\":\"ac\"}", 1000));
	/* the id/topic boundary is part of the digest */
	assert_int_equal(onb_reply_tickets_issue(t, "ab", "c/x", "p", 1, 1000), 0);
	assert_false(onb_reply_tickets_admit(t, "a", "bc/x", "p", 1, 1000));
	assert_true(onb_reply_tickets_admit(t, "ab", "c/x", "p", 1, 1000));
	/* an empty payload is a payload too */
	assert_int_equal(onb_reply_tickets_issue(t, "dev-3", TOPIC, "", 0, 1000), 0);
	assert_true(onb_reply_tickets_admit(t, "dev-3", TOPIC, NULL, 0, 1000));
	assert_false(onb_reply_tickets_admit(t, "dev-3", TOPIC, "x", 1, 1000));
	onb_reply_tickets_free(t);
}

static void tickets_expire_and_unheard_ones_are_counted(void **state)
{
	struct onb_reply_tickets *t = onb_reply_tickets_new(16, 10000);

	(void)state;
	onb_reply_tickets_issue(t, "dev-1", TOPIC, REPLY, strlen(REPLY), 1000);
	onb_reply_tickets_issue(t, "dev-2", TOPIC, REPLY, strlen(REPLY), 2000);
	onb_reply_tickets_issue(t, "dev-3", TOPIC, REPLY, strlen(REPLY), 3000);
	assert_true(admit(t, "dev-2", TOPIC, REPLY, 2500));
	assert_false(admit(t, "dev-1", TOPIC, REPLY, 11000)); /* lived 10 s */
	assert_int_equal(onb_reply_tickets_expire(t, 12000), 1); /* dev-1 never heard; dev-2 did */
	assert_int_equal(onb_reply_tickets_count(t), 1);
	assert_true(admit(t, "dev-3", TOPIC, REPLY, 12000));
	assert_int_equal(onb_reply_tickets_expire(t, 13000), 0);
	assert_int_equal(onb_reply_tickets_count(t), 0);
	onb_reply_tickets_free(t);
}

static void a_full_table_lets_the_oldest_go(void **state)
{
	struct onb_reply_tickets *t = onb_reply_tickets_new(100, 10000);
	char id[32];

	(void)state;
	for(int i = 0; i < 250; i++){
		snprintf(id, sizeof(id), "dev-%d", i);
		assert_int_equal(onb_reply_tickets_issue(t, id, TOPIC, REPLY, strlen(REPLY), 1000 + i), 0);
	}
	assert_int_equal(onb_reply_tickets_count(t), 100);
	for(int i = 0; i < 250; i++){
		snprintf(id, sizeof(id), "dev-%d", i);
		assert_int_equal(admit(t, id, TOPIC, REPLY, 1300), i >= 150);
	}
	/* the chains stay consistent through wrap-around and expiry */
	assert_int_equal(onb_reply_tickets_expire(t, 1000 + 200 + 10000), 0);
	assert_int_equal(onb_reply_tickets_count(t), 49);
	assert_true(admit(t, "dev-249", TOPIC, REPLY, 11210));
	onb_reply_tickets_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(only_the_asker_with_that_reply),
		cmocka_unit_test(tickets_expire_and_unheard_ones_are_counted),
		cmocka_unit_test(a_full_table_lets_the_oldest_go),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

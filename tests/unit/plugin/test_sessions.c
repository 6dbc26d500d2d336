/* plugin/sessions.c on its own: the session table that outlives DISCONNECT
 * for the will check, takeovers, and connection addresses the broker reuses.
 * The broker's allocator is stubbed with libc's; connections are fake
 * addresses that sessions.c must never dereference (they point nowhere). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "onboard.h"

void *mosquitto_malloc(size_t size) { return malloc(size); }
void *mosquitto_calloc(size_t n, size_t size) { return calloc(n, size); }
void mosquitto_free(void *p) { free(p); }

#define CONN(n) ((const struct mosquitto *)(uintptr_t)(0x7f0000001000ULL + (uint64_t)(n) * 0x1000))

static const char POLICY[] = "{\"version\":\"2026-01-09\",\"statement\":[{\"effect\":\"allow\","
	"\"action\":[\"publish\"],\"resource\":[\"topic:devices/${deviceId}/status\"]}]}";

/* A session for id on conn, holding a compiled policy (owned by the table
 * once put: ASan's leak check sees any entry that is never freed). */
static void put(const char *id, const struct mosquitto *conn)
{
	struct onb_policy *doc = NULL;
	struct onb_policy_vars vars = { .device_id = id };
	struct session s = { .client = conn, .idclass = ONB_ID_DEVICE };
	struct onb_err err;

	snprintf(s.id, sizeof(s.id), "%s", id);
	assert_int_equal(onb_policy_parse(POLICY, strlen(POLICY), &doc, &err), ONB_OK);
	assert_int_equal(onb_policy_compile(doc, &vars, &s.policy, &err), ONB_OK);
	onb_policy_free(doc);
	assert_int_equal(sessions_put(&s), ONB_OK);
}

static int teardown(void **state)
{
	(void)state;
	sessions_clear();
	return 0;
}

static void disconnect_keeps_policy_for_the_will(void **state)
{
	struct session *s;

	(void)state;
	put("dev-1", CONN(1));
	assert_non_null(sessions_find("dev-1"));
	assert_int_equal(sessions_count(), 1);
	sessions_end(CONN(1), false);
	/* the will check after DISCONNECT finds it, with its policy */
	s = sessions_get(CONN(1));
	assert_non_null(s);
	assert_true(s->ended);
	assert_true(onb_policy_allows(s->policy, ONB_ACT_PUBLISH, "devices/dev-1/status", NULL));
	/* but registry events and counters no longer see it */
	assert_null(sessions_find("dev-1"));
	assert_int_equal(sessions_count(), 0);
	sessions_end(CONN(1), false); /* a second DISCONNECT changes nothing */
	sessions_reap();
	assert_null(sessions_get(CONN(1)));
}

static void takeover_keeps_old_connection_until_its_disconnect(void **state)
{
	struct session *old;

	(void)state;
	put("dev-1", CONN(1));
	put("dev-1", CONN(2)); /* same id again: the broker replaces CONN(1) */
	old = sessions_get(CONN(1));
	assert_non_null(old);
	assert_true(old->ended);     /* its will is judged next, with its policy */
	assert_non_null(old->policy);
	assert_ptr_equal(sessions_find("dev-1"), sessions_get(CONN(2)));
	assert_false(sessions_get(CONN(2))->ended);
	assert_int_equal(sessions_count(), 1);
	sessions_end(CONN(1), false);
	assert_ptr_equal(sessions_find("dev-1"), sessions_get(CONN(2)));
	sessions_reap();
	assert_null(sessions_get(CONN(1)));
	assert_non_null(sessions_get(CONN(2)));
}

static void reused_address_never_inherits_an_ended_session(void **state)
{
	struct session *s;

	(void)state;
	put("dev-1", CONN(1));
	sessions_end(CONN(1), false);
	/* the broker freed CONN(1) and a new connection got its address before
	 * the tick: authenticating it drops the stale entry at once */
	sessions_forget_client(CONN(1));
	assert_null(sessions_get(CONN(1)));
	put("dev-2", CONN(1));
	s = sessions_get(CONN(1));
	assert_non_null(s);
	assert_string_equal(s->id, "dev-2");
	assert_false(s->ended);
	sessions_reap(); /* frees the old dev-1 entry, not the new one */
	assert_ptr_equal(sessions_get(CONN(1)), s);
	assert_ptr_equal(sessions_find("dev-2"), s);
	assert_null(sessions_find("dev-1"));
	/* a refused connect on a reused address: nothing of the old is left */
	put("dev-3", CONN(3));
	sessions_end(CONN(3), false);
	sessions_forget_client(CONN(3));
	assert_null(sessions_get(CONN(3)));
	sessions_end(CONN(3), false); /* its DISCONNECT */
	assert_null(sessions_get(CONN(3)));
}

static void put_reuses_address_without_forget(void **state)
{
	(void)state;
	/* sessions_put itself drops an ended entry holding the same address */
	put("dev-1", CONN(1));
	sessions_end(CONN(1), false);
	put("dev-9", CONN(1));
	assert_string_equal(sessions_get(CONN(1))->id, "dev-9");
	assert_int_equal(sessions_count(), 1);
}

static void reconnect_drops_ended_entries_of_the_id(void **state)
{
	(void)state;
	put("dev-1", CONN(1));
	sessions_end(CONN(1), false);
	put("dev-1", CONN(2)); /* reconnect before the tick */
	assert_null(sessions_get(CONN(1)));
	assert_string_equal(sessions_find("dev-1")->id, "dev-1");
	assert_ptr_equal(sessions_find("dev-1"), sessions_get(CONN(2)));
	sessions_reap();
	assert_non_null(sessions_get(CONN(2)));
}

static void count_visit(struct session *s, void *arg)
{
	assert_false(s->ended);
	(*(int *)arg)++;
}

static void many_sessions_grow_and_each_sees_live_only(void **state)
{
	char id[32];
	int n = 0;

	(void)state;
	for(int i = 0; i < 5000; i++){
		snprintf(id, sizeof(id), "dev-%d", i);
		put(id, CONN(i));
	}
	for(int i = 0; i < 5000; i += 2) sessions_end(CONN(i), false);
	for(int i = 0; i < 5000; i++){
		struct session *s = sessions_get(CONN(i));
		snprintf(id, sizeof(id), "dev-%d", i);
		assert_non_null(s);
		assert_string_equal(s->id, id);
		assert_int_equal(s->ended, i % 2 == 0);
		if(i % 2) assert_ptr_equal(sessions_find(id), s);
		else assert_null(sessions_find(id));
	}
	sessions_each(count_visit, &n);
	assert_int_equal(n, 2500);
	assert_int_equal(sessions_count(), 2500);
	sessions_reap();
	for(int i = 0; i < 5000; i++) assert_int_equal(sessions_get(CONN(i)) != NULL, i % 2 == 1);
	/* sessions_clear (teardown) frees the live half and the tables */
}

static void persistent_session_is_parked_until_its_device_returns(void **state)
{
	struct session *s;

	(void)state;
	put("dev-1", CONN(1));
	sessions_end(CONN(1), true);
	sessions_reap();
	/* the broker queues for the offline session: its policy still answers */
	s = sessions_get(CONN(1));
	assert_non_null(s);
	assert_true(s->ended && s->parked);
	assert_true(onb_policy_allows(s->policy, ONB_ACT_PUBLISH, "devices/dev-1/status", NULL));
	assert_ptr_equal(sessions_find_parked("dev-1"), s);
	/* invisible to registry events and counters as a live session */
	assert_null(sessions_find("dev-1"));
	assert_int_equal(sessions_count(), 0);
	sessions_reap(); /* stays parked */
	assert_non_null(sessions_get(CONN(1)));
	/* the device returns on a new connection: the parked entry is freed */
	put("dev-1", CONN(2));
	assert_null(sessions_get(CONN(1)));
	assert_null(sessions_find_parked("dev-1"));
	assert_non_null(sessions_find("dev-1"));
}

static void parked_entries_end_with_the_broker_session_or_the_registry(void **state)
{
	(void)state;
	put("dev-1", CONN(1));
	put("dev-2", CONN(2));
	put("dev-3", CONN(3));
	for(int i = 1; i <= 3; i++) sessions_end(CONN(i), true);
	sessions_reap();
	/* the broker ends the session it kept (2.1: DISCONNECT after CLIENT_OFFLINE) */
	sessions_end(CONN(1), false);
	assert_null(sessions_get(CONN(1)));
	/* the registry revoked the device */
	sessions_drop_parked(sessions_find_parked("dev-2"));
	assert_null(sessions_get(CONN(2)));
	/* the broker freed the connection and reuses its address */
	sessions_forget_client(CONN(3));
	assert_null(sessions_get(CONN(3)));
	assert_null(sessions_find_parked("dev-3"));
}

static void kicked_session_is_never_parked(void **state)
{
	struct session *s;

	(void)state;
	put("dev-1", CONN(1));
	s = sessions_find("dev-1");
	s->deny_will = true; /* disconnected for a change of state */
	sessions_end(CONN(1), true);
	sessions_reap();
	assert_null(sessions_get(CONN(1)));
}

/* The broker's "end this kept session" (plugin.c's, stubbed): the ids asked. */
static char ended_ids[8][ONB_ID_MAX + 1];
static int n_ended;
static bool record_end(const char *id)
{
	if(n_ended < 8) snprintf(ended_ids[n_ended++], sizeof(ended_ids[0]), "%s", id);
	return true;
}

/* put_class: as put, for an identity class other than a device's. */
static void put_class(const char *id, const struct mosquitto *conn, enum onb_idclass c)
{
	put(id, conn);
	sessions_get(conn)->idclass = c;
}

static void claim_and_birth_sessions_end_with_their_connection(void **state)
{
	(void)state;
	n_ended = 0;
	sessions_set_ender(record_end);
	put_class("claim-1", CONN(1), ONB_ID_CLAIM);
	put_class("birth-1", CONN(2), ONB_ID_BIRTH);
	put("dev-1", CONN(3));
	put_class("claim-2", CONN(4), ONB_ID_CLAIM);
	sessions_end(CONN(1), true);
	sessions_end(CONN(2), true);
	sessions_end(CONN(3), true);
	sessions_end(CONN(4), false); /* a clean session: nothing to end */
	sessions_reap();
	assert_int_equal(n_ended, 2);
	assert_string_equal(ended_ids[0], "birth-1");
	assert_string_equal(ended_ids[1], "claim-1");
	/* never parked: nothing answers the READ checks of their sessions */
	assert_null(sessions_get(CONN(1)));
	assert_null(sessions_get(CONN(2)));
	/* a device's kept session is parked, not ended */
	assert_non_null(sessions_find_parked("dev-1"));
	sessions_set_ender(NULL);
}

static void kept_session_of_an_id_in_use_again_is_not_ended(void **state)
{
	(void)state;
	n_ended = 0;
	sessions_set_ender(record_end);
	put_class("claim-1", CONN(1), ONB_ID_CLAIM);
	sessions_end(CONN(1), true);
	/* the same id connects again before the tick: its session is the new
	 * connection's now */
	put_class("claim-1", CONN(2), ONB_ID_CLAIM);
	sessions_reap();
	assert_int_equal(n_ended, 0);
	assert_non_null(sessions_find("claim-1"));
	/* without a way to end it (Mosquitto 2.0) the entry still goes */
	sessions_set_ender(NULL);
	sessions_end(CONN(2), true);
	sessions_reap();
	assert_null(sessions_get(CONN(2)));
	assert_null(sessions_find_parked("claim-1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(disconnect_keeps_policy_for_the_will, teardown),
		cmocka_unit_test_teardown(takeover_keeps_old_connection_until_its_disconnect, teardown),
		cmocka_unit_test_teardown(reused_address_never_inherits_an_ended_session, teardown),
		cmocka_unit_test_teardown(put_reuses_address_without_forget, teardown),
		cmocka_unit_test_teardown(reconnect_drops_ended_entries_of_the_id, teardown),
		cmocka_unit_test_teardown(many_sessions_grow_and_each_sees_live_only, teardown),
		cmocka_unit_test_teardown(persistent_session_is_parked_until_its_device_returns, teardown),
		cmocka_unit_test_teardown(parked_entries_end_with_the_broker_session_or_the_registry, teardown),
		cmocka_unit_test_teardown(kicked_session_is_never_parked, teardown),
		cmocka_unit_test_teardown(claim_and_birth_sessions_end_with_their_connection, teardown),
		cmocka_unit_test_teardown(kept_session_of_an_id_in_use_again_is_not_ended, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* onb:sessions (lib/registry/sessionfeed.c): announcements round-trip through the
 * one XREAD that also carries onb:events, and the fleet rule decides which
 * of two sessions of a device closes by stream order alone. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "registry/sessionfeed.h"
#include "redis_fixture.h"

#define FP_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FP_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static struct onb_session_ann ann(const char *device, const char *broker, const char *conn, const char *fp)
{
	struct onb_session_ann a;
	memset(&a, 0, sizeof(a));
	snprintf(a.device, sizeof(a.device), "%s", device);
	snprintf(a.broker, sizeof(a.broker), "%s", broker);
	snprintf(a.conn, sizeof(a.conn), "%s", conn);
	snprintf(a.fp, sizeof(a.fp), "%s", fp);
	snprintf(a.source, sizeof(a.source), "127.0.0.1");
	return a;
}

struct seen {
	int events, sessions;
	struct onb_session_ann last;
	char order[16]; /* 'e' or 's' per delivery */
};

static void on_event(const struct onb_event *ev, void *arg)
{
	struct seen *s = arg;
	(void)ev;
	s->order[s->events + s->sessions] = 'e';
	s->events++;
}

static void on_session(const struct onb_session_ann *a, void *arg)
{
	struct seen *s = arg;
	s->order[s->events + s->sessions] = 's';
	s->sessions++;
	s->last = *a;
}

static void announce_then_read_both_streams(void **state)
{
	struct onb_session_ann a = ann("dev-1", "broker-2", "00ff00ff00ff00ff:7", FP_A);
	char ev_last[ONB_STREAM_ID_MAX], s_last[ONB_STREAM_ID_MAX];
	struct seen seen;
	struct onb_err err;
	redisReply *r;
	(void)state;

	assert_int_equal(onb_events_tail(rc, ev_last, &err), ONB_OK);
	assert_int_equal(onb_sessions_tail(rc, s_last, &err), ONB_OK);
	assert_string_equal(s_last, "0-0");
	assert_int_equal(onb_session_announce(rc, &a, &err), ONB_OK);
	r = redisCommand(rc, "XADD onb:events * type state device dev-9 state revoked");
	freeReplyObject(r);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(onb_feed_read(rc, ev_last, s_last, 0, 16, on_event, on_session, &seen, &err), 2);
	assert_int_equal(seen.events, 1);
	assert_int_equal(seen.sessions, 1);
	assert_string_equal(seen.last.device, "dev-1");
	assert_string_equal(seen.last.broker, "broker-2");
	assert_string_equal(seen.last.conn, "00ff00ff00ff00ff:7");
	assert_string_equal(seen.last.fp, FP_A);
	assert_string_equal(seen.last.source, "127.0.0.1");
	assert_string_not_equal(seen.last.stream_id, "");
	/* positions advanced: nothing more, and the tail agrees */
	assert_int_equal(onb_feed_read(rc, ev_last, s_last, 0, 16, on_event, on_session, &seen, &err), 0);
	{
		char tail[ONB_STREAM_ID_MAX];
		assert_int_equal(onb_sessions_tail(rc, tail, &err), ONB_OK);
		assert_string_equal(tail, s_last);
	}
	/* a blocking read returns as soon as an announcement comes (here: already there) */
	a = ann("dev-2", "broker-1", "0123456789abcdef:1", FP_B);
	assert_int_equal(onb_session_announce(rc, &a, &err), ONB_OK);
	assert_int_equal(onb_feed_read(rc, ev_last, s_last, 200, 16, on_event, on_session, &seen, &err), 1);
	assert_string_equal(seen.last.device, "dev-2");
}

static void malformed_is_refused_or_skipped(void **state)
{
	struct onb_session_ann a = ann("dev/1", "broker-2", "00ff:7", FP_A);
	char ev_last[ONB_STREAM_ID_MAX] = "0-0", s_last[ONB_STREAM_ID_MAX] = "0-0";
	struct seen seen;
	struct onb_err err;
	redisReply *r;
	(void)state;

	/* nothing half-written: refused before anything is sent */
	assert_int_equal(onb_session_announce(rc, &a, &err), ONB_EINVAL);
	a = ann("dev-1", "broker-2", "nothex:7", FP_A);
	assert_int_equal(onb_session_announce(rc, &a, &err), ONB_EINVAL);
	a = ann("dev-1", "broker-2", "00ff:7", "abc");
	assert_int_equal(onb_session_announce(rc, &a, &err), ONB_EINVAL);
	assert_int_equal(xlen(ONB_KEY_SESSIONS), 0);
	/* a malformed entry someone else wrote is skipped, and the reader moves past it */
	r = redisCommand(rc, "XADD onb:sessions * device dev-1 broker b conn x fp y");
	freeReplyObject(r);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(onb_feed_read(rc, ev_last, s_last, 0, 16, on_event, on_session, &seen, &err), 0);
	assert_string_not_equal(s_last, "0-0");
	assert_int_equal(seen.sessions, 0);
}

/* Two brokers, X (instance 1111...) and Y (2222...), each holding dev-1;
 * X's announcement came first in the stream. Each reads the stream in the
 * same order: X sees its own, then Y's; Y sees X's, then its own. */
static void stream_order_leaves_exactly_one(void **state)
{
	const char *ix = "1111111111111111", *iy = "2222222222222222";
	struct onb_session_ann ax = ann("dev-1", "x", "1111111111111111:5", FP_A);
	struct onb_session_ann ay = ann("dev-1", "y", "2222222222222222:9", FP_A);
	enum onb_ann_state sx = ONB_ANN_PENDING, sy = ONB_ANN_PENDING;
	(void)state;

	/* broker X */
	assert_int_equal(onb_session_rival(ix, ax.conn, sx, &ax), ONB_RIVAL_OWN);
	sx = ONB_ANN_SEEN;
	assert_int_equal(onb_session_rival(ix, ax.conn, sx, &ay), ONB_RIVAL_CLOSE);
	/* broker Y: X's comes while its own is still pending: it holds the newer */
	assert_int_equal(onb_session_rival(iy, ay.conn, sy, &ax), ONB_RIVAL_IGNORE);
	assert_int_equal(onb_session_rival(iy, ay.conn, sy, &ay), ONB_RIVAL_OWN);
	/* an older connection of the same process (the broker's own takeover) */
	struct onb_session_ann old = ann("dev-1", "x", "1111111111111111:4", FP_A);
	assert_int_equal(onb_session_rival(ix, ax.conn, ONB_ANN_SEEN, &old), ONB_RIVAL_IGNORE);
	/* an instance id that is a prefix of another's is not the same process */
	struct onb_session_ann longer = ann("dev-1", "z", "11111111111111112:1", FP_A);
	assert_int_equal(onb_session_rival("1111111111111111", ax.conn, ONB_ANN_SEEN, &longer), ONB_RIVAL_CLOSE);
	/* an announcement that was never written counts as the older */
	assert_int_equal(onb_session_rival(ix, ax.conn, ONB_ANN_LOST, &ay), ONB_RIVAL_CLOSE);
}

static void possible_clone(void **state)
{
	(void)state;
	assert_false(onb_session_possible_clone(FP_A, "10.0.0.1", FP_A, "10.0.0.1"));
	assert_true(onb_session_possible_clone(FP_A, "10.0.0.1", FP_B, "10.0.0.1"));
	assert_true(onb_session_possible_clone(FP_A, "10.0.0.1", FP_A, "10.0.0.2"));
	assert_false(onb_session_possible_clone(FP_A, "", FP_A, "10.0.0.2"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(announce_then_read_both_streams, redis_fixture_setup, redis_fixture_teardown),
		cmocka_unit_test_setup_teardown(malformed_is_refused_or_skipped, redis_fixture_setup, redis_fixture_teardown),
		cmocka_unit_test(stream_order_leaves_exactly_one),
		cmocka_unit_test(possible_clone),
	};
	return cmocka_run_group_tests(tests, redis_fixture_start, redis_fixture_stop);
}

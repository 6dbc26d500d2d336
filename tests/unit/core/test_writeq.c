/* The bounded queue between the broker's thread and the plugin's writer
 * (lib/core/writeq.c): order kept, a full queue refuses at once and counts,
 * a waiting taker wakes on a push and on close. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "core/writeq.h"

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fifo_order_across_wraps(void **state)
{
	struct onb_writeq *q = onb_writeq_new(4);
	void *out[8];
	uintptr_t next_in = 1, next_out = 1;
	(void)state;

	assert_non_null(q);
	/* push 3, take 2, many times: the ring wraps and order holds */
	for(int round = 0; round < 10; round++){
		for(int i = 0; i < 3 && onb_writeq_length(q) < 4; i++) assert_true(onb_writeq_push(q, (void *)next_in++));
		size_t n = onb_writeq_take(q, out, 2, 0);
		for(size_t i = 0; i < n; i++) assert_int_equal((uintptr_t)out[i], next_out++);
	}
	size_t n = onb_writeq_take(q, out, 8, 0);
	for(size_t i = 0; i < n; i++) assert_int_equal((uintptr_t)out[i], next_out++);
	assert_int_equal(next_in, next_out);
	assert_int_equal(onb_writeq_dropped_total(q), 0);
	onb_writeq_free(q, NULL);
}

static void full_queue_refuses_and_counts(void **state)
{
	struct onb_writeq *q = onb_writeq_new(3);
	void *out[8];
	int64_t t0;
	(void)state;

	for(uintptr_t i = 1; i <= 3; i++) assert_true(onb_writeq_push(q, (void *)i));
	t0 = mono_ms();
	for(uintptr_t i = 4; i <= 10; i++) assert_false(onb_writeq_push(q, (void *)i));
	/* refusing never waited (generous: a loaded machine) */
	assert_true(mono_ms() - t0 < 1000);
	assert_int_equal(onb_writeq_dropped_total(q), 7);
	assert_int_equal(onb_writeq_take_dropped(q), 7);
	assert_int_equal(onb_writeq_take_dropped(q), 0); /* reported once */
	assert_int_equal(onb_writeq_dropped_total(q), 7);
	/* the oldest are the ones kept */
	assert_int_equal(onb_writeq_take(q, out, 8, 0), 3);
	assert_int_equal((uintptr_t)out[0], 1);
	assert_int_equal((uintptr_t)out[2], 3);
	assert_true(onb_writeq_push(q, (void *)11));
	onb_writeq_free(q, NULL);
	assert_null(onb_writeq_new(0));
}

static void *push_later(void *arg)
{
	struct timespec ts = { 0, 50 * 1000000L };
	nanosleep(&ts, NULL);
	onb_writeq_push(arg, (void *)42);
	return NULL;
}

static void *close_later(void *arg)
{
	struct timespec ts = { 0, 50 * 1000000L };
	nanosleep(&ts, NULL);
	onb_writeq_close(arg);
	return NULL;
}

static void taker_waits_for_push_and_close(void **state)
{
	struct onb_writeq *q = onb_writeq_new(8);
	pthread_t t;
	void *out[2];
	int64_t t0;
	(void)state;

	/* a timed wait with nothing queued times out empty */
	assert_int_equal(onb_writeq_take(q, out, 2, 30), 0);
	/* an unbounded wait returns with the pushed item */
	assert_int_equal(pthread_create(&t, NULL, push_later, q), 0);
	assert_int_equal(onb_writeq_take(q, out, 2, -1), 1);
	assert_int_equal((uintptr_t)out[0], 42);
	pthread_join(t, NULL);
	/* close wakes an unbounded wait, and then refuses pushes */
	assert_int_equal(pthread_create(&t, NULL, close_later, q), 0);
	t0 = mono_ms();
	assert_int_equal(onb_writeq_take(q, out, 2, -1), 0);
	assert_true(mono_ms() - t0 < 5000);
	pthread_join(t, NULL);
	assert_false(onb_writeq_push(q, (void *)1));
	onb_writeq_free(q, NULL);
}

static int freed;
static void count_free(void *item)
{
	(void)item;
	freed++;
}

static void free_releases_queued_items(void **state)
{
	struct onb_writeq *q = onb_writeq_new(4);
	(void)state;

	for(uintptr_t i = 1; i <= 3; i++) onb_writeq_push(q, (void *)i);
	onb_writeq_free(q, count_free);
	assert_int_equal(freed, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fifo_order_across_wraps),
		cmocka_unit_test(full_queue_refuses_and_counts),
		cmocka_unit_test(taker_waits_for_push_and_close),
		cmocka_unit_test(free_releases_queued_items),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Token buckets (lib/core/budget.c): what a flood from one identity may cost. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/budget.h"

static int taken(struct onb_bucket *b, const struct onb_rate *r, int tries, int64_t now)
{
	int n = 0;
	for(int i = 0; i < tries; i++) n += onb_bucket_take(b, r, now);
	return n;
}

static void burst_then_rate(void **state)
{
	struct onb_rate r = { .per_s = 2, .burst = 5 };
	struct onb_bucket b = { 0 };
	(void)state;

	assert_int_equal(taken(&b, &r, 100, 1000), 5);   /* a full bucket, then nothing */
	assert_int_equal(taken(&b, &r, 100, 1499), 0);   /* 0.998 of a token */
	assert_int_equal(taken(&b, &r, 100, 1500), 1);
	assert_int_equal(taken(&b, &r, 100, 11500), 5);  /* refills to the burst, no more */
	/* a clock that goes back takes nothing away and gives nothing */
	assert_int_equal(taken(&b, &r, 100, 500), 0);
}

static void unlimited(void **state)
{
	struct onb_rate r = { .per_s = 0, .burst = 1 };
	struct onb_bucket b = { 0 };
	(void)state;
	assert_int_equal(taken(&b, &r, 1000, 1), 1000);
}

static void keys_have_their_own_buckets(void **state)
{
	struct onb_rate r = { .per_s = 1, .burst = 3 };
	struct onb_bucket_table *t = onb_bucket_table_new(1024);
	int a = 0, b = 0;
	(void)state;

	assert_non_null(t);
	for(int i = 0; i < 50; i++) a += onb_bucket_table_take(t, "aaaa", &r, 100);
	for(int i = 0; i < 50; i++) b += onb_bucket_table_take(t, "bbbb", &r, 100);
	assert_int_equal(a, 3);
	assert_int_equal(b, 3);
	assert_false(onb_bucket_table_take(t, "aaaa", &r, 100));
	onb_bucket_table_free(t);
	assert_null(onb_bucket_table_new(0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(burst_then_rate),
		cmocka_unit_test(unlimited),
		cmocka_unit_test(keys_have_their_own_buckets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The aggregated audit of repeated refusals (lib/registry/auditagg.c): a flood of
 * any size writes at most two entries per kind and window. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "registry/auditagg.h"

struct written {
	int n;
	char reason[8][64];
	char client[8][64];
	long count[8];
	int64_t first[8], last[8];
};

static void sink(const struct onb_audit_entry *e, void *arg)
{
	struct written *w = arg;
	int i = w->n++ % 8;

	snprintf(w->reason[i], sizeof(w->reason[i]), "%s", e->reason ? e->reason : "");
	snprintf(w->client[i], sizeof(w->client[i]), "%s", e->client ? e->client : "");
	w->count[i] = e->count;
	w->first[i] = e->first_ms;
	w->last[i] = e->last_ms;
}

static const struct onb_audit_entry refusal = {
	.actor = "plugin", .source = "127.0.0.1", .action = "request", .result = "deny",
	.reason = "request-rate", .client = "sample-client", .idclass = "claim", .fp = "ab12",
};

static void a_flood_writes_two_entries_per_window(void **state)
{
	struct written w = { 0 };
	struct onb_audit_agg *g = onb_audit_agg_new(16, 1000, sink, &w);
	struct onb_audit_agg_stats st;
	(void)state;

	assert_non_null(g);
	for(int i = 0; i < 100000; i++) onb_audit_agg_note(g, "claim:ab12:127.0.0.1:request-rate", &refusal, 5000 + i / 1000);
	/* the first at once, with its details and no count */
	assert_int_equal(w.n, 1);
	assert_string_equal(w.client[0], "sample-client");
	assert_int_equal(w.count[0], 0);
	onb_audit_agg_tick(g, 5999);
	assert_int_equal(w.n, 1);
	onb_audit_agg_tick(g, 6000);
	/* then one entry with the repeats' count and their first and last times */
	assert_int_equal(w.n, 2);
	assert_int_equal(w.count[1], 99999);
	assert_int_equal(w.first[1], 5000);
	assert_int_equal(w.last[1], 5099);
	assert_string_equal(w.reason[1], "request-rate");
	onb_audit_agg_stats(g, &st);
	assert_int_equal(st.written, 2);
	assert_int_equal(st.absorbed, 99999);
	onb_audit_agg_free(g);
}

static void kinds_are_counted_apart_and_a_single_refusal_writes_one_entry(void **state)
{
	struct written w = { 0 };
	struct onb_audit_agg *g = onb_audit_agg_new(16, 1000, sink, &w);
	(void)state;

	onb_audit_agg_note(g, "a", &refusal, 0);
	onb_audit_agg_note(g, "b", &refusal, 1);
	onb_audit_agg_note(g, "a", &refusal, 2);
	assert_int_equal(w.n, 2);
	onb_audit_agg_tick(g, 1001);
	/* "a" had a repeat, "b" none: only "a" needs a count */
	assert_int_equal(w.n, 3);
	assert_int_equal(w.count[2], 1);
	/* a new window opens with a new immediate entry */
	onb_audit_agg_note(g, "b", &refusal, 2000);
	assert_int_equal(w.n, 4);
	assert_int_equal(w.count[3], 0);
	onb_audit_agg_free(g);
}

static void a_window_found_late_is_closed_before_the_next_opens(void **state)
{
	struct written w = { 0 };
	struct onb_audit_agg *g = onb_audit_agg_new(4, 1000, sink, &w);
	(void)state;

	onb_audit_agg_note(g, "a", &refusal, 0);
	onb_audit_agg_note(g, "a", &refusal, 10);
	onb_audit_agg_note(g, "a", &refusal, 5000); /* no tick in between */
	assert_int_equal(w.n, 3);
	assert_int_equal(w.count[1], 1);
	assert_int_equal(w.first[1], 10);
	assert_int_equal(w.count[2], 0);
	onb_audit_agg_free(g);
}

static void full_table_closes_the_oldest_and_free_flushes(void **state)
{
	struct written w = { 0 };
	struct onb_audit_agg *g = onb_audit_agg_new(2, 60000, sink, &w);
	struct onb_audit_agg_stats st;
	(void)state;

	onb_audit_agg_note(g, "a", &refusal, 0);
	onb_audit_agg_note(g, "a", &refusal, 1);
	onb_audit_agg_note(g, "b", &refusal, 2);
	onb_audit_agg_note(g, "c", &refusal, 3); /* evicts "a", writing its count */
	assert_int_equal(w.n, 4);
	assert_int_equal(w.count[2], 1);
	onb_audit_agg_note(g, "c", &refusal, 4);
	onb_audit_agg_stats(g, &st);
	assert_int_equal(st.evicted, 1);
	onb_audit_agg_free(g); /* "c" had a repeat */
	assert_int_equal(w.n, 5);
	assert_int_equal(w.count[4], 1);
}

static void bad_arguments_are_refused(void **state)
{
	(void)state;
	assert_null(onb_audit_agg_new(0, 1000, sink, NULL));
	assert_null(onb_audit_agg_new(4, 0, sink, NULL));
	assert_null(onb_audit_agg_new(4, 1000, NULL, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_flood_writes_two_entries_per_window),
		cmocka_unit_test(kinds_are_counted_apart_and_a_single_refusal_writes_one_entry),
		cmocka_unit_test(a_window_found_late_is_closed_before_the_next_opens),
		cmocka_unit_test(full_table_closes_the_oldest_and_free_flushes),
		cmocka_unit_test(bad_arguments_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Budgets for input paths: a token bucket per identity, so that a flood from
 * one identity costs that identity its answers and nobody else's.
 * Pure: the caller owns the clock (monotonic milliseconds). */
#ifndef ONB_BUDGET_H
#define ONB_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct onb_rate {
	double per_s;   /* sustained rate; <= 0: unlimited */
	double burst;   /* at most this many at once (>= 1) */
};

struct onb_bucket {
	double tokens;
	int64_t at_ms;  /* last refill; 0: never used (starts full) */
};

/* Takes one token if there is one; false when the budget is spent. */
bool onb_bucket_take(struct onb_bucket *b, const struct onb_rate *rate, int64_t now_ms);

/* Buckets by key (for example a claim certificate's fingerprint), in a
 * fixed direct-mapped table: a key that lands on a slot held by another key
 * takes it over with a full bucket. Keys are verified certificate
 * fingerprints, so nobody outside our CAs can choose colliding ones. */
struct onb_bucket_table;

/* slots > 0; NULL when out of memory. */
struct onb_bucket_table *onb_bucket_table_new(size_t slots);
void onb_bucket_table_free(struct onb_bucket_table *t);
bool onb_bucket_table_take(struct onb_bucket_table *t, const char *key,
		const struct onb_rate *rate, int64_t now_ms);

#endif

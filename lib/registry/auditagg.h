/* Aggregated audit of repeated refusals (docs/registry.md, "Audit").
 *
 * A flood of refusals must cost its sender, never the audit trail: the first
 * refusal of a kind (one key: who, what, why) in a window is written at once,
 * with all its details; the rest of the window's are only counted, and when
 * the window ends one more entry says how many more there were (count: the
 * repeats, not written one by one; first and last: their times; the first
 * refusal's details as the sample). So a flood of any size writes at most
 * two entries per kind and window, and the number of refusals is the number
 * of entries without a count plus the sum of the counts.
 *
 * Pure and single-threaded: the caller owns the clock and the sink (the
 * plugin's registry link, claimsvc's Redis connection). Memory is fixed at
 * creation; when every slot is busy the oldest window is closed early. */
#ifndef ONB_AUDITAGG_H
#define ONB_AUDITAGG_H

#include <stddef.h>
#include <stdint.h>

#include "registry/registry.h"

#define ONB_AUDITAGG_KEY_MAX 256

/* Writes one entry (e and its strings live only during the call). */
typedef void (*onb_audit_sink)(const struct onb_audit_entry *e, void *arg);

struct onb_audit_agg;

/* slots: how many kinds can be open at once; window_ms > 0. NULL when out
 * of memory. The aggregator owns nothing of sink_arg. */
struct onb_audit_agg *onb_audit_agg_new(size_t slots, int64_t window_ms,
		onb_audit_sink sink, void *sink_arg);

/* Closes every open window (writing their counts), then frees g. */
void onb_audit_agg_free(struct onb_audit_agg *g);

/* One refusal of kind key (a string naming who, what and why; cut at
 * ONB_AUDITAGG_KEY_MAX bytes), described by e (its count fields are ignored),
 * at wall-clock time now_ms. */
void onb_audit_agg_note(struct onb_audit_agg *g, const char *key,
		const struct onb_audit_entry *e, int64_t now_ms);

/* Closes the windows that have ended by now_ms; cheap when none has. */
void onb_audit_agg_tick(struct onb_audit_agg *g, int64_t now_ms);

/* A copy of e and its strings in one allocation (free with free()), for a
 * writer on another thread; NULL when out of memory. */
struct onb_audit_entry *onb_audit_entry_copy(const struct onb_audit_entry *e);

/* Counters for tests and metrics: entries written, refusals only counted. */
struct onb_audit_agg_stats {
	uint64_t written, absorbed, evicted;
};
void onb_audit_agg_stats(const struct onb_audit_agg *g, struct onb_audit_agg_stats *out);

#endif

/* MQTT topic names and topic filters (MQTT 3.1.1 / 5): validation, splitting
 * into levels in place, matching, filter containment and overlap, and the
 * `$share/<group>/` prefix of shared subscriptions. Nothing here allocates.
 *
 * Rules (docs/policies.md has examples):
 * - a name or filter is 1..65535 bytes with no NUL; levels are separated by
 *   '/' and may be empty ("a//b", "/a", "a/" are valid);
 * - names hold no '+' or '#'; in a filter '+' is a whole level and '#' is a
 *   whole level and the last one;
 * - "a/#" also matches "a"; a filter whose first level is '+' or '#' never
 *   matches a topic that begins with '$';
 * - UTF-8 well-formedness is not checked here (the broker checks it).
 *
 * Containment and overlap are exact for the set of valid topic names (the
 * empty name does not exist), ignoring the 65535-byte bound, which only
 * errs towards "not contained" and "overlaps", i.e. towards deny. */
#ifndef ONB_TOPIC_H
#define ONB_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/common.h"

#define ONB_TOPIC_MAX 65535 /* bytes, MQTT's limit */
#define ONB_TV_CACHE 32     /* level ends a caller typically keeps on its stack */

enum onb_topic_kind {
	ONB_TOPIC_NAME = 0,   /* a topic a message is published to */
	ONB_TOPIC_FILTER = 1, /* a subscription's filter, may hold '+' and '#' */
};

/* onb_tv.flags */
#define ONB_TV_DOLLAR 0x1u     /* the first byte is '$' */
#define ONB_TV_FIRST_WILD 0x2u /* the first level is '+' or '#' */
#define ONB_TV_WILD 0x4u       /* holds a '+' or '#' level */
#define ONB_TV_HASH 0x8u       /* the last level is '#' */

/* A validated name or filter viewed in place: borrows s and ends, which must
 * outlive it. ends[i] is the byte offset where level i ends, known for the
 * first nends levels; later levels are found by scanning, so any number of
 * levels works with a small ends[]. */
struct onb_tv {
	const char *s;
	const uint16_t *ends;
	uint32_t len;   /* bytes, 1..ONB_TOPIC_MAX */
	uint32_t nlv;   /* levels: separators + 1 */
	uint32_t nends; /* min(nlv, capacity of ends) */
	uint32_t flags; /* ONB_TV_* */
};

/* Checks s[0..len) as a name or filter; ONB_OK, or ONB_EINVAL with the reason in err. */
int onb_topic_check(const char *s, size_t len, enum onb_topic_kind kind, struct onb_err *err);

/* Validates s[0..len) and splits it into tv, recording up to cap level ends
 * in the caller's ends[]; ONB_OK or ONB_EINVAL. tv borrows s and ends. */
int onb_tv_init(struct onb_tv *tv, const char *s, size_t len, enum onb_topic_kind kind,
	uint16_t *ends, size_t cap);

/* onb_tv_init in two steps, for callers that often need no levels at all:
 * validate only (flags set, nlv 0), then split when needed. The functions
 * below take split views only. */
int onb_tv_prepare(struct onb_tv *tv, const char *s, size_t len, enum onb_topic_kind kind);
void onb_tv_split(struct onb_tv *tv, uint16_t *ends, size_t cap);

/* Level i of tv (i < tv->nlv) and its length in *len; not NUL-terminated. NULL when out of range. */
const char *onb_tv_level(const struct onb_tv *tv, uint32_t i, size_t *len);

/* True when filter matches the topic name (a filter as topic never matches). */
bool onb_tv_matches(const struct onb_tv *filter, const struct onb_tv *topic);

/* onb_tv_matches(f, t) for a name t that is prepared but need not be split
 * (t->nlv may be 0): one pass over t, only as far as f needs, no level
 * array. lv and pos skip f's first lv levels, comparing them with t as one
 * string of pos bytes (their '/' included): lv must not be past f's first
 * '+' level, and must be 0 when f has no '+'. 0, 0 is always right; the
 * first '+' level and its offset are the fastest. */
bool onb_tv_matches_name(const struct onb_tv *f, uint32_t lv, uint32_t pos, const struct onb_tv *t);

/* True when every topic name that filter f matches is also matched by filter p. */
bool onb_tv_contains(const struct onb_tv *p, const struct onb_tv *f);

/* True when some topic name is matched by both filters. */
bool onb_tv_overlaps(const struct onb_tv *a, const struct onb_tv *b);

/* a[0..n) == b[0..n), reading only inside both, in a few word compares:
 * a memcmp of a constant 8, 4 or 2 bytes tested only for equality compiles to
 * one load and compare, no library call; the last word may overlap the one
 * before it. */
static inline bool onb_bytes_eq(const char *a, const char *b, uint32_t n)
{
	if(n >= 8){
		for(uint32_t i = 0; i + 8 < n; i += 8){
			if(memcmp(a + i, b + i, 8) != 0) return false;
		}
		return memcmp(a + n - 8, b + n - 8, 8) == 0;
	}
	if(n >= 4) return memcmp(a, b, 4) == 0 && memcmp(a + n - 4, b + n - 4, 4) == 0;
	if(n >= 2) return memcmp(a, b, 2) == 0 && memcmp(a + n - 2, b + n - 2, 2) == 0;
	return n == 0 || a[0] == b[0];
}

/* NUL-terminated conveniences of the above; invalid or NULL input gives false. */
bool onb_topic_name_valid(const char *s);
bool onb_topic_filter_valid(const char *s);
bool onb_topic_matches(const char *filter, const char *topic);
bool onb_filter_contains(const char *p, const char *f);
bool onb_filter_overlaps(const char *a, const char *b);

/* The filter inside "$share/<group>/<filter>" (a pointer into f), f itself
 * when f is not shared, NULL when the share prefix is malformed (empty group,
 * '+' or '#' in the group, nothing after it). The result is not validated. */
const char *onb_filter_unshare(const char *f);

#endif

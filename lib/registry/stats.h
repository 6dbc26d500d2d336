/* Operational counters in Redis (docs/operations.md, "Metrics"): the broker
 * plugin and claimsvc publish their counters as retained MQTT messages under
 * $SYS/onboard/... and also store the same JSON document here, so that
 * `onboardctl stats` (which has a registry connection, not an MQTT client)
 * can print them. Each document expires unless refreshed: a stopped process
 * disappears from the list. */
#ifndef ONB_STATS_H
#define ONB_STATS_H

#include <stdint.h>
#include <hiredis/hiredis.h>

#include "core/common.h"

#define ONB_KEY_STATS_PREFIX "onb:stats:"     /* onb:stats:<kind>:<id> -> JSON */
#define ONB_STATS_KIND_MAX 16                 /* "broker", "claimsvc" */
#define ONB_STATS_DOC_MAX (64 * 1024)
#define ONB_SYS_TOPIC_PREFIX "$SYS/onboard/"  /* $SYS/onboard/<kind>/<id> */

/* Stores json (at most ONB_STATS_DOC_MAX bytes) as onb:stats:<kind>:<id>,
 * expiring after ttl_ms. kind is [a-z]{1,16}, id a valid id. */
int onb_stats_put(redisContext *rc, const char *kind, const char *id, const char *json,
		int64_t ttl_ms, struct onb_err *err);

/* Calls cb for every stored document (kind, id, JSON text, ms left before it
 * expires), in no particular order; stops when cb returns non-zero. */
int onb_stats_list(redisContext *rc,
		int (*cb)(const char *kind, const char *id, const char *json, int64_t ttl_ms, void *arg),
		void *arg, struct onb_err *err);

#endif

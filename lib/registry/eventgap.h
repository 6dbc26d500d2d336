/* Whether onb:events was trimmed past a reader's position: the events a
 * reader at last_id has not seen may be gone, so what it built from the
 * stream (the admission view) must be rebuilt from the registry. */
#ifndef ONB_EVENTGAP_H
#define ONB_EVENTGAP_H

#include <stdbool.h>
#include <hiredis/hiredis.h>

#include "core/common.h"
#include "registry/registry.h"

/* Orders two stream ids "ms-seq": <0, 0, >0; false if either is malformed. */
bool onb_stream_id_cmp(const char *a, const char *b, int *out);

/* Sets *gap when entries newer than last_id may have been trimmed: some
 * were added after it (XINFO's last-generated-id) and either none is left
 * or the oldest left is newer than last_id (when last_id is "0-0", a reader
 * that has seen nothing, only if the stream lost entries at all: Redis 7's
 * entries-added above its length). Conservative: a reader whose own last
 * entry was trimmed counts as a gap, and so does an error reply other than
 * "no such key" (e.g. NOPERM). One XINFO STREAM; ONB_EUNAVAIL on connection
 * errors. */
int onb_events_gap(redisContext *rc, const char *last_id, bool *gap, struct onb_err *err);

#endif

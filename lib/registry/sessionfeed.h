/* One live session per device across a fleet of brokers (docs/registry.md,
 * "onb:sessions"). Each broker appends an announcement to onb:sessions when
 * it admits a device, and every broker reads the stream. Which of two
 * sessions is older is decided by the order of their announcements in the
 * stream, the one order every broker sees alike, never by clocks: a broker
 * that reads a foreign announcement for a device whose own announcement it
 * has already read holds the older session and closes it; one that has not
 * read its own yet holds the newer one (its announcement comes later) and
 * keeps it, because the other broker will close its own. */
#ifndef ONB_SESSIONFEED_H
#define ONB_SESSIONFEED_H

#include <stdbool.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

#include "core/common.h"
#include "core/ids.h"
#include "registry/registry.h"
#include "pki/x509.h"

#define ONB_KEY_SESSIONS "onb:sessions" /* stream: device sessions opened */
/* Approximate length the stream is trimmed to (XADD MAXLEN ~): a reader
 * that falls further behind than this (a broker cut off from Redis during a
 * storm of this many connects) misses announcements, and a duplicate
 * session may then survive until the device reconnects. */
#define ONB_SESSIONS_MAXLEN 100000
#define ONB_CONN_MAX 40     /* "<16 hex of the broker instance>:<decimal sequence>" */
#define ONB_SOURCE_MAX 64   /* a textual IPv4 or IPv6 address */

struct onb_session_ann {
	char stream_id[ONB_STREAM_ID_MAX]; /* set by the reader */
	char device[ONB_ID_MAX + 1];
	char broker[ONB_ID_MAX + 1];       /* plugin_opt_broker_id */
	char conn[ONB_CONN_MAX];           /* names one connection of one broker process */
	char fp[ONB_FP_HEXLEN + 1];        /* the certificate it presented */
	char source[ONB_SOURCE_MAX];       /* its address as the broker saw it, "" unknown */
};

/* Appends a to onb:sessions (trimmed to about ONB_SESSIONS_MAXLEN).
 * ONB_EINVAL for a malformed announcement (nothing sent), ONB_EUNAVAIL for
 * any Redis failure. */
int onb_session_announce(redisContext *rc, const struct onb_session_ann *a, struct onb_err *err);
/* The same announcement, queued for a pipeline (registry/registry.h,
 * onb_reg_queued_reply). */
int onb_session_queue(redisContext *rc, const struct onb_session_ann *a, struct onb_err *err);

/* Writes the id of the newest announcement into last_id ("0-0" if none). */
int onb_sessions_tail(redisContext *rc, char last_id[ONB_STREAM_ID_MAX], struct onb_err *err);

/* One XREAD of onb:events and onb:sessions after their positions, waiting
 * up to block_ms (0: not at all) for the first entry, up to max of each.
 * Calls on_event / on_session for each well-formed entry in stream order,
 * and advances each position past every entry read (malformed ones are
 * skipped, never re-read). Returns how many entries were delivered, or a
 * negative ONB_E* code. */
int onb_feed_read(redisContext *rc, char events_last[ONB_STREAM_ID_MAX],
		char sessions_last[ONB_STREAM_ID_MAX], int block_ms, int max,
		void (*on_event)(const struct onb_event *ev, void *arg),
		void (*on_session)(const struct onb_session_ann *a, void *arg),
		void *arg, struct onb_err *err);

/* Where a broker's own announcement of a live session stands. */
enum onb_ann_state {
	ONB_ANN_PENDING,  /* handed to the writer, not read back from the stream yet */
	ONB_ANN_SEEN,     /* read back: every later announcement is newer */
	ONB_ANN_LOST,     /* never written (queue full): the session counts as the older */
};

enum onb_rival_verdict {
	ONB_RIVAL_IGNORE,  /* nothing to do */
	ONB_RIVAL_OWN,     /* the live session's own announcement: mark it seen */
	ONB_RIVAL_CLOSE,   /* a newer session elsewhere: close the live one */
};

/* What a broker whose process announces conns starting with instance
 * ("<16 hex>") does with announcement a for a device it holds live on
 * connection live_conn, whose announcement is in live_state. An
 * announcement of another connection of this same process is ignored: a
 * takeover on one broker is the broker's own (client id takeover). */
enum onb_rival_verdict onb_session_rival(const char *instance, const char *live_conn,
		enum onb_ann_state live_state, const struct onb_session_ann *a);

/* Whether the newer session presents another certificate or comes from
 * another address than the older (a possible clone). */
bool onb_session_possible_clone(const char *old_fp, const char *old_source,
		const char *new_fp, const char *new_source);

#endif

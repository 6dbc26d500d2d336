/* The plugin's registry writes, off the broker's thread.
 *
 * The main thread only enqueues (core/writeq.h: a copy under a mutex held for
 * one pointer, no I/O, no waiting); one writer thread with its own Redis
 * connection writes the entries in the order they were queued, so the audit
 * trail of one broker keeps its order. What goes through it: every audit
 * entry of the plugin (connects, aggregated refusals) and the session
 * announcements of onb:sessions (fleet.c).
 *
 * Bound: plugin_opt_audit_queue_max entries (docs/operations.md, "The
 * registry writer").
 * When the queue is full an entry is dropped, never waited for: the loss is
 * counted (metrics: audit_dropped) and reported by one aggregated audit
 * entry ("audit-dropped", with the count) as soon as the writer can write
 * again. While Redis is unreachable the writer reconnects every
 * redis_retry_ms, as registry_link.c's connector does, and the queue fills. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onboard.h"
#include "registry/auditagg.h"
#include "core/writeq.h"

/* The bound, plugin_opt_audit_queue_max, is 16,384 entries by default: at
 * the ~400 connects/s one broker core admits, every one audited, about 40 s
 * of Redis being slow or away; an entry is at most a few hundred bytes (a
 * session announcement about 500), so the queue stays under ~10 MB of the
 * broker's memory. A longer outage refuses new connects anyway (fail
 * closed), and refusals are aggregated (refusals.c). The writer holds up to
 * WRITER_BATCH more, taken from the queue and not written yet. */
#define WRITER_BATCH 64
#define WRITER_IDLE_WAIT_MS 250 /* also bounds how long a stop waits */
/* After the first entry, a few ms more to gather a batch: one pipeline of
 * many entries costs Redis far less CPU than one round trip each (issue 16,
 * docs/scaling.md); an audit entry or announcement is that much later. */
#define WRITER_GATHER_MS 5

enum writer_kind { W_AUDIT, W_ANNOUNCE };

struct writer_item {
	enum writer_kind kind;
	struct onb_audit_entry *audit;  /* W_AUDIT: onb_audit_entry_copy (free()) */
	struct onb_session_ann *ann;    /* W_ANNOUNCE: malloc'd (free()) */
};

static struct onb_writeq *queue;
static pthread_t writer;
static bool writer_running;
static atomic_bool stopping;
static struct onb_redis_cfg writer_cfg;
static int retry_ms;
static char broker_id[ONB_ID_MAX + 1];
static int queue_max;

static void item_free(void *p)
{
	struct writer_item *it = p;
	if(it){
		free(it->audit);
		free(it->ann);
	}
	free(it);
}

static void sleep_unless_stopping(int ms)
{
	for(int waited = 0; waited < ms && !atomic_load(&stopping); waited += 10){
		struct timespec ts = { .tv_sec = 0, .tv_nsec = 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
}

/* Writes batch[from..n) in one pipeline: every command is queued, then the
 * replies are read in order. Returns the index up to which the items are
 * settled (written, or refused by Redis or as malformed: counted as audit
 * errors); less than n when the connection broke, and the rest waits for the
 * next connection (written again: the trail is at-least-once). */
static size_t write_batch(redisContext *rc, void *const *batch, size_t from, size_t n)
{
	bool queued[WRITER_BATCH];
	struct onb_err err;
	size_t i;

	for(i = from; i < n; i++){
		const struct writer_item *it = batch[i];
		int r = it->kind == W_AUDIT ? onb_audit_queue(rc, it->audit, &err) : onb_session_queue(rc, it->ann, &err);

		queued[i] = r == ONB_OK;
		if(r == ONB_EINVAL) atomic_fetch_add(&metrics_watcher_audit_errors, 1);
		else if(r != ONB_OK) return from; /* out of memory: nothing settled, try again */
	}
	for(i = from; i < n; i++){
		if(!queued[i]) continue;
		if(onb_reg_queued_reply(rc, "writing the audit trail", &err) != ONB_OK){
			if(rc->err) return i;
			atomic_fetch_add(&metrics_watcher_audit_errors, 1);
		}
	}
	return n;
}

/* The aggregated entry for entries the full queue refused. */
static int report_dropped(redisContext *rc, uint64_t *unreported)
{
	char reason[ONB_REASON_MAX];
	struct onb_err err;
	struct onb_audit_entry e = {
		.actor = "plugin", .action = ONB_AA(AUDIT_DROPPED), .result = "error", .reason = reason,
		.client = broker_id,
	};

	*unreported += onb_writeq_take_dropped(queue);
	if(*unreported == 0) return ONB_OK;
	snprintf(reason, sizeof(reason), "queue-full: %llu audit entries or session announcements of broker %s "
			"were dropped (writer queue bound %d)", (unsigned long long)*unreported, broker_id, queue_max);
	e.count = (long)*unreported;
	if(onb_audit_append(rc, &e, &err) != ONB_OK) return rc->err ? ONB_EUNAVAIL : ONB_OK;
	*unreported = 0;
	return ONB_OK;
}

static void *write_loop(void *arg)
{
	void *batch[WRITER_BATCH];
	size_t n = 0, done = 0;   /* batch[done..n) still to write, oldest first */
	uint64_t unreported = 0;
	redisContext *rc = NULL;
	struct onb_err err;

	(void)arg;
	for(;;){
		bool stop = atomic_load(&stopping);
		if(!rc){
			if(stop && (n > done || onb_writeq_length(queue) > 0)){
				/* one last try for what is queued, no back-off */
				rc = onb_redis_connect(&writer_cfg, &err);
				if(!rc) break;
			}else if(stop){
				break;
			}else if(!(rc = onb_redis_connect(&writer_cfg, &err))){
				atomic_fetch_add(&metrics_watcher_redis_errors, 1);
				sleep_unless_stopping(retry_ms);
				continue;
			}
		}
		if(done == n){
			done = 0;
			n = onb_writeq_take(queue, batch, WRITER_BATCH, stop ? 0 : WRITER_IDLE_WAIT_MS);
			if(n > 0 && n < WRITER_BATCH && !stop){
				nanosleep(&(struct timespec){ .tv_nsec = WRITER_GATHER_MS * 1000000L }, NULL);
				n += onb_writeq_take(queue, batch + n, WRITER_BATCH - n, 0);
			}
			if(n == 0 && stop) break;
		}
		for(size_t settled = write_batch(rc, batch, done, n); done < settled; done++) item_free(batch[done]);
		if(done == n && report_dropped(rc, &unreported) == ONB_OK) continue;
		/* the connection broke: the rest of the batch waits for the next one */
		atomic_fetch_add(&metrics_watcher_redis_errors, 1);
		redisFree(rc);
		rc = NULL;
		if(stop) break;
		sleep_unless_stopping(retry_ms);
	}
	for(; done < n; done++) item_free(batch[done]);
	if(rc) redisFree(rc);
	return NULL;
}

int writer_start(const struct onboard_config *cfg)
{
	queue_max = cfg->audit_queue_max;
	queue = onb_writeq_new((size_t)queue_max);
	if(!queue) return ONB_EINTERNAL;
	/* Off the broker's thread a slow reply costs nothing but time: a
	 * generous timeout avoids writing an entry twice after a slow answer. */
	writer_cfg = cfg->redis;
	writer_cfg.timeout_ms = cfg->redis.timeout_ms + 1000;
	retry_ms = cfg->redis_retry_ms;
	snprintf(broker_id, sizeof(broker_id), "%s", cfg->broker_id);
	atomic_store(&stopping, false);
	if(thread_start(&writer, write_loop, "registry writer") != ONB_OK){
		onb_writeq_free(queue, item_free);
		queue = NULL;
		return ONB_EINTERNAL;
	}
	writer_running = true;
	return ONB_OK;
}

void writer_stop(void)
{
	if(writer_running){
		atomic_store(&stopping, true);
		onb_writeq_close(queue);
		pthread_join(writer, NULL);
		writer_running = false;
	}
	onb_writeq_free(queue, item_free);
	queue = NULL;
}

static bool enqueue(struct writer_item *it)
{
	if(queue && onb_writeq_push(queue, it)) return true;
	/* counted here, so that metrics.c needs nothing of the writer */
	if(queue) metrics.audit_dropped++;
	else metrics.audit_errors++; /* not started: nothing to count it in */
	item_free(it);
	return false;
}

void writer_audit(const struct onb_audit_entry *e)
{
	struct writer_item *it = calloc(1, sizeof(*it));

	if(it) it->audit = onb_audit_entry_copy(e);
	if(!it || !it->audit){
		free(it);
		metrics.audit_errors++;
		return;
	}
	/* stamped now: written later, perhaps twice (see onb_audit_entry.ts_ms) */
	if(it->audit->ts_ms == 0) it->audit->ts_ms = onb_now_ms();
	it->kind = W_AUDIT;
	enqueue(it);
}

bool writer_announce(const struct onb_session_ann *a)
{
	struct writer_item *it = calloc(1, sizeof(*it));

	if(it) it->ann = malloc(sizeof(*it->ann));
	if(!it || !it->ann){
		free(it);
		metrics.audit_errors++;
		return false;
	}
	it->kind = W_ANNOUNCE;
	*it->ann = *a;
	return enqueue(it);
}

/* The broker's admission view (lib/identity/admview.h; docs/registry.md, "The
 * admission view"): what lets a CONNECT of a known device be decided
 * without a Redis round trip on the broker's only thread.
 *
 * - A loader thread of its own, with its own Redis connection, builds a
 *   complete view (SCAN + pipelined HMGET) and hands it over; the main
 *   thread takes it at the next tick. Until then every CONNECT goes to Redis.
 * - events.c's watcher re-reads the device of every onb:events entry that
 *   names one, on its own connection; events_apply hands the record here on
 *   the main thread, in the same pass that kicks the device's live session.
 *   Updates that arrive while a load runs are kept and replayed onto the
 *   loaded view (it may have read the device before the change).
 * - Fail closed: the view is consulted only while the watcher has caught up
 *   with the stream within stale_ms; it is dropped and reloaded when the
 *   stream was trimmed past the watcher's position or a re-read failed.
 *
 * Only the main thread touches `view` and the overlay; the loader and the
 * main thread share `loaded` and the request flag under `lock`. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onboard.h"

#define LOAD_TIMEOUT_MS 5000 /* per command of the loader (a page of HMGETs) */
#define LOAD_BATCH 2000      /* keys per SCAN step */

struct overlay {
	struct overlay *next;
	bool gone;               /* the device no longer exists */
	struct onb_device dev;
};

static struct onb_admview *view;     /* main thread */
static struct overlay *overlay_head, **overlay_tail = &overlay_head;
static bool loading;                 /* main thread: a load was asked for */
static int64_t load_started_ms;
static int64_t stale_ms;

static pthread_t loader;
static bool loader_running;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static atomic_bool stopping;
/* under lock */
static bool load_wanted;
static unsigned load_gen;            /* the request a load answers: an older one is discarded */
static unsigned loaded_gen;
static struct onb_admview *loaded;   /* handed over by the loader */
static size_t loaded_skipped;
static char load_error[ONB_ERRLEN];  /* the loader's last failure, for the main thread to log */
/* Dropped views, freed by the loader: a million frees would hold the
 * broker's thread for a noticeable time. */
#define DISCARD_SLOTS 4
static struct onb_admview *discarded[DISCARD_SLOTS];

static struct onb_redis_cfg loader_cfg;

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void *load_thread(void *arg)
{
	(void)arg;
	while(!atomic_load(&stopping)){
		struct onb_admview *v;
		struct onb_err err;
		redisContext *rc;
		size_t skipped = 0;
		unsigned gen;
		int r;

		pthread_mutex_lock(&lock);
		for(;;){
			struct onb_admview *old = NULL;
			struct timespec until;

			/* dropped views go first: a reload must not hold two at once */
			for(int i = 0; i < DISCARD_SLOTS && !old; i++){
				old = discarded[i];
				discarded[i] = NULL;
			}
			if(old){
				pthread_mutex_unlock(&lock);
				onb_admview_free(old);
				pthread_mutex_lock(&lock);
				continue;
			}
			if(load_wanted || atomic_load(&stopping)) break;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 250000000L;
			if(until.tv_nsec >= 1000000000L){ until.tv_sec++; until.tv_nsec -= 1000000000L; }
			pthread_cond_timedwait(&cond, &lock, &until);
		}
		gen = load_gen;
		pthread_mutex_unlock(&lock);
		if(atomic_load(&stopping)) break;

		rc = onb_redis_connect(&loader_cfg, &err);
		v = rc ? onb_admview_new(0) : NULL;
		if(!rc) r = ONB_EUNAVAIL;
		else if(!v) r = onb_fail(&err, ONB_EINTERNAL, "out of memory");
		else r = onb_admview_load(rc, v, LOAD_BATCH, &stopping, &skipped, &err);
		if(rc) redisFree(rc);
		pthread_mutex_lock(&lock);
		if(r == ONB_OK && gen == load_gen){
			onb_admview_free(loaded); /* an older one nobody took */
			loaded = v;
			v = NULL;
			loaded_gen = gen;
			loaded_skipped = skipped;
			load_wanted = false;
		}else if(r != ONB_OK){
			snprintf(load_error, sizeof(load_error), "%s", err.msg);
		}
		pthread_mutex_unlock(&lock);
		onb_admview_free(v); /* failed, or asked for by a request since dropped */
		if(r != ONB_OK) sleep_ms(1000);
	}
	return NULL;
}

int admview_link_start(const struct onboard_config *cfg)
{
	stale_ms = cfg->admission_view_stale_ms;
	if(stale_ms <= 0){
		mosquitto_log_printf(MOSQ_LOG_INFO, ONB_LOG_PREFIX "admission view off: every CONNECT reads Redis");
		return ONB_OK;
	}
	loader_cfg = cfg->redis;
	loader_cfg.timeout_ms = LOAD_TIMEOUT_MS;
	atomic_store(&stopping, false);
	if(thread_start(&loader, load_thread, "admission view loader") != ONB_OK) return ONB_EINTERNAL;
	loader_running = true;
	return ONB_OK;
}

static void overlay_clear(void)
{
	struct overlay *o;

	while((o = overlay_head)){
		overlay_head = o->next;
		free(o);
	}
	overlay_tail = &overlay_head;
}

bool admview_link_enabled(void)
{
	return stale_ms > 0;
}

void admview_link_stop(void)
{
	if(loader_running){
		thread_stop(loader, &stopping, &lock, &cond);
		loader_running = false;
	}
	onb_admview_free(loaded);
	loaded = NULL;
	for(int i = 0; i < DISCARD_SLOTS; i++){
		onb_admview_free(discarded[i]);
		discarded[i] = NULL;
	}
	onb_admview_free(view);
	view = NULL;
	overlay_clear();
	loading = false;
}

/* Applies one re-read device to v. */
static void apply(struct onb_admview *v, const struct onb_device *d, bool gone)
{
	if(gone){
		onb_admview_remove(v, d->id);
	}else if(onb_admview_put(v, d) != ONB_OK){
		/* not admissible from the view: its CONNECTs go to Redis */
		onb_admview_remove(v, d->id);
	}
}

/* Hands v to the loader to free; frees it here if every slot is taken.
 * Under lock. */
static void discard(struct onb_admview *v)
{
	if(!v) return;
	for(int i = 0; i < DISCARD_SLOTS; i++){
		if(!discarded[i]){
			discarded[i] = v;
			return;
		}
	}
	onb_admview_free(v);
}

void admview_link_drop(const char *why)
{
	if(stale_ms <= 0) return;
	if(view || loading){
		mosquitto_log_printf(MOSQ_LOG_WARNING, ONB_LOG_PREFIX
				"admission view dropped (%s): CONNECTs read Redis until it is loaded again", why);
	}
	overlay_clear();
	loading = false; /* the next tick asks for a new load, after this point in the stream */
	pthread_mutex_lock(&lock);
	discard(view);
	discard(loaded); /* may predate the loss */
	loaded = NULL;
	load_wanted = false;
	load_gen++; /* a load under way predates it too */
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
	view = NULL;
}

void admview_link_device(const struct onb_device *d, bool gone)
{
	if(stale_ms <= 0) return;
	if(view) apply(view, d, gone);
	if(loading){
		struct overlay *o = malloc(sizeof(*o));
		if(!o){
			admview_link_drop("out of memory");
			return;
		}
		o->next = NULL;
		o->gone = gone;
		o->dev = *d;
		*overlay_tail = o;
		overlay_tail = &o->next;
	}
}

void admview_link_tick(void)
{
	struct onb_admview *v;
	char why[ONB_ERRLEN];
	size_t skipped;

	if(stale_ms <= 0) return;
	/* Ask for a load once the watcher knows its position: every change
	 * after this point reaches the overlay, every one before it the scan. */
	if(!view && !loading && events_ready()){
		loading = true;
		load_started_ms = onb_now_ms();
		pthread_mutex_lock(&lock);
		load_wanted = true;
		load_gen++;
		load_error[0] = '\0';
		pthread_cond_signal(&cond);
		pthread_mutex_unlock(&lock);
		return;
	}
	if(!loading) return;
	pthread_mutex_lock(&lock);
	v = loaded_gen == load_gen ? loaded : NULL;
	if(v) loaded = NULL;
	skipped = loaded_skipped;
	memcpy(why, load_error, sizeof(why));
	load_error[0] = '\0';
	pthread_mutex_unlock(&lock);
	if(why[0]){
		mosquitto_log_printf(MOSQ_LOG_WARNING, ONB_LOG_PREFIX "loading the admission view: %s (retrying)", why);
	}
	if(!v) return;
	for(struct overlay *o = overlay_head; o; o = o->next) apply(v, &o->dev, o->gone);
	overlay_clear();
	loading = false;
	view = v;
	metrics.admview_devices = onb_admview_count(v);
	mosquitto_log_printf(MOSQ_LOG_NOTICE, ONB_LOG_PREFIX "admission view loaded: %zu devices, "
			"%zu bytes, %zu skipped, %lld ms", onb_admview_count(v), onb_admview_bytes(v), skipped,
			(long long)(onb_now_ms() - load_started_ms));
}

const struct onb_admview *admview_link_get(void)
{
	if(!view) return NULL;
	/* fail closed: a feed not confirmed lately may hide a revocation */
	if(onb_now_ms() - events_caught_up_ms() > stale_ms) return NULL;
	metrics.admview_devices = onb_admview_count(view);
	return view;
}

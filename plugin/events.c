/* onb:events -> live sessions, within milliseconds.
 *
 * A watcher thread blocks in XREAD on its own Redis connection. Broker state
 * may only be touched from the main thread, and Mosquitto 2.0 runs the tick
 * callback only once per loop iteration, whose epoll_wait sleeps up to 100 ms
 * when idle. So the watcher queues each event and sends the main thread a
 * signal with an empty handler: epoll_wait returns EINTR, the loop runs the
 * tick at once, and the tick applies the queue. The stream position survives
 * reconnects, so an event appended while Redis was unreachable is still
 * applied when it comes back. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onboard.h"

#define WAKE_SIGNAL (SIGRTMIN + 2)
#define BLOCK_MS 250 /* also bounds how long shutdown waits for the thread */

struct queued_event {
	struct onb_event ev;
	struct queued_event *next;
};

static pthread_t main_thread, watcher;
static bool watcher_running;
static atomic_bool stopping, ready, wake_pending, feed_up;
static bool feed_reported_up = true;

/* Filled by the watcher, drained by the main thread (plain malloc: both
 * threads allocate and free these nodes). */
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static struct queued_event *queue_head, *queue_tail;

static struct onb_redis_cfg watcher_cfg;
static char last_id[ONB_STREAM_ID_MAX];

static void on_wake_signal(int sig)
{
	(void)sig; /* interrupting epoll_wait is the whole point */
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void enqueue(const struct onb_event *ev, void *arg)
{
	struct queued_event *q = malloc(sizeof(*q));

	(void)arg;
	if(!q) abort(); /* losing an event silently would be worse */
	q->ev = *ev;
	q->next = NULL;
	pthread_mutex_lock(&queue_lock);
	if(queue_tail) queue_tail->next = q;
	else queue_head = q;
	queue_tail = q;
	pthread_mutex_unlock(&queue_lock);
}

static void *watch(void *arg)
{
	redisContext *rc = NULL;
	struct onb_err err;

	(void)arg;
	while(!atomic_load(&stopping)){
		if(!rc){
			rc = onb_redis_connect(&watcher_cfg, &err);
			if(!rc){
				atomic_store(&feed_up, false);
				sleep_ms(100);
				continue;
			}
		}
		if(!atomic_load(&ready)){
			if(onb_events_tail(rc, last_id, &err) != ONB_OK) goto drop;
			atomic_store(&ready, true);
		}
		int n = onb_events_read(rc, last_id, BLOCK_MS, 256, enqueue, NULL, &err);
		if(n < 0) goto drop;
		atomic_store(&feed_up, true);
		if(n > 0 && !atomic_exchange(&wake_pending, true)){
			pthread_kill(main_thread, WAKE_SIGNAL);
		}
		continue;
drop:
		atomic_store(&feed_up, false);
		redisFree(rc);
		rc = NULL;
		sleep_ms(100);
	}
	if(rc) redisFree(rc);
	return NULL;
}

int events_start(const struct onboard_config *cfg)
{
	struct sigaction sa;
	sigset_t all, old;
	struct onb_err err;
	redisContext *rc;

	main_thread = pthread_self();
	watcher_cfg = cfg->redis;
	watcher_cfg.timeout_ms = BLOCK_MS + 1000 + cfg->redis.timeout_ms;
	atomic_store(&stopping, false);
	atomic_store(&wake_pending, false);
	atomic_store(&feed_up, true);

	/* Know where the stream stands before the first client is admitted. */
	atomic_store(&ready, false);
	rc = onb_redis_connect(&cfg->redis, &err);
	if(rc && onb_events_tail(rc, last_id, &err) == ONB_OK){
		atomic_store(&ready, true);
	}else{
		mosquitto_log_printf(MOSQ_LOG_WARNING, ONB_LOG_PREFIX
				"registry unreachable at start (%s): refusing connects until it is", err.msg);
	}
	if(rc) redisFree(rc);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_wake_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if(sigaction(WAKE_SIGNAL, &sa, NULL) != 0){
		mosquitto_log_printf(MOSQ_LOG_ERR, ONB_LOG_PREFIX "cannot install the wake-up signal handler");
		return ONB_EINTERNAL;
	}
	/* The watcher must never run the broker's own signal handlers. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int r = pthread_create(&watcher, NULL, watch, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if(r != 0){
		mosquitto_log_printf(MOSQ_LOG_ERR, ONB_LOG_PREFIX "cannot start the event watcher");
		return ONB_EINTERNAL;
	}
	watcher_running = true;
	return ONB_OK;
}

void events_stop(void)
{
	struct queued_event *q;

	if(!watcher_running) return;
	atomic_store(&stopping, true);
	pthread_join(watcher, NULL);
	watcher_running = false;
	signal(WAKE_SIGNAL, SIG_IGN);
	pthread_mutex_lock(&queue_lock);
	q = queue_head;
	queue_head = queue_tail = NULL;
	pthread_mutex_unlock(&queue_lock);
	while(q){
		struct queued_event *next = q->next;
		free(q);
		q = next;
	}
}

bool events_ready(void)
{
	return atomic_load(&ready);
}

static void apply_one(const struct onb_event *ev)
{
	struct session *s;
	char id[ONB_ID_MAX + 1];

	if(strcmp(ev->type, "state") != 0 || !ev->device[0]) return;
	s = sessions_find(ev->device);
	if(!s) return;
	if(!onb_state_may_connect(ev->state)){
		/* The kick runs the disconnect callback, which frees s. */
		memcpy(id, s->id, sizeof(id));
		mosquitto_log_printf(MOSQ_LOG_NOTICE, ONB_LOG_PREFIX
				"disconnecting %s: device is now %s", id, onb_state_name(ev->state));
		mosquitto_kick_client_by_clientid(id, false);
		return;
	}
	if(s->state != ev->state){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, ONB_LOG_PREFIX "%s: %s -> %s, permissions updated",
				s->id, onb_state_name(s->state), onb_state_name(ev->state));
		s->state = ev->state;
	}
}

void events_apply(void)
{
	struct queued_event *q;
	bool up = atomic_load(&feed_up);

	if(up != feed_reported_up){
		mosquitto_log_printf(up ? MOSQ_LOG_NOTICE : MOSQ_LOG_ERR, ONB_LOG_PREFIX "event feed %s",
				up ? "restored: resuming from the last event seen" : "lost: reconnecting");
		feed_reported_up = up;
	}
	atomic_store(&wake_pending, false);
	pthread_mutex_lock(&queue_lock);
	q = queue_head;
	queue_head = queue_tail = NULL;
	pthread_mutex_unlock(&queue_lock);
	while(q){
		struct queued_event *next = q->next;
		apply_one(&q->ev);
		free(q);
		q = next;
	}
}

void events_hold_wakeups(sigset_t *saved)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, WAKE_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &s, saved);
}

void events_release_wakeups(const sigset_t *saved)
{
	pthread_sigmask(SIG_SETMASK, saved, NULL);
}

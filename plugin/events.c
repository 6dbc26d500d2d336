/* onb:events -> live sessions, within milliseconds (`state` and `policy`
 * events here, `cert` events of rotations in rotation.c), and onb:sessions
 * -> fleet.c (one live session per device across brokers), read in the
 * same XREAD: the stream of announcements is separate so that a reconnect
 * storm trims announcements, never the state events brokers rely on.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onboard.h"
#include "registry/auditagg.h"
#include "registry/eventgap.h"
#include "policy/policystore.h"
#include "registry/stats.h"

#define WAKE_SIGNAL (SIGRTMIN + 2)
#define BLOCK_MS 250 /* also bounds how long shutdown waits for the thread */
#define HEARTBEAT_MS 100 /* events_set_heartbeat: the longest the broker's loop sleeps */
/* After a read that returned entries, the watcher waits this long before the
 * next: what arrived meanwhile comes in one XREAD (a burst of connects, each
 * announced, cost every broker one read each before). The first change of a
 * quiet stream still arrives at once; later ones at most this much later. */
#define GATHER_MS 5
#define RESIGNAL_MS 10   /* a wake-up the main thread has not acted on is sent again after this, */
#define RESIGNAL_MAX 10  /* at most this many times */

struct queued_event {
	bool is_session;                    /* an onb:sessions announcement (ann), else ev */
	struct onb_session_ann ann;
	struct onb_event ev;
	enum onb_event_type type;           /* ev.type, parsed once */
	char policy_name[ONB_NAME_MAX + 1]; /* the document the event calls for, "" if none */
	struct onb_policy *doc;             /* fetched by the watcher; NULL if absent or unreadable */
	/* The event's device re-read by the watcher for the admission view
	 * (admview_link.c): ONB_OK, ONB_ENOTFOUND (gone), another code (failed),
	 * or 1 when not read. */
	int view_read;
	bool view_applied;                  /* already (events_apply_view) */
	struct onb_device view_dev;
	struct queued_event *next;
};

static pthread_t main_thread, watcher;
static bool watcher_running;
static atomic_bool stopping, ready, wake_pending, feed_up, heartbeat, feed_trimmed;
static _Atomic int64_t caught_up_ms;
static atomic_ulong events_dropped_unreported; /* by the watcher, logged at the tick */
static bool feed_reported_up = true;

/* Filled by the watcher, drained by the main thread (plain malloc: both
 * threads allocate and free these nodes). */
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static struct queued_event *queue_head, *queue_tail;

static struct onb_redis_cfg watcher_cfg;
static const struct onb_policy_names *policy_names;
static const struct events_view_hooks *hooks; /* plugin.c's: the view and delayed CONNECTs */
static char last_id[ONB_STREAM_ID_MAX];
static char sessions_last_id[ONB_STREAM_ID_MAX]; /* onb:sessions (fleet.c) */

/* Where the watcher stores the counters document (metrics_take_stats). */
static char stats_id[ONB_ID_MAX + 1];
static int64_t stats_ttl_ms;

static void on_wake_signal(int sig)
{
	(void)sig; /* interrupting epoll_wait is the whole point */
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Reads and parses a policy on the watcher's connection, so that the main
 * thread never waits for Redis to apply an event. */
static struct onb_policy *fetch_policy(redisContext *rc, const char *name)
{
	struct onb_policy *doc = NULL;
	struct onb_err err;
	char *json = NULL;
	size_t len = 0;

	if(onb_policystore_get(rc, name, &json, &len, &err) != ONB_OK) return NULL;
	if(onb_policy_parse(json, len, &doc, &err) != ONB_OK) doc = NULL;
	free(json);
	return doc;
}

/* Empties the queue, calling apply (may be NULL) on each event before freeing it. */
static void drain(void (*apply)(struct queued_event *q))
{
	struct queued_event *q;

	pthread_mutex_lock(&queue_lock);
	q = queue_head;
	queue_head = queue_tail = NULL;
	pthread_mutex_unlock(&queue_lock);
	while(q){
		struct queued_event *next = q->next;
		if(apply) apply(q);
		onb_policy_free(q->doc);
		free(q);
		q = next;
	}
}

static void push(struct queued_event *q)
{
	pthread_mutex_lock(&queue_lock);
	if(queue_tail) queue_tail->next = q;
	else queue_head = q;
	queue_tail = q;
	pthread_mutex_unlock(&queue_lock);
}

static void enqueue(const struct onb_event *ev, void *arg)
{
	redisContext *rc = arg;
	struct queued_event *q = calloc(1, sizeof(*q));
	const char *name = NULL;

	if(!q){
		/* never abort inside the broker: counted, logged and answered at the tick */
		atomic_fetch_add(&metrics_events_dropped, 1);
		atomic_fetch_add(&events_dropped_unreported, 1);
		return;
	}
	q->ev = *ev;
	q->type = onb_event_type_parse(ev->type);
	q->next = NULL;
	if(q->type == ONB_EV_POLICY){
		name = ev->policy;
	}else if(q->type == ONB_EV_STATE && onb_state_may_connect(ev->state)){
		name = onb_policy_for(policy_names, ONB_ID_DEVICE, ev->state, ev->tenant, ev->policy);
	}
	if(name && onb_policy_name_valid(name)){
		snprintf(q->policy_name, sizeof(q->policy_name), "%s", name);
		q->doc = fetch_policy(rc, name);
	}
	q->view_read = 1;
	if(ev->device[0] && hooks->view_enabled){
		struct onb_err err;
		/* whatever the type: the device as it is now, after this change */
		q->view_read = onb_admview_read_device(rc, ev->device, &q->view_dev, &err);
	}
	push(q);
}

/* A session announcement: applied by fleet.c on the main thread. */
static void enqueue_session(const struct onb_session_ann *a, void *arg)
{
	struct queued_event *q = calloc(1, sizeof(*q));

	(void)arg;
	if(!q){
		/* as enqueue; a missed announcement may leave two sessions for a while */
		atomic_fetch_add(&metrics_events_dropped, 1);
		atomic_fetch_add(&events_dropped_unreported, 1);
		return;
	}
	q->is_session = true;
	q->view_applied = true; /* nothing for the admission view */
	q->ann = *a;
	push(q);
}

/* Stores the latest counters document, if the main thread left one. */
static int store_stats(redisContext *rc, struct onb_err *err)
{
	char *json = metrics_take_stats();
	int ret = ONB_OK;

	if(!json) return ONB_OK;
	ret = onb_stats_put(rc, "broker", stats_id, json, stats_ttl_ms, err);
	free(json);
	/* a bad document is not a reason to drop the connection */
	return ret == ONB_EUNAVAIL ? ret : ONB_OK;
}

void events_wake(void)
{
	if(watcher_running && !atomic_exchange(&wake_pending, true)) pthread_kill(main_thread, WAKE_SIGNAL);
}

static void *watch(void *arg)
{
	redisContext *rc = NULL;
	struct onb_err err;
	int resent = 0; /* wake-ups sent again since the main thread last took the queue */
	/* The stream can only have been trimmed past our position while we did
	 * not read it (no connection) or read it slower than it grew (a full
	 * batch): only then is XINFO STREAM worth its cost (it was one call
	 * before every XREAD, the largest share of the registry's CPU per
	 * connect). */
	bool check_gap = true;

	(void)arg;
	while(!atomic_load(&stopping)){
		if(!rc){
			rc = onb_redis_connect(&watcher_cfg, &err);
			if(!rc){
				atomic_fetch_add(&metrics_watcher_redis_errors, 1);
				atomic_store(&feed_up, false);
				sleep_ms(100);
				continue;
			}
		}
		if(!atomic_load(&ready)){
			if(onb_events_tail(rc, last_id, &err) != ONB_OK
					|| onb_sessions_tail(rc, sessions_last_id, &err) != ONB_OK) goto drop;
			atomic_store(&ready, true);
		}
		if(hooks->view_enabled && check_gap){
			/* once per position: the stream may stay trimmed past it (empty) */
			static char gap_at[ONB_STREAM_ID_MAX];
			bool gap;
			if(onb_events_gap(rc, last_id, &gap, &err) != ONB_OK) goto drop;
			if(gap && strcmp(gap_at, last_id) != 0){
				memcpy(gap_at, last_id, sizeof(gap_at));
				atomic_store(&feed_trimmed, true);
			}
			check_gap = false;
		}
		bool beat = atomic_load(&heartbeat);
		bool unheard = atomic_load(&wake_pending) && resent < RESIGNAL_MAX;
		int n = onb_feed_read(rc, last_id, sessions_last_id, unheard ? RESIGNAL_MS : beat ? HEARTBEAT_MS : BLOCK_MS,
				256, enqueue, enqueue_session, rc, &err);
		if(n < 0) goto drop;
		atomic_store(&feed_up, true);
		/* Neither stream held more than was read (XREAD's COUNT is per
		 * stream): what was read covers every change up to now. */
		if(n < 256) atomic_store(&caught_up_ms, onb_now_ms());
		else check_gap = true;
		/* A signal that lands after the loop's tick and before its
		 * epoll_wait interrupts nothing: the loop then sleeps up to 100 ms
		 * (seen once in 100 revocations). Until the tick has taken the
		 * queue, the signal is sent again every RESIGNAL_MS, a few times
		 * (a broker that never ticks must not be signalled for ever). */
		if(unheard && atomic_load(&wake_pending)){
			resent++;
			pthread_kill(main_thread, WAKE_SIGNAL);
		}else if(!atomic_load(&wake_pending)){
			resent = 0;
			if((n > 0 || beat) && !atomic_exchange(&wake_pending, true)) pthread_kill(main_thread, WAKE_SIGNAL);
		}
		if(store_stats(rc, &err) != ONB_OK) goto drop;
		if(n > 0 && n < 256) sleep_ms(GATHER_MS);
		continue;
drop:
		atomic_fetch_add(&metrics_watcher_redis_errors, 1);
		atomic_store(&feed_up, false);
		/* A feed known lost (an error, a closed connection) stops the
		 * admission view at once; only a silent one waits out its bound. */
		atomic_store(&caught_up_ms, 0);
		redisFree(rc);
		rc = NULL;
		check_gap = true;
		sleep_ms(100);
	}
	if(rc) redisFree(rc);
	return NULL;
}

int events_start(const struct onboard_config *cfg, const struct events_view_hooks *view_hooks)
{
	struct sigaction sa;
	struct onb_err err;
	redisContext *rc;

	hooks = view_hooks;
	main_thread = pthread_self();
	policy_names = &cfg->policies;
	snprintf(stats_id, sizeof(stats_id), "%s", cfg->broker_id);
	stats_ttl_ms = (int64_t)cfg->metrics_interval_s * 3000 + 5000;
	watcher_cfg = cfg->redis;
	watcher_cfg.timeout_ms = BLOCK_MS + 1000 + cfg->redis.timeout_ms;
	atomic_store(&stopping, false);
	atomic_store(&wake_pending, false);
	atomic_store(&feed_up, true);

	/* Know where the stream stands before the first client is admitted. */
	atomic_store(&ready, false);
	rc = onb_redis_connect(&cfg->redis, &err);
	if(rc && onb_events_tail(rc, last_id, &err) == ONB_OK && onb_sessions_tail(rc, sessions_last_id, &err) == ONB_OK){
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
	if(thread_start(&watcher, watch, "event watcher") != ONB_OK) return ONB_EINTERNAL;
	watcher_running = true;
	return ONB_OK;
}

void events_stop(void)
{
	if(!watcher_running) return;
	atomic_store(&stopping, true);
	pthread_join(watcher, NULL);
	watcher_running = false;
	signal(WAKE_SIGNAL, SIG_IGN);
	drain(NULL);
	free(metrics_take_stats());
}

void events_set_heartbeat(bool on)
{
	atomic_store(&heartbeat, on);
}

int64_t events_caught_up_ms(void)
{
	return atomic_load(&caught_up_ms);
}

bool events_ready(void)
{
	return atomic_load(&ready);
}

/* A device whose state changed under it may not have its will published
 * with the policy it held before (the broker drops the will of a kick
 * without will anyway; deny_will holds whatever the broker does). */
static void kick(struct session *s, const char *why)
{
	char id[ONB_ID_MAX + 1];

	s->deny_will = true;
	memcpy(id, s->id, sizeof(id));
	mosquitto_log_printf(MOSQ_LOG_NOTICE, ONB_LOG_PREFIX "disconnecting %s: %s", id, why);
	mosquitto_kick_client_by_clientid(id, false);
}

struct rebind {
	const char *name;
	const struct onb_policy *doc;
	int count;
};

static void rebind_holder(struct session *s, void *arg)
{
	struct rebind *r = arg;
	if(strcmp(s->policy_name, r->name) != 0) return;
	session_bind(s, r->name, r->doc); /* no document: the session is denied everything */
	r->count++;
}

/* A policy document changed: every session holding it is recompiled. */
static void apply_policy(struct queued_event *q)
{
	struct rebind r = { .name = q->policy_name, .doc = q->doc };

	policies_put(q->policy_name, q->doc); /* the cache owns it now */
	q->doc = NULL;
	r.doc = policies_get(NULL, q->policy_name, NULL);
	sessions_each(rebind_holder, &r);
	mosquitto_log_printf(MOSQ_LOG_NOTICE, ONB_LOG_PREFIX "policy %s %s: %d live session(s) recompiled",
			q->policy_name, r.doc ? "updated" : "deleted", r.count);
}

/* A device's state, tenant or policy changed. */
static void apply_state(struct queued_event *q)
{
	const struct onb_event *ev = &q->ev;
	struct session *s = sessions_find(ev->device);
	char why[128];

	/* An offline device's parked entry (sessions.c) follows the registry
	 * too: what the broker queues for it is judged by its new policy, or
	 * nothing is queued once it may not connect. (Every version also
	 * rechecks the queue against the policy of the connection it returns on.) */
	if(!s) s = sessions_find_parked(ev->device);
	if(!s || s->idclass != ONB_ID_DEVICE) return;
	if(!onb_state_may_connect(ev->state) || !q->doc){
		if(!onb_state_may_connect(ev->state)) snprintf(why, sizeof(why), "device is now %s", onb_state_name(ev->state));
		/* Fail closed: a reconnect will be judged afresh. */
		else snprintf(why, sizeof(why), "policy %s unavailable", q->policy_name[0] ? q->policy_name : "-");
		if(s->parked) sessions_drop_parked(s);
		else kick(s, why);
		return;
	}
	mosquitto_log_printf(MOSQ_LOG_NOTICE, ONB_LOG_PREFIX "%s: %s -> %s, policy %s",
			s->id, onb_state_name(s->state), onb_state_name(ev->state), q->policy_name);
	s->state = ev->state;
	memcpy(s->tenant, ev->tenant, sizeof(s->tenant));
	memcpy(s->explicit_policy, ev->policy, sizeof(s->explicit_policy));
	policies_put(q->policy_name, q->doc);
	q->doc = NULL;
	session_bind(s, q->policy_name, policies_get(NULL, q->policy_name, NULL));
}

/* The view first: a CONNECT after this is judged on the new record, one
 * before it was admitted on the old and is kicked when the event is applied
 * (never the other way round). */
static void apply_view(struct queued_event *q)
{
	if(q->view_applied) return;
	q->view_applied = true;
	if(q->ev.device[0]) hooks->device_changed(q->ev.device);
	if(q->view_read == ONB_OK || q->view_read == ONB_ENOTFOUND){
		if(q->view_read == ONB_ENOTFOUND) snprintf(q->view_dev.id, sizeof(q->view_dev.id), "%s", q->ev.device);
		hooks->device(&q->view_dev, q->view_read == ONB_ENOTFOUND);
	}else if(q->view_read != 1){
		hooks->drop("re-reading a changed device failed");
	}
}

void events_apply_view(void)
{
	/* Only the main thread unlinks nodes; the watcher only appends. */
	pthread_mutex_lock(&queue_lock);
	for(struct queued_event *q = queue_head; q; q = q->next) apply_view(q);
	pthread_mutex_unlock(&queue_lock);
}

static void apply_one(struct queued_event *q)
{
	if(q->is_session){
		fleet_apply(&q->ann);
		return;
	}
	apply_view(q);
	metrics_event(q->type, q->ev.stream_id);
	if(q->type == ONB_EV_POLICY && q->policy_name[0]) apply_policy(q);
	else if(q->type == ONB_EV_STATE && q->ev.device[0]) apply_state(q);
	else if(q->type == ONB_EV_CERT && q->ev.device[0]){
		rotation_apply_event(sessions_find(q->ev.device), &q->ev);
	}
}

void events_apply(void)
{
	bool up = atomic_load(&feed_up);

	if(up != feed_reported_up){
		mosquitto_log_printf(up ? MOSQ_LOG_NOTICE : MOSQ_LOG_ERR, ONB_LOG_PREFIX "event feed %s",
				up ? "restored: resuming from the last event seen" : "lost: reconnecting");
		feed_reported_up = up;
	}
	unsigned long dropped = atomic_exchange(&events_dropped_unreported, 0);
	if(dropped){
		/* A lost event may be a revocation: the view is rebuilt from the
		 * registry; sessions keep their policy until their next event. */
		mosquitto_log_printf(MOSQ_LOG_ERR, ONB_LOG_PREFIX "%lu events or session announcements dropped: "
				"out of memory", dropped);
		hooks->drop("events were dropped (out of memory)");
	}
	if(atomic_exchange(&feed_trimmed, false)){
		hooks->drop("the event stream was trimmed past the last event read, "
				"or XINFO STREAM was refused");
	}
	atomic_store(&wake_pending, false);
	drain(apply_one);
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

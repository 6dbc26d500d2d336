/* mosquitto_onboard: private header of the Mosquitto plugin.
 *
 * The plugin is glue. Decisions live in lib/ (admission, identity, policy,
 * registry); this folder turns Mosquitto events into calls of lib/ and keeps
 * the per-connection state that those calls need. Everything here runs on
 * the broker's single main thread except events.c's watcher thread, which
 * touches nothing but its own Redis connection and the event queue. */
#ifndef ONBOARD_PLUGIN_H
#define ONBOARD_PLUGIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "identity/admission.h"
#include "identity/admview.h"
#include "identity/binding.h"
#include "core/budget.h"
#include "identity/identity.h"
#include "policy/policy.h"
#include "registry/redis.h"
#include "registry/registry.h"
#include "registry/sessionfeed.h"
#include "core/vocab.h"

/* ============================================================
 * Configuration (config.c): plugin_opt_* lines of mosquitto.conf
 * ============================================================ */
/* One policy_* option per default policy: one per field of onb_policy_names. */
#define ONBOARD_POLICY_OPTS (sizeof(struct onb_policy_names) / sizeof(const char *))

struct onboard_config {
	struct onb_redis_cfg redis;     /* redis_url, redis_timeout_ms */
	int redis_retry_ms;             /* wait after a failed connect before the next try */
	int audit_retention_days;       /* onb:audit keeps this long (every writer trims) */
	int audit_window_s;             /* repeated refusals: one entry per kind and window */
	int audit_queue_max;            /* entries waiting for the writer thread (writer.c) */
	struct onb_rate request_rate;   /* provisioning requests per connection */
	int request_inflight;           /* unanswered requests per connection */
	struct onb_rate request_cert_rate; /* per claim or birth certificate, all its connections */
	int metrics_interval_s;         /* $SYS/onboard/broker/<broker_id> every N s; 0 off */
	char broker_id[ONB_ID_MAX + 1]; /* names this broker in its counters */
	int admission_view_stale_ms;    /* admission view used while the feed is this fresh; 0 off */
	char *ca_path[ONB_ID_COUNT];    /* device_ca (required), claim_ca, birth_ca, service_ca */
	struct onb_policy_names policies; /* policy_device, ... (borrowed from names[]) */
	char *names[ONBOARD_POLICY_OPTS];  /* in config.c's order of the policy_* options */
};

/* Starts fn(NULL) on a new thread with every signal blocked (threads.c);
 * logs "cannot start the <what>" and returns ONB_EINTERNAL on failure. */
int thread_start(pthread_t *thread, void *(*fn)(void *), const char *what);
/* Sets *stopping, wakes the thread waiting on cond under lock, and joins it. */
void thread_stop(pthread_t thread, atomic_bool *stopping, pthread_mutex_t *lock, pthread_cond_t *cond);

/* Reads the plugin options; logs one clear line and fails on a missing
 * required option or a bad value, warns on unknown keys. */
int config_load(struct onboard_config *cfg, struct mosquitto_opt *opts, int count);
void config_free(struct onboard_config *cfg);

/* ============================================================
 * Sessions (sessions.c): what we know of each admitted connection
 * ============================================================ */
struct session {
	char id[ONB_ID_MAX + 1];        /* client id (== device id for devices) */
	/* The connection this entry belongs to; only compared once the entry
	 * has ended (the broker may have freed it and reused the address). */
	const struct mosquitto *client;
	enum onb_idclass idclass;
	enum onb_state state;
	char tenant[ONB_ID_MAX + 1];
	char explicit_policy[ONB_NAME_MAX + 1]; /* the device's own, "" for the default */
	char policy_name[ONB_NAME_MAX + 1];     /* what it holds now */
	char fp[ONB_FP_HEXLEN + 1];
	struct onb_compiled *policy;    /* owned; NULL denies everything */
	int64_t cert_deadline_ms;       /* wall clock: a rotation retires fp then (kick); 0 never */
	bool notify_rotate;             /* tell the device to renew (rotation.c, next tick) */
	/* Disconnected or taken over: kept until the next tick only to judge the
	 * connection's will (acl.c); invisible to sessions_find/each. */
	bool ended;
	/* Disconnected by us because the device's state changed (revoked,
	 * quarantined without a policy...): its will is denied whatever the
	 * policy it held says. */
	bool deny_will;
	/* The broker keeps this connection's session after it ends; once its
	 * will has been judged the entry is parked (sessions.c): it answers the
	 * READ checks of messages queued for the offline session. */
	bool keeps_session, parked;
	/* provisioning requests (message.c): the connection's budget */
	struct onb_bucket requests;
	int inflight;                   /* handed to claimsvc, not answered yet */
	int64_t inflight_at_ms;         /* monotonic: when the oldest of them left */
	/* fleet.c: a device session's announcement on onb:sessions */
	char conn[ONB_CONN_MAX];        /* "" when not announced (not a device) */
	char source[ONB_SOURCE_MAX];    /* the address it connected from, "" unknown */
	uint8_t ann_state;              /* enum onb_ann_state */
	/* sessions.c's own: */
	bool linked;                    /* in the hash chains */
	struct session *next_by_client, *next_by_id, *next_ended;
};

/* Adds the entry for s->client; the table copies *s and takes ownership of
 * s->policy. A live entry with the same id (a takeover) ends; ended
 * entries with the same id or the same connection address are dropped. */
int sessions_put(const struct session *s);
/* The entry for this connection, ended or not, or NULL (not admitted by us). */
struct session *sessions_get(const struct mosquitto *client);
/* The live entry for a client id, or NULL. */
struct session *sessions_find(const char *id);
/* The connection is gone (DISCONNECT): its entry ends, and is freed by the
 * next sessions_reap(), or parked there when the broker keeps its session
 * (keeps_session). A parked entry's session that the broker ends is freed. */
void sessions_end(const struct mosquitto *client, bool keeps_session);
/* The parked entry of a client id, or NULL. */
struct session *sessions_find_parked(const char *id);
/* Frees a parked entry (its device may no longer receive anything). */
void sessions_drop_parked(struct session *s);
/* The broker is authenticating this connection: any entry still holding its
 * address belongs to a freed connection, and is dropped at once. */
void sessions_forget_client(const struct mosquitto *client);
/* Frees ended entries (from the tick: their wills have been judged), parks
 * those whose session the broker keeps, and asks the broker to end the
 * kept sessions of claim and birth certificates (sessions_set_ender). */
void sessions_reap(void);
/* How to end the session the broker keeps for a client id that no
 * connection holds; NULL when the broker offers no way (before 2.1). */
void sessions_set_ender(bool (*end_session)(const char *id));
/* Live entries. */
size_t sessions_count(void);
/* Calls fn for every live entry (fn must not add entries; ending one is fine). */
void sessions_each(void (*fn)(struct session *s, void *arg), void *arg);
void sessions_clear(void);

/* ============================================================
 * Registry link (registry_link.c): the main thread's Redis connection
 * ============================================================ */
/* The connection, or NULL while the connector thread has none ready (callers
 * fail closed). Never blocks: connecting happens on the connector thread. */
redisContext *registry_link_get(void);
/* Drops a connection that failed and asks the connector for a new one. */
void registry_link_drop(void);
/* Starts the connector thread; cfg must outlive registry_link_close. */
int registry_link_init(const struct onboard_config *cfg);
void registry_link_close(void);

/* ============================================================
 * Events (events.c): onb:events -> live sessions
 * ============================================================ */
/* What an applied event means beyond live sessions: the admission view and
 * the CONNECTs waiting on the registry (2.1). plugin.c wires them in, so
 * that events.c calls neither admview_link.c nor delayed_auth.c (which both
 * call events.c: no cycle). */
struct events_view_hooks {
	bool view_enabled;                                  /* re-read each changed device for the view */
	void (*device_changed)(const char *id);             /* before the view changes */
	void (*device)(const struct onb_device *d, bool gone); /* the device as it is now */
	void (*drop)(const char *why);                      /* the view can no longer be trusted */
};
/* cfg and hooks must outlive the watcher (events_stop). */
int events_start(const struct onboard_config *cfg, const struct events_view_hooks *hooks);
void events_stop(void);
/* True once the watcher knows where the stream stands: until then a revoke
 * could be missed, so new connects are refused. */
bool events_ready(void);
/* With on, the watcher also wakes the main thread when nothing came, at
 * least every 100 ms (a broker that runs the tick only when its loop turns:
 * auth.c on_tick). */
void events_set_heartbeat(bool on);
/* Applies queued events to live sessions; called on the main thread. */
void events_apply(void);
/* Turns the broker's loop now (the tick runs), from any thread: work
 * another thread queued for the main thread is done at once. */
void events_wake(void);
/* Applies the admission view's part of the queued events now (auth.c,
 * before a CONNECT is judged): the sessions' part waits for the tick. */
void events_apply_view(void);
/* Keep the wake-up signal out of our own Redis calls on the main thread
 * (hiredis treats an interrupted connect as a failure). */
void events_hold_wakeups(sigset_t *saved);
void events_release_wakeups(const sigset_t *saved);

/* ============================================================
 * Writer (writer.c): the plugin's registry writes, off the main thread
 * ============================================================ */
/* cfg must outlive writer_stop. */
int writer_start(const struct onboard_config *cfg);
/* Writes what is queued if Redis answers at once, then stops the thread. */
void writer_stop(void);
/* Queues a copy of e for onb:audit; never blocks (a full queue drops it
 * and counts it). */
void writer_audit(const struct onb_audit_entry *e);
/* Queues an announcement for onb:sessions; false when it was dropped. */
bool writer_announce(const struct onb_session_ann *a);

/* ============================================================
 * Fleet (fleet.c): one live session per device across brokers
 * ============================================================ */
int fleet_init(const struct onboard_config *cfg);
/* Announces s (a device session just admitted from source) and sets its
 * conn, source and ann_state; other classes are not announced. */
void fleet_announce(struct session *s, const char *source);
/* An announcement read from onb:sessions (main thread): closes the live
 * session of its device here if that one is older. */
void fleet_apply(const struct onb_session_ann *a);
/* s is being closed because a `cert` event retired its certificate (the
 * device presented its next one, maybe on another broker): a foreign
 * announcement of the device within a few seconds is audited as the
 * takeover it was. */
void fleet_note_replaced(const struct session *s);

/* Monotonic-enough time (onb_now_ms) at which the watcher last had read
 * everything the stream held; 0 before that. */
int64_t events_caught_up_ms(void);

/* ============================================================
 * Admission view (admview_link.c): CONNECTs of known devices without Redis
 * ============================================================ */
/* Starts the loader thread (nothing when admission_view_stale_ms is 0). */
int admview_link_start(const struct onboard_config *cfg);
void admview_link_stop(void);
bool admview_link_enabled(void);
/* The view to decide a CONNECT by, or NULL (not loaded, or the event feed
 * not confirmed within admission_view_stale_ms: ask Redis). Main thread. */
const struct onb_admview *admview_link_get(void);
/* A device re-read after an event (gone: it no longer exists). Main thread. */
void admview_link_device(const struct onb_device *d, bool gone);
/* Forgets the view (the feed lost events): CONNECTs read Redis until a new
 * load completes. Main thread. */
void admview_link_drop(const char *why);
/* Asks for the first load, takes a completed one. Main thread, from the tick. */
void admview_link_tick(void);

/* ============================================================
 * Delayed authentication (delayed_auth.c, Mosquitto 2.1)
 * ============================================================ */
/* Decides a delayed CONNECT from its registry read, opens its session and
 * records it; whether it is admitted (auth.c's auth_finish, handed in by
 * plugin.c so that delayed_auth.c does not call back into auth.c). */
typedef bool (*delayed_auth_finish_fn)(struct mosquitto *client, const char *client_id, const char *address,
		X509 *cert, const struct onb_admit_prefetch *pre);
/* Looks for 2.1's mosquitto_complete_basic_auth and starts the worker. */
int delayed_auth_start(const struct onboard_config *cfg, delayed_auth_finish_fn finish);
void delayed_auth_stop(void);
bool delayed_auth_available(void);
/* Hands a CONNECT the view could not decide to the worker (first: the
 * classification pass). ONB_OK: return delayed_auth_return_code() to the
 * broker; otherwise decide it now. */
int delayed_auth_begin(struct mosquitto *client, const char *client_id, X509 *cert,
		const struct onb_admission *first);
int delayed_auth_return_code(void);
/* Completes the answered ones. Main thread. */
void delayed_auth_tick(void);
/* An event for device id was applied (events.c): a pending answer for that
 * client id is read again. Main thread. */
void delayed_auth_device_changed(const char *id);
/* auth.c: decides a delayed CONNECT from its registry read, opens its
 * session and records it; whether it is admitted. client is only stored
 * and compared, address is the copy made when the CONNECT arrived. */
bool auth_finish(struct mosquitto *client, const char *client_id, const char *address, X509 *cert,
		const struct onb_admit_prefetch *pre);

/* ============================================================
 * Rotation (rotation.c): certificates retired by a rotation
 * ============================================================ */
/* Sets up s's rotation fields from the device record read at CONNECT. */
void rotation_session_init(struct session *s, const struct onb_device *dev);
/* A `cert` event for s's device (s may be NULL: nothing to do). */
void rotation_apply_event(struct session *s, const struct onb_event *ev);
/* Disconnects sessions whose certificate a rotation retired, and tells
 * devices asked to renew; cheap when there is nothing to do. */
void rotation_tick(void);

/* ============================================================
 * Counters (metrics.c): $SYS/onboard/broker/<broker_id>
 * ============================================================ */
enum metrics_acl { M_ACL_PUBLISH, M_ACL_SUBSCRIBE, M_ACL_RECEIVE, M_ACL_NO_SESSION, M_ACL_WILL, M_ACL_COUNT };

/* Plain integers of the main thread: incrementing one is the whole cost on
 * the hot path (no lock, no allocation, no Redis). */
struct plugin_metrics {
	uint64_t connect_allowed;
	uint64_t connect_denied[ONB_AR_COUNT]; /* by reason (core/vocab.h); slot ONB_AR_OK: "other" */
	uint64_t acl_denied[M_ACL_COUNT];
	uint64_t wills_published;       /* wills the ACL let through (acl.c) */
	uint64_t events_applied[ONB_EV_COUNT];
	int64_t event_lag_last_ms, event_lag_max_ms;
	uint64_t event_lag_sum_ms, event_lag_n;
	uint64_t redis_errors;          /* main thread: failed connects, dropped connections */
	uint64_t audit_errors;          /* audit entries Redis did not take */
	uint64_t audit_dropped;         /* entries and announcements the writer's full queue dropped */
	uint64_t prov_requests, renew_requests, prov_replies, prov_dropped;
	uint64_t prov_refused;          /* requests among prov_requests whose payload the broker refused */
	uint64_t prov_shed;             /* requests among prov_requests over a budget (message.c) */
	uint64_t prov_unheard;          /* replies no subscription of the asker received in time */
	uint64_t rotation_promoted, rotation_kicked, rotation_notices;
	uint64_t sessions_taken_over;   /* closed here for a newer session elsewhere (fleet.c) */
	uint64_t possible_clones;       /* among them: another certificate or address */
	uint64_t admview_hits, admview_misses; /* CONNECTs decided by the view / sent to Redis */
	uint64_t auth_delayed;          /* CONNECTs answered later (2.1 delayed authentication) */
	uint64_t admview_devices;       /* devices in the admission view (0 until loaded) */
};
extern struct plugin_metrics metrics;
/* The watcher's and the writer's Redis failures, audit entries Redis did
 * not take, and events the watcher could not queue (out of memory): the only
 * counters another thread touches. */
extern atomic_ulong metrics_watcher_redis_errors, metrics_watcher_audit_errors, metrics_events_dropped;

void metrics_init(const struct onboard_config *cfg);
/* Counts a CONNECT decision by its reason token (ONB_ADMIT_REASONS). */
void metrics_connect(bool allowed, const char *reason);
/* Counts an applied event of type t and its lag (stream_id's time to now). */
void metrics_event(enum onb_event_type t, const char *stream_id);
/* The latest counters document metrics_tick made and nobody took yet, for
 * the watcher to store in Redis on its own connection (the main thread never
 * waits for that write); NULL when none. Any thread; the caller frees it
 * with free(). */
char *metrics_take_stats(void);
/* Publishes the counters when metrics_interval_s has passed (from the tick). */
void metrics_tick(void);

/* ============================================================
 * Policies (policies.c): parsed documents by name, and binding them
 * ============================================================ */
/* The parsed document for name: from the cache, else read from Redis (rc may
 * be NULL: then only the cache answers). NULL with err set when unavailable. */
const struct onb_policy *policies_get(redisContext *rc, const char *name, struct onb_err *err);
/* Replaces (doc non-NULL, ownership taken) or forgets (NULL) a cached document. */
void policies_put(const char *name, struct onb_policy *doc);
void policies_clear(void);
/* Compiles doc for s's variables into s->policy (replacing it); doc NULL or a
 * failure leaves s with no policy: everything denied. */
int session_bind(struct session *s, const char *policy_name, const struct onb_policy *doc);

/* ============================================================
 * Refusals (refusals.c): aggregated audit entries
 * ============================================================ */
int refusals_init(const struct onboard_config *cfg);
void refusals_free(void);
/* Closes the aggregation windows that have ended (from the tick). */
void refusals_tick(void);
/* Audits e through the aggregator: the first of its kind in a window at
 * once, then one entry with the count. A shared identity (claim or birth
 * certificate) is known by its fingerprint, anyone else by client id. */
void refusals_write(const struct onb_audit_entry *e, bool shared_identity);
/* Audits a refusal of what session s on client tried (action: "publish",
 * "subscribe", "receive", "request"; reason: "token: detail"). */
void refusals_note(const struct session *s, const struct mosquitto *client, const char *action,
		const char *reason);

/* ============================================================
 * Callbacks (auth.c, acl.c, message.c)
 * ============================================================ */
void auth_init(const struct onb_ca_set *cas, const struct onboard_config *cfg);
/* Whether the broker raises CLIENT_OFFLINE (2.1) for sessions it keeps:
 * plugin.c says so once its callbacks are registered. */
void auth_set_client_offline(bool has);
/* message.c's budgets and reply tickets; cfg must outlive message_free. */
int message_init(const struct onboard_config *cfg);
void message_free(void);
/* Whether s may receive this message on a reply topic: only the connection
 * claimsvc answered, and only this answer (provisioning/replyticket.h). */
bool message_reply_admitted(const struct session *s, const char *topic, const void *payload, size_t len);
/* Expires reply tickets (from the tick). */
void message_tick(void);
int on_basic_auth(int event, void *event_data, void *userdata);
int on_disconnect(int event, void *event_data, void *userdata);
int on_acl_check(int event, void *event_data, void *userdata);
int on_message(int event, void *event_data, void *userdata);
int on_tick(int event, void *event_data, void *userdata);

#define ONB_LOG_PREFIX "onboard: "

#endif

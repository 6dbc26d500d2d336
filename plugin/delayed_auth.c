/* Delayed basic authentication (Mosquitto 2.1): a CONNECT the admission
 * view cannot decide is answered MOSQ_ERR_AUTH_DELAYED, its one registry
 * read made by a worker thread on its own Redis connection, and the
 * decision taken and handed to the broker (mosquitto_complete_basic_auth)
 * on the main thread at the next tick. 2.0 has neither the return code nor
 * the function: found at run time (dlsym), so that one build loads into
 * both; without them auth.c reads Redis on the main thread as before.
 *
 * What 2.1.2's source says (src/handle_connect.c, src/context.c,
 * src/plugin_public.c): a delayed client waits in a table by client id; a
 * second CONNECT with the same id is refused while it is there; a delayed
 * client that disconnects is freed **without** a DISCONNECT event to
 * plugins, and mosquitto_complete_basic_auth for an id no longer waiting
 * does nothing. So a pending request never dereferences its client after
 * the callback returned: the address is copied, the username set at once,
 * and whether the connection still exists is asked of the broker after
 * completing (mosquitto_client(id), 2.1). A new CONNECT with the same id
 * proves the older one gone: its request is cancelled. */
#include <dlfcn.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onboard.h"

#ifndef MOSQ_ERR_AUTH_DELAYED
#define MOSQ_ERR_AUTH_DELAYED (-5) /* 2.1's include/mosquitto/defs.h */
#endif
#define QUEUE_MAX 4096 /* requests waiting for the worker; more are decided at once */

struct request {
	struct request *next;
	/* set by the main thread */
	struct mosquitto *client;   /* compared and handed back only, never read after the callback */
	char client_id[ONB_ID_MAX + 1];
	char address[64];
	X509 *cert;                 /* our reference */
	struct onb_admission first; /* the classification pass: idclass, fp */
	bool cancelled;
	bool changed;               /* an event for this id was applied since the read began */
	/* set by the worker */
	struct onb_admit_prefetch pre;
};

static void (*complete_fn)(const char *clientid, int result);
static struct mosquitto *(*client_fn)(const char *clientid);
static delayed_auth_finish_fn finish_fn; /* auth.c's auth_finish */

static pthread_t worker;
static bool worker_running;
static atomic_bool stopping;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct request *todo_head, **todo_tail = &todo_head; /* under lock */
static struct request *done_head, **done_tail = &done_head; /* under lock */
/* Main thread: every request not completed yet, to cancel by client id. */
static struct request *pending[QUEUE_MAX];
static int npending;

static struct onb_redis_cfg worker_cfg;

static void *work(void *arg)
{
	redisContext *rc = NULL;
	struct onb_err err;

	(void)arg;
	while(!atomic_load(&stopping)){
		struct request *r;

		pthread_mutex_lock(&lock);
		while(!todo_head && !atomic_load(&stopping)){
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += 100000000L;
			if(until.tv_nsec >= 1000000000L){ until.tv_sec++; until.tv_nsec -= 1000000000L; }
			/* the heartbeat of a broker asked to tick at every turn of its loop (auth.c) */
			if(pthread_cond_timedwait(&cond, &lock, &until) != 0) events_wake();
		}
		r = todo_head;
		if(r){
			todo_head = r->next;
			if(!todo_head) todo_tail = &todo_head;
		}
		pthread_mutex_unlock(&lock);
		if(!r) break;
		if(!rc) rc = onb_redis_connect(&worker_cfg, &err);
		onb_admit_prefetch(rc, r->first.idclass, r->first.fp, r->client_id, &r->pre);
		if(rc && rc->err){
			redisFree(rc); /* never read a stale reply: connect again for the next one */
			rc = NULL;
		}
		r->next = NULL;
		pthread_mutex_lock(&lock);
		*done_tail = r;
		done_tail = &r->next;
		pthread_mutex_unlock(&lock);
		events_wake(); /* the answer is completed at the tick this runs */
	}
	if(rc) redisFree(rc);
	return NULL;
}

bool delayed_auth_available(void)
{
	return worker_running;
}

int delayed_auth_start(const struct onboard_config *cfg, delayed_auth_finish_fn finish)
{
	void *self = dlopen(NULL, RTLD_LAZY);

	finish_fn = finish;

	/* a function pointer through a void * is POSIX's dlsym contract */
	if(self){
		*(void **)&complete_fn = dlsym(self, "mosquitto_complete_basic_auth");
		*(void **)&client_fn = dlsym(self, "mosquitto_client");
		dlclose(self);
	}
	if(!complete_fn || !client_fn){
		complete_fn = NULL;
		mosquitto_log_printf(MOSQ_LOG_INFO, ONB_LOG_PREFIX "no delayed authentication in this broker "
				"(Mosquitto < 2.1): a CONNECT the admission view cannot decide reads Redis on the broker's thread");
		return ONB_OK;
	}
	worker_cfg = cfg->redis;
	atomic_store(&stopping, false);
	if(thread_start(&worker, work, "delayed authentication worker") != ONB_OK) return ONB_EINTERNAL;
	worker_running = true;
	return ONB_OK;
}

static void free_request(struct request *r)
{
	X509_free(r->cert);
	free(r);
}

static void forget_pending(struct request *r)
{
	for(int i = 0; i < npending; i++){
		if(pending[i] == r){
			pending[i] = pending[--npending];
			return;
		}
	}
}

void delayed_auth_stop(void)
{
	struct request *r;

	if(!worker_running) return;
	thread_stop(worker, &stopping, &lock, &cond);
	worker_running = false;
	/* the broker is going away: nothing is completed any more */
	while((r = todo_head)){ todo_head = r->next; free_request(r); }
	while((r = done_head)){ done_head = r->next; free_request(r); }
	todo_tail = &todo_head;
	done_tail = &done_head;
	npending = 0;
}

int delayed_auth_begin(struct mosquitto *client, const char *client_id, X509 *cert,
		const struct onb_admission *first)
{
	const char *address = mosquitto_client_address(client);
	struct request *r;

	if(!worker_running || npending >= QUEUE_MAX || !onb_id_valid(client_id)) return ONB_EREFUSED;
	r = calloc(1, sizeof(*r));
	if(!r) return ONB_EINTERNAL;
	/* This id's older request belongs to a connection the broker let go. */
	for(int i = 0; i < npending; i++){
		if(!strcmp(pending[i]->client_id, client_id)) pending[i]->cancelled = true;
	}
	r->client = client;
	snprintf(r->client_id, sizeof(r->client_id), "%s", client_id);
	snprintf(r->address, sizeof(r->address), "%s", address ? address : "");
	if(X509_up_ref(cert) != 1){
		free(r);
		return ONB_EINTERNAL;
	}
	r->cert = cert;
	r->first = *first;
	pending[npending++] = r;
	/* Later ACL checks and kicks by username name the device; harmless if
	 * the answer is a refusal (the connection then never gets that far). */
	mosquitto_set_username(client, client_id);
	pthread_mutex_lock(&lock);
	*todo_tail = r;
	todo_tail = &r->next;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
	return ONB_OK;
}

int delayed_auth_return_code(void)
{
	return MOSQ_ERR_AUTH_DELAYED;
}

void delayed_auth_device_changed(const char *id)
{
	for(int i = 0; i < npending; i++){
		if(!strcmp(pending[i]->client_id, id)) pending[i]->changed = true;
	}
}

void delayed_auth_tick(void)
{
	struct request *list, *r;

	if(!worker_running) return;
	pthread_mutex_lock(&lock);
	list = done_head;
	done_head = NULL;
	done_tail = &done_head;
	pthread_mutex_unlock(&lock);
	while((r = list)){
		list = r->next;
		/* The read may predate a change already applied to live sessions
		 * (a revocation that found no session to close): read again. */
		if(!r->cancelled && r->changed){
			r->changed = false;
			r->next = NULL;
			pthread_mutex_lock(&lock);
			*todo_tail = r;
			todo_tail = &r->next;
			pthread_cond_signal(&cond);
			pthread_mutex_unlock(&lock);
			continue;
		}
		forget_pending(r);
		/* the worker's failed or dropped connection counts like the main thread's */
		if(r->pre.code == ONB_EUNAVAIL) metrics.redis_errors++;
		/* An entry at this address was made after the request began: the
		 * broker freed the connection and gave its address to another. */
		if(!r->cancelled && sessions_get(r->client)) r->cancelled = true;
		if(!r->cancelled){
			bool allowed = finish_fn(r->client, r->client_id, r->address, r->cert, &r->pre);
			complete_fn(r->client_id, allowed ? MOSQ_ERR_SUCCESS : MOSQ_ERR_AUTH);
			/* Admitted, but gone meanwhile (the broker completes nothing
			 * then): the session entry holds a freed address. */
			if(allowed && client_fn(r->client_id) != r->client) sessions_forget_client(r->client);
		}
		free_request(r);
	}
}

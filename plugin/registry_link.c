/* The main thread's Redis connection. Fail closed, never wait long.
 *
 * The main thread only ever *uses* a connection: every command on it is
 * bounded by redis_timeout_ms. Making one is the job of a connector thread,
 * because a connect can block where no timeout reaches (getaddrinfo on a host
 * name, whose DNS may stall for seconds) and a half-alive Redis (SIGSTOPped,
 * accepting in the kernel but never answering) would otherwise cost a
 * timeout per refused client. The connector hands over a connection only
 * after Redis answered a PING on it, and keeps one such spare warm at all
 * times. While none is ready, new connects are refused at once; after a
 * failed attempt the connector waits redis_retry_ms. A single slow reply
 * therefore costs one refused client and about a loopback round trip of
 * refusals, not a whole back-off period.
 *
 * A connection Redis closed while it was idle (a restart, a failover, an
 * idle timeout) is seen before it is used: the socket is readable although
 * nothing was asked. The main thread swaps it for the spare, so the first
 * client after a Redis restart is judged, not refused; the connector checks
 * its spare the same way every redis_retry_ms. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "onboard.h"

static const struct onboard_config *config;
static redisContext *link_rc;      /* main thread only */
static bool reported_down;         /* main thread only */
static unsigned long failures_seen; /* main thread only: connector failures already counted */

/* Shared with the connector, under lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond;
static redisContext *spare;        /* a tested connection waiting for the main thread */
static bool stopping;
static unsigned long failures;     /* connect attempts that failed */
static char last_error[256];

static pthread_t connector;
static bool connector_running;

/* Waits on cond until ms have passed or stop is requested, or with
 * while_spare, until the main thread takes the spare; lock held. */
static void wait_locked(int ms, bool while_spare)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if(until.tv_nsec >= 1000000000L){
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while(!stopping && (!while_spare || spare)
			&& pthread_cond_timedwait(&cond, &lock, &until) != ETIMEDOUT){}
}

/* A connection that answered PING within the timeout, or NULL with err set. */
static redisContext *connect_tested(struct onb_err *err)
{
	redisContext *c = onb_redis_connect(&config->redis, err);
	redisReply *r;

	if(!c) return NULL;
	r = redisCommand(c, "PING");
	if(r && r->type == REDIS_REPLY_STATUS){
		freeReplyObject(r);
		return c;
	}
	if(r && r->type == REDIS_REPLY_ERROR){
		onb_fail(err, ONB_EUNAVAIL, "PING refused: %.*s", (int)r->len, r->str);
	}else{
		onb_fail(err, ONB_EUNAVAIL, "PING: %s", c->err ? c->errstr : "no reply");
	}
	if(r) freeReplyObject(r);
	redisFree(c);
	return NULL;
}

/* True when Redis has closed c (or sent what nobody asked for): an idle
 * RESP2 connection has nothing to read. */
static bool closed_by_peer(const redisContext *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };

	return c->err || poll(&p, 1, 0) != 0;
}

static void *connect_loop(void *arg)
{
	struct onb_err err;

	(void)arg;
	pthread_mutex_lock(&lock);
	while(!stopping){
		if(spare && closed_by_peer(spare)){
			redisFree(spare);
			spare = NULL;
		}
		if(spare){
			wait_locked(config->redis_retry_ms, true);
			continue;
		}
		pthread_mutex_unlock(&lock);
		redisContext *c = connect_tested(&err);
		pthread_mutex_lock(&lock);
		if(c){
			spare = c;
			continue;
		}
		failures++;
		snprintf(last_error, sizeof(last_error), "%s", err.msg);
		wait_locked(config->redis_retry_ms, false);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

int registry_link_init(const struct onboard_config *cfg)
{
	struct onb_err start_err;
	pthread_condattr_t attr;

	config = cfg;
	link_rc = NULL;
	reported_down = false;
	failures_seen = 0;
	spare = NULL;
	stopping = false;
	failures = 0;
	last_error[0] = '\0';
	/* The first devices must not wait for the connector thread: with Redis
	 * up, the broker starts with its connection (as events_start reads the
	 * stream's tail), and the connector only keeps a spare warm. */
	link_rc = connect_tested(&start_err);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&cond, &attr);
	pthread_condattr_destroy(&attr);
	if(thread_start(&connector, connect_loop, "registry connector") != ONB_OK){
		pthread_cond_destroy(&cond);
		if(link_rc) redisFree(link_rc);
		link_rc = NULL;
		return ONB_EINTERNAL;
	}
	connector_running = true;
	return ONB_OK;
}

redisContext *registry_link_get(void)
{
	char why[sizeof(last_error)];
	unsigned long failed;

	if(link_rc && !closed_by_peer(link_rc)) return link_rc;
	if(link_rc) registry_link_drop();
	pthread_mutex_lock(&lock);
	link_rc = spare;
	spare = NULL;
	pthread_cond_signal(&cond);
	failed = failures;
	memcpy(why, last_error, sizeof(why));
	pthread_mutex_unlock(&lock);

	metrics.redis_errors += failed - failures_seen;
	failures_seen = failed;
	if(link_rc && reported_down){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, ONB_LOG_PREFIX "registry reachable again");
		reported_down = false;
	}else if(!link_rc && failed && !reported_down){
		mosquitto_log_printf(MOSQ_LOG_ERR, ONB_LOG_PREFIX
				"registry unreachable, refusing new connects: %s", why);
		reported_down = true;
	}
	return link_rc;
}

void registry_link_drop(void)
{
	if(!link_rc) return;
	metrics.redis_errors++;
	redisFree(link_rc);
	link_rc = NULL;
	if(!reported_down){
		mosquitto_log_printf(MOSQ_LOG_ERR, ONB_LOG_PREFIX "registry connection lost, reconnecting");
		reported_down = true;
	}
}

void registry_link_close(void)
{
	if(connector_running){
		pthread_mutex_lock(&lock);
		stopping = true;
		pthread_cond_signal(&cond);
		pthread_mutex_unlock(&lock);
		pthread_join(connector, NULL);
		connector_running = false;
		pthread_cond_destroy(&cond);
	}
	if(spare) redisFree(spare);
	spare = NULL;
	if(link_rc) redisFree(link_rc);
	link_rc = NULL;
}

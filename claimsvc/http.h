/* claimsvc's HTTP server (http.c): GET /healthz and GET /metrics through
 * libmicrohttpd, run from claimsvc's own single-threaded main loop (MHD's
 * "external select" mode with its epoll descriptor): no second thread, so
 * the pages read the counters and the Redis connection without locks.
 * MHD parses every request; this module looks only at method and path. */
#ifndef CSVC_HTTP_H
#define CSVC_HTTP_H

#include "claimsvc.h"
#include "prom.h"

struct csvc_http;

/* A page: writes its body into t and returns the HTTP status (200, 503). */
typedef int (*csvc_http_page)(void *arg, struct csvc_text *t);

struct csvc_http_routes {
	csvc_http_page healthz;   /* text/plain */
	csvc_http_page metrics;   /* Prometheus text format 0.0.4 */
	void *arg;
};

/* Binds l and starts serving; NULL (with err) when the address cannot be
 * bound or MHD lacks epoll. routes is copied. */
struct csvc_http *csvc_http_start(const struct csvc_listen *l, const struct csvc_http_routes *routes,
		struct onb_err *err);

/* The descriptor to poll for POLLIN: readable when MHD has work. */
int csvc_http_fd(const struct csvc_http *h);

/* max_ms, or less when MHD must run sooner (a connection's timeout). */
int csvc_http_timeout_ms(struct csvc_http *h, int max_ms);

/* Accepts, reads, answers and times out connections; never blocks except
 * in a page (which may wait on Redis for up to redis_timeout_ms). */
void csvc_http_run(struct csvc_http *h);

/* Closes every connection and the listening socket; h may be NULL. */
void csvc_http_stop(struct csvc_http *h);

#endif
